"""Results files that are whole or absent, read back with errors that name them, and a lock
per run so that two processes on one output folder share the work.

- :func:`write_atomic` writes a file to a temporary name beside it, flushes it to disk and
  renames it into place: a reader (or a process killed mid-write) never sees half a file.
- :func:`read_json` reads a JSON file or raises :class:`DamagedFileError` naming it.
- :func:`run_lock` takes a lock file beside a run's result (``fcntl.flock``, released by
  the kernel when the process ends, however it ends): a second process asking for the same
  run is told it is taken and moves on.

Light on purpose: the standard library only.
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import os
import tempfile
from pathlib import Path

__all__ = ["DamagedFileError", "write_atomic", "write_csv_atomic", "write_figure", "read_json", "record_json", "set_aside",
           "run_lock"]


class DamagedFileError(ValueError):
    """A results file that cannot be read (cut short, edited, not JSON)."""

    def __init__(self, path, reason: str):
        self.path = Path(path)
        super().__init__(f"{path} is damaged ({reason})")


def write_atomic(path, data: str | bytes) -> Path:
    """Write ``data`` to ``path`` whole: a temporary file in the same folder, flushed and
    synced, then renamed over ``path`` (and the folder synced, so the rename survives a
    crash). Returns ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(handle, _file_mode(path))  # mkstemp's 0600 would make results files owner-only
        with os.fdopen(handle, "wb") as stream:
            stream.write(data.encode() if isinstance(data, str) else data)
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)
        raise
    folder = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(folder)
    finally:
        os.close(folder)
    return path


def _file_mode(path: Path) -> int:
    """The mode ``path`` has, or a new file's (0666 less the umask) if it does not exist."""
    try:
        return path.stat().st_mode & 0o777
    except FileNotFoundError:
        umask = os.umask(0)
        os.umask(umask)
        return 0o666 & ~umask


def write_csv_atomic(path, rows) -> Path:
    """:func:`write_atomic` of ``rows`` (lists of cells) as CSV."""
    buffer = io.StringIO(newline="")
    csv.writer(buffer).writerows(rows)
    return write_atomic(path, buffer.getvalue())


def write_figure(path, figure, **savefig) -> Path:
    """:func:`write_atomic` of a matplotlib ``figure`` as PNG (``savefig``: its keyword
    arguments, e.g. ``dpi``), then the figure closed."""
    import matplotlib.pyplot as plt  # only where a figure is drawn: this module stays light

    image = io.BytesIO()
    figure.savefig(image, format="png", **savefig)
    plt.close(figure)
    return write_atomic(path, image.getvalue())


def record_json(record) -> str:
    """``record`` as JSON text for a file people also read: indented like ``indent=2``, except
    that a list of plain values (numbers, strings, ...) stays on one line. A run file's
    per-user lists are most of it: one value a line made them twice the size for nothing."""

    def dump(value, depth: int) -> str:
        inner, outer = "  " * (depth + 1), "  " * depth
        if isinstance(value, dict) and value:
            items = (f"{inner}{json.dumps(str(key))}: {dump(item, depth + 1)}" for key, item in value.items())
            return "{\n" + ",\n".join(items) + f"\n{outer}}}"
        if isinstance(value, list) and any(isinstance(item, (dict, list)) for item in value):
            return "[\n" + ",\n".join(f"{inner}{dump(item, depth + 1)}" for item in value) + f"\n{outer}]"
        return json.dumps(value)

    return dump(record, 0) + "\n"


def read_json(path):
    """The JSON value in ``path``; :class:`DamagedFileError` naming the file if it is not JSON."""
    text = Path(path).read_bytes()
    try:
        return json.loads(text)
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise DamagedFileError(path, f"not JSON: {error}") from None


def set_aside(path) -> Path:
    """Rename a damaged file to ``<name>.damaged`` (numbered if that exists) so that its run
    is redone and the file kept for a look; returns the new path."""
    path = Path(path)
    target = path.with_name(path.name + ".damaged")
    number = 1
    while target.exists():
        number += 1
        target = path.with_name(f"{path.name}.damaged{number}")
    path.rename(target)
    return target


@contextlib.contextmanager
def run_lock(result_path):
    """Hold ``<result_path>.lock`` for the block, or yield False at once if another process
    holds it (yield True when this process has it). The lock dies with its process, so a
    killed run never leaves its folder locked; the lock file itself stays, empty."""
    import fcntl

    lock_path = Path(f"{result_path}.lock")
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    with open(lock_path, "a") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
            return
        try:
            yield True
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
