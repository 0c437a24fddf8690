"""What every command does with a user's mistake and with Ctrl-C.

:func:`command` runs a command's ``main(argv)``: a mistake in what the user gave (a bad
setting, a missing file, a name that is not a model, a refused checkpoint: every exception
class of recbole-umi, and the ValueError, KeyError and FileNotFoundError of the libraries
below it) ends in one line on stderr, ``<prog>: error: <what is wrong and what is allowed>``,
and exit status 2, without a traceback; ``--debug`` (or ``RECBOLE_UMI_DEBUG=1``) shows it.
Ctrl-C ends in one line too, with the exact command that continues the run where the run
knows one (``KeyboardInterrupt.resume_command``), and status 130; a ``kill`` (SIGTERM, what a
job scheduler or a session's end sends) the same way, with status 143.

While a command runs, SIGINT and SIGTERM raise :class:`KeyboardInterrupt` through a handler
of this module that also notes the signal (where the process had the default handlers: an
ignored signal stays ignored). The note is what recognises a stop that arrives inside a
compiled step: the interrupt is raised in a custom op that inductor's C++ wrapper calls, and
reaches Python as ``RuntimeError: aoti_torch_call_dispatcher(...) API call failed``
(:func:`as_interrupt`).

Light on purpose: the standard library only.
"""

from __future__ import annotations

import os
import signal
import sys
import threading

__all__ = ["DEBUG_FLAG", "STOPS", "USER_ERRORS", "as_interrupt", "command", "is_user_error"]

DEBUG_FLAG = "--debug"
# Errors of the libraries below recbole-umi that are about the user's input.
USER_ERRORS = (ValueError, KeyError, FileNotFoundError, NotADirectoryError, IsADirectoryError, PermissionError)


def is_user_error(error: BaseException) -> bool:
    """An error to report in one line: raised by recbole-umi's own exception classes (each
    says what is wrong and what is allowed) or one of :data:`USER_ERRORS`."""
    return isinstance(error, USER_ERRORS) or (
        isinstance(error, Exception) and type(error).__module__.split(".")[0] == "recbole_umi")


# a stop signal: what the line says and the exit status (128 + the signal's number)
STOPS = {signal.SIGINT: ("interrupted", 130), signal.SIGTERM: ("terminated", 143)}
_DEFAULT_HANDLERS = {signal.SIGINT: signal.default_int_handler, signal.SIGTERM: signal.SIG_DFL}
_received: list[int] = []  # the stop signals received, in order, while the command that set _stop runs


def _stop(signum, _frame):
    _received.append(signum)
    raise KeyboardInterrupt


def as_interrupt(error: BaseException) -> KeyboardInterrupt | None:
    """``error`` as the stop it is, or None where it is not one: a KeyboardInterrupt is
    itself; any other exception raised after a stop signal reached the running
    :func:`command` (an interrupt that a compiled step's C++ code turned into a RuntimeError;
    also a later error of a command whose interrupt something swallowed: the command was
    asked to stop) is a new KeyboardInterrupt (:func:`recbole_umi.quick_start.run` raises it
    ``from`` the error). Once the command has ended, its signals are forgotten."""
    if isinstance(error, KeyboardInterrupt):
        return error
    if _received and isinstance(error, Exception):
        return KeyboardInterrupt(f"stopped by {signal.Signals(_received[-1]).name}: {error}")
    return None


def _catch_stop_signals() -> dict:
    """Install :func:`_stop` for each stop signal whose handler is the default one; returns
    the handlers it replaced (to put back). Only the main thread can set handlers."""
    if threading.current_thread() is not threading.main_thread():
        return {}
    replaced = {}
    for signum, default in _DEFAULT_HANDLERS.items():
        if signal.getsignal(signum) is default:
            replaced[signum] = signal.signal(signum, _stop)
    return replaced


def _one_line(error: BaseException) -> str:
    text = error.args[0] if isinstance(error, KeyError) and error.args else str(error)
    return " ".join(str(text).split()) or type(error).__name__


def command(main, argv: list[str] | None = None, prog: str = "recbole-umi", resumable: bool = False) -> int:
    """Run ``main(argv)``; returns the exit status (0, 2 for a user's mistake, 130 for Ctrl-C,
    143 for SIGTERM).
    ``--debug`` anywhere in ``argv`` is taken out and lets every error through. ``resumable``:
    the command continues where it stopped when it is run again (compare, tune, sweep, noise),
    which the stop's line says."""
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = DEBUG_FLAG in argv or os.environ.get("RECBOLE_UMI_DEBUG", "") not in ("", "0")
    argv = [arg for arg in argv if arg != DEBUG_FLAG]
    replaced = _catch_stop_signals()  # none where a command already runs (nested) or off the main thread
    if replaced:
        _received.clear()
    try:
        main(argv)
    except BaseException as error:  # noqa: BLE001 (a stop, a user's mistake, or raised again)
        interrupt = as_interrupt(error)
        if interrupt is None:
            if debug or not is_user_error(error):
                raise
            print(f"{prog}: error: {_one_line(error)} ({DEBUG_FLAG} shows the traceback)", file=sys.stderr)
            return 2
        if debug:
            raise
        what, status = STOPS[_received[-1] if _received else signal.SIGINT]
        resume = getattr(interrupt, "resume_command", None)
        if resume:
            hint = f"; continue with: {resume}"
        elif resumable:
            hint = "; run the same command again to continue: finished runs are kept, the one cut short goes on"
        else:
            hint = ""
        print(f"{prog}: {what}{hint}", file=sys.stderr)
        return status
    finally:
        for signum, handler in replaced.items():
            signal.signal(signum, handler)
        if replaced:
            _received.clear()
    return 0
