"""One complete log file per run, also when one process makes several runs.

RecBole's ``init_logger`` builds a file handler and a console handler and hands them to
``logging.basicConfig``, which does nothing once the root logger has handlers: in one
process (``compare``, ``python -m recbole_umi.tune``, repeated ``run()`` calls, and any process where
something else configured logging first, pytest say) every later run got an empty log file
and logged into the first run's. :func:`init_run_logger` makes the same two handlers, named
and formatted as RecBole names and formats them (``log/<model>/<model>-<dataset>-<time>-
<hash>.log``), and puts them on the root logger in place of the previous run's, closing
those. Handlers it did not add (a notebook's, pytest's) are left alone.
"""

from __future__ import annotations

from recbole_umi import compat

compat.apply()  # before anything imports RecBole

import hashlib  # noqa: E402
import logging  # noqa: E402
import sys  # noqa: E402
from pathlib import Path  # noqa: E402

import colorlog  # noqa: E402
from colorama import init as init_colorama  # noqa: E402
from recbole.utils.logger import RemoveColorFilter, log_colors_config  # noqa: E402
from recbole.utils.utils import get_local_time  # noqa: E402

__all__ = ["init_run_logger", "close_run_logger", "LOG_ROOT"]

# RecBole's folder for log files, relative to the working directory.
LOG_ROOT = Path("log")

_LEVELS = {"debug": logging.DEBUG, "info": logging.INFO, "warning": logging.WARNING,
           "error": logging.ERROR, "critical": logging.CRITICAL}

# The handlers of the current run (only these are ever removed from the root logger).
_run_handlers: list[logging.Handler] = []


class _CurrentStderrHandler(colorlog.StreamHandler):
    """Writes to whatever ``sys.stderr`` is at the time of the record, so a run's console
    handler never writes to a stream that was replaced and closed since (pytest's capture)."""

    def __init__(self):
        super().__init__(sys.stderr)

    @property
    def stream(self):
        return sys.stderr

    @stream.setter
    def stream(self, _value):
        pass


def _log_file(config) -> Path:
    """RecBole's name for the run's log file; ``-2``, ``-3``, ... where a run in the same
    second with the same settings has taken it."""
    settings = "".join(str(value) for value in config.final_config_dict.values())
    digest = hashlib.md5(settings.encode("utf-8")).hexdigest()[:6]
    folder = LOG_ROOT / config["model"]
    folder.mkdir(parents=True, exist_ok=True)
    stem = f"{config['model']}-{config['dataset']}-{get_local_time()}-{digest}"
    path, number = folder / f"{stem}.log", 1
    while path.exists():
        number += 1
        path = folder / f"{stem}-{number}.log"
    return path


def close_run_logger() -> None:
    """Take the current run's handlers off the root logger and close its log file."""
    root = logging.getLogger()
    while _run_handlers:
        handler = _run_handlers.pop()
        root.removeHandler(handler)
        handler.close()


def init_run_logger(config) -> Path:
    """RecBole's ``init_logger`` for one run of several: the run's own log file and console
    output at the level ``state`` gives, replacing the previous run's; returns the file."""
    init_colorama(autoreset=True)
    close_run_logger()
    level = _LEVELS.get(str(config["state"]).lower(), logging.INFO)
    path = _log_file(config)
    file_handler = logging.FileHandler(path)
    file_handler.setFormatter(logging.Formatter("%(asctime)-15s %(levelname)s  %(message)s", "%a %d %b %Y %H:%M:%S"))
    file_handler.addFilter(RemoveColorFilter())
    console = _CurrentStderrHandler()
    console.setFormatter(
        colorlog.ColoredFormatter("%(log_color)s%(asctime)-15s %(levelname)s  %(message)s", "%d %b %H:%M",
                                  log_colors=log_colors_config)
    )
    root = logging.getLogger()
    for handler in (console, file_handler):
        handler.setLevel(level)
        root.addHandler(handler)
        _run_handlers.append(handler)
    root.setLevel(level)
    return path
