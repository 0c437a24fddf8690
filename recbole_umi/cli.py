"""What every command does with a user's mistake and with Ctrl-C.

:func:`command` runs a command's ``main(argv)``: a mistake in what the user gave (a bad
setting, a missing file, a name that is not a model, a refused checkpoint: every exception
class of recbole-umi, and the ValueError, KeyError and FileNotFoundError of the libraries
below it) ends in one line on stderr, ``<prog>: error: <what is wrong and what is allowed>``,
and exit status 2, without a traceback; ``--debug`` (or ``RECBOLE_UMI_DEBUG=1``) shows it.
Ctrl-C ends in one line too, with the exact command that continues the run where the run
knows one (``KeyboardInterrupt.resume_command``), and status 130.

Light on purpose: the standard library only.
"""

from __future__ import annotations

import os
import sys

__all__ = ["DEBUG_FLAG", "USER_ERRORS", "command", "is_user_error"]

DEBUG_FLAG = "--debug"
# Errors of the libraries below recbole-umi that are about the user's input.
USER_ERRORS = (ValueError, KeyError, FileNotFoundError, NotADirectoryError, IsADirectoryError, PermissionError)


def is_user_error(error: BaseException) -> bool:
    """An error to report in one line: raised by recbole-umi's own exception classes (each
    says what is wrong and what is allowed) or one of :data:`USER_ERRORS`."""
    return isinstance(error, USER_ERRORS) or (
        isinstance(error, Exception) and type(error).__module__.split(".")[0] == "recbole_umi")


def _one_line(error: BaseException) -> str:
    text = error.args[0] if isinstance(error, KeyError) and error.args else str(error)
    return " ".join(str(text).split()) or type(error).__name__


def command(main, argv: list[str] | None = None, prog: str = "recbole-umi", resumable: bool = False) -> int:
    """Run ``main(argv)``; returns the exit status (0, 2 for a user's mistake, 130 for Ctrl-C).
    ``--debug`` anywhere in ``argv`` is taken out and lets every error through. ``resumable``:
    the command continues where it stopped when it is run again (compare, tune, sweep, noise),
    which Ctrl-C's line says."""
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = DEBUG_FLAG in argv or os.environ.get("RECBOLE_UMI_DEBUG", "") not in ("", "0")
    argv = [arg for arg in argv if arg != DEBUG_FLAG]
    try:
        main(argv)
    except KeyboardInterrupt as interrupt:
        if debug:
            raise
        resume = getattr(interrupt, "resume_command", None)
        if resume:
            hint = f"; continue with: {resume}"
        elif resumable:
            hint = "; run the same command again to continue: finished runs are kept, the one cut short goes on"
        else:
            hint = ""
        print(f"{prog}: interrupted{hint}", file=sys.stderr)
        return 130
    except Exception as error:  # noqa: BLE001 (sorted below: a user's mistake or not)
        if debug or not is_user_error(error):
            raise
        print(f"{prog}: error: {_one_line(error)} ({DEBUG_FLAG} shows the traceback)", file=sys.stderr)
        return 2
    return 0
