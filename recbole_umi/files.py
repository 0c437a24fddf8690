"""Results files that are whole or absent, read back with errors that name them, and a lock
per run so that two processes on one output folder share the work.

- :func:`write_atomic` writes a file to a temporary name beside it, flushes it to disk and
  renames it into place: a reader (or a process killed mid-write) never sees half a file.
- :func:`folder_whole` does the same for a folder of files (an export, a generated dataset):
  written beside the final one and moved into place whole; :func:`recover_interrupted`
  clears what a process killed midway left.
- :func:`read_json` reads a JSON file or raises :class:`DamagedFileError` naming it.
- :func:`run_lock` takes a lock file beside a run's result (``fcntl.flock``, released by
  the kernel when the process ends, however it ends): a second process asking for the same
  run is told it is taken and moves on.

Light on purpose: the standard library only.
"""

from __future__ import annotations

import contextlib
import csv
import glob
import io
import json
import logging
import os
import shutil
import tempfile
from pathlib import Path

__all__ = ["DamagedFileError", "write_atomic", "write_csv_atomic", "write_figure", "folder_whole", "check_folder_path",
           "recover_interrupted", "read_json", "record_json", "set_aside", "run_lock"]


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
    _sync(path.parent)
    return path


def _sync(path: Path) -> None:
    """fsync a file or a folder (a folder: so that a rename in it survives a crash)."""
    handle = os.open(path, os.O_RDONLY)
    try:
        os.fsync(handle)
    finally:
        os.close(handle)


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


@contextlib.contextmanager
def folder_whole(final, what: str = "a write"):
    """Yield a new folder beside ``final`` (``.NAME.partial-PID``) to write into. When the
    block ends, its files are synced to disk and it replaces ``final`` (a folder, or
    nothing); when the block raises, or the swap fails, it is removed and ``final`` stays as it
    was. A reader never sees a folder half written or two writes' files side by side; between
    the swap's two renames (the old folder moved aside, the new one in) nothing is at the
    name, and a process killed there has :func:`recover_interrupted` put the old one back.
    That is called first (``what``: the kind of write, for its warning); before it,
    :func:`check_folder_path`."""
    final = check_folder_path(final)
    recover_interrupted(final, what)
    partial = final.with_name(f".{final.name}.partial-{os.getpid()}")
    old = final.with_name(f".{final.name}.old-{os.getpid()}")
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir(parents=True)
    try:
        yield partial
        for folder, _, names in os.walk(partial):
            for name in names:
                if not os.path.islink(os.path.join(folder, name)):
                    _sync(Path(folder, name))
            _sync(Path(folder))
        if final.exists():
            final.rename(old)
        partial.rename(final)
    except BaseException:
        if old.exists() and not final.exists():
            old.rename(final)
        shutil.rmtree(partial, ignore_errors=True)
        raise
    shutil.rmtree(old, ignore_errors=True)
    _sync(final.parent)


def check_folder_path(final) -> Path:
    """``final`` as a path for :func:`folder_whole`; ``NotADirectoryError`` if it is a file or
    a symbolic link, which would be replaced by a folder (call it before long work)."""
    final = Path(final)
    if final.is_symlink() or (final.exists() and not final.is_dir()):
        kind = "a symbolic link" if final.is_symlink() else "a file"
        raise NotADirectoryError(f"{final} is {kind}, not a folder: give a folder's path (the folder is replaced whole)")
    return final


def recover_interrupted(final, what: str = "a write") -> None:
    """Clean up after a :func:`folder_whole` killed before it ended (a kill, not an
    exception): its ``.NAME.partial-PID`` folder is removed, and where it was killed between
    moving the old folder aside and the new one in, the old one (``.NAME.old-PID``) is put
    back first. Leftovers of processes still alive are theirs, and left alone."""
    final = Path(final)
    old, partial = f".{final.name}.old", f".{final.name}.partial"  # not another folder's (.NAME.v2.old-PID)
    for leftover in sorted(final.parent.glob(f".{glob.escape(final.name)}.*-*")):
        kind, _, pid = leftover.name.rpartition("-")
        if kind not in (old, partial) or not pid.isdigit() or _alive(int(pid)):
            continue
        if kind == old and not final.exists():
            logging.getLogger().warning(f"{final}: {what} was killed while replacing it; the previous one is put back")
            leftover.rename(final)
        else:
            shutil.rmtree(leftover, ignore_errors=True)


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return False  # this process's leftovers are of an earlier call
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


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
