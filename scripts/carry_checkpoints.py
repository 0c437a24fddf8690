"""Carries the checkpoints of unfinished runs from one machine to the next, and stops what
trains on a repository's results so that they can be carried.

A search's trial (``python -m recbole_umi.tune``) or a comparison's run
(``python -m recbole_umi.compare``) cut short by the end of a session continues from its last
finished epoch only where its checkpoints are still in the checkout it ran in
(``saved/<tune|compare>-<out's name>-<hash>/<trial or run>/``,
:func:`~recbole_umi.experiments.run_files.checkpoint_root`). A session may begin on a new machine,
with a fresh checkout, and a run longer than a session (SASRec's and UMISA's at T = 50 take
hours) would start again every session and never finish. So:

    python scripts/carry_checkpoints.py stop RESULTS OUT [OUT ...] [--seconds=900]
    python scripts/carry_checkpoints.py save CHECKOUT OUT [OUT ...]      # then commit OUT/carry/
    python scripts/carry_checkpoints.py restore CHECKOUT OUT [OUT ...]   # on the next machine
    python scripts/carry_checkpoints.py runners RESULTS                  # what trains on RESULTS

OUT: a ``--out`` folder of tune or compare, relative to the checkout (e.g.
``results/search/ml-1m/UMI``, ``results/ml-1m-final``); missing ones are passed over.

- ``save`` writes each unfinished run's newest ``-last`` checkpoint, the best checkpoint
  beside it and its ``elapsed.json`` (where the code keeps one) into
  ``OUT/carry/<kind>-<run>.tar.xz`` (xz takes a pair to about 45%: the two are often the same
  epoch), unless the archive already there is further along (an older copy of the checkout,
  or a run started again without ``restore``), and removes the archives of runs that have
  finished since (their record is in ``OUT/trials/`` or ``OUT/runs/``).
- ``restore`` writes each unfinished run's archive back where tune and compare look for it on
  this machine, unless an attempt there has reached the same epoch or a later one; restored
  files take the present time, so that the restored attempt is the one resumed (the newest).
- ``runners``: the processes training on RESULTS (a repository's ``results`` folder): a
  ``python -m recbole_umi.tune|compare`` or a ``bash .../search_ml1m.sh|final_table_ml1m.sh``
  working in a checkout whose ``results`` is RESULTS, one ``PID<TAB>CHECKOUT`` line each.
- ``stop``: waits up to ``--seconds`` for the runs being trained to end the epoch they are in
  (a ``-last`` newer than ``--since``, default the call), stops the runners (TERM, then KILL
  after 30 s), then saves, in each of their checkouts (and ``--checkout``'s), the OUTs and
  the ``--out`` of every runner it stopped. Exits 1 if any save failed, after trying all.

``save`` and ``restore`` refuse while a runner works in the checkout: a run could end, or
write, while it is carried. scripts/search_session.sh runs these around a session.
"""

from __future__ import annotations

import argparse
import io
import os
import signal
import sys
import tarfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

# the commands that keep checkpoints, and the folder of OUT where their finished runs' records are
RECORDS = {"tune": "trials", "compare": "runs"}
MODULES = ("recbole_umi.tune", "recbole_umi.compare")  # run as python -m MODULE
SCRIPTS = ("search_ml1m.sh", "final_table_ml1m.sh")  # run as bash SCRIPT


def is_runner(argv: list[str]) -> bool:
    """A command line that trains: python -m one of MODULES, or bash running one of SCRIPTS
    (whole arguments, not text inside one: a ``bash -c '...'`` that names them is not)."""
    if not argv:
        return False
    program = Path(argv[0]).name
    if program.startswith("python"):
        return any(argv[i] == "-m" and argv[i + 1] in MODULES for i in range(len(argv) - 1))
    return program in ("bash", "sh") and len(argv) > 1 and Path(argv[1]).name in SCRIPTS


def ancestors() -> set[int]:
    """This process and the ones it descends from (never stopped: the caller's own shell)."""
    found, pid = set(), os.getpid()
    while pid > 1 and pid not in found:
        found.add(pid)
        try:
            pid = int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            break
    return found


def processes() -> list[tuple[int, list[str], Path]]:
    """``(pid, argv, working folder)`` of every process this user can read, but its own line."""
    mine, found = ancestors(), []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) in mine:
            continue
        try:
            argv = (entry / "cmdline").read_bytes().decode(errors="replace").split("\0")[:-1]
            cwd = Path(os.readlink(entry / "cwd"))
        except OSError:  # ended meanwhile, or not ours to read
            continue
        found.append((int(entry.name), argv, cwd))
    return found


def runners_on(results: Path) -> list[tuple[int, list[str], Path]]:
    """The runners working in a checkout whose ``results`` is ``results``."""
    found = []
    for pid, argv, cwd in processes():
        try:
            linked = (cwd / "results").resolve(strict=True) == results
        except OSError:
            linked = False
        if linked and is_runner(argv):
            found.append((pid, argv, cwd))
    return found


def runners_in(checkout: Path) -> list[int]:
    return [pid for pid, argv, cwd in processes() if cwd == checkout and is_runner(argv)]


def out_of(argv: list[str]) -> Path | None:
    """A tune or compare command line's ``--out`` folder."""
    for i, arg in enumerate(argv):
        if arg.startswith("--out="):
            return Path(arg.split("=", 1)[1])
        if arg == "--out" and i + 1 < len(argv):
            return Path(argv[i + 1])
    return None


def root_of(checkout: Path, out: Path, kind: str) -> Path:
    from recbole_umi.experiments.run_files import checkpoint_root

    return checkout / checkpoint_root(checkout / out, kind, [], None)


def run_folders(checkout: Path, out: Path) -> dict[str, Path]:
    """``{"<kind>-<run>": folder}``: the checkpoint folders of ``out``'s runs in ``checkout``."""
    folders = {}
    for kind in RECORDS:
        root = root_of(checkout, out, kind)
        if root.is_dir():
            folders.update({f"{kind}-{run.name}": run for run in sorted(root.iterdir()) if run.is_dir()})
    return folders


def finished(out: Path, name: str) -> bool:
    kind, run = name.split("-", 1)
    return (out / RECORDS[kind] / f"{run}.json").is_file()


def newest_last(folder: Path) -> tuple[float, Path] | None:
    """The run's newest ``-last`` checkpoint, as tune and compare pick it (by time), and its
    time; None where it has none."""
    lasts = []
    for path in folder.glob("*-last.pth"):
        try:
            lasts.append((path.stat().st_mtime, path))
        except FileNotFoundError:  # the run ended and removed its folder meanwhile
            pass
    return max(lasts) if lasts else None


def epoch_of(data: bytes) -> int:
    """The epoch a ``-last`` checkpoint (its bytes) ended; -1 where it cannot be read. Read
    weights-only, as every checkpoint here (not through ``read_checkpoint``, which wants a
    complete training state: only the epoch is needed)."""
    import torch

    try:
        return int(torch.load(io.BytesIO(data), weights_only=True, map_location="cpu")["epoch"])
    except Exception:  # damaged, truncated, or not a checkpoint: the other attempt wins
        return -1


def archive_members(archive: Path) -> dict[str, tuple[tarfile.TarInfo, bytes]]:
    """The archive's files by name; refuses anything but plain files with bare names."""
    found = {}
    with tarfile.open(archive) as tar:
        for member in tar.getmembers():
            if not member.isfile() or Path(member.name).name != member.name or member.name in (".", ".."):
                raise ValueError(f"{archive}: {member.name!r} is not a file of a run's folder")
            found[member.name] = (member, tar.extractfile(member).read())
    return found


def archived_epoch(archive: Path) -> int:
    """The epoch of the archive's ``-last`` checkpoint; -1 where it cannot be read."""
    try:
        lasts = [data for name, (_, data) in archive_members(archive).items() if name.endswith("-last.pth")]
    except (OSError, ValueError, tarfile.TarError, EOFError) as error:
        print(f"{archive} cannot be read ({error}): it counts as behind", file=sys.stderr)
        return -1
    return epoch_of(lasts[0]) if lasts else -1


def pack(files: list[Path]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:xz") as tar:
        for path in files:
            tar.add(path, arcname=path.name)
    return buffer.getvalue()


def archive_name(archive: Path) -> str:
    name = archive.name[:-len(".tar.xz")]
    kind, _, run = name.partition("-")
    if kind not in RECORDS or run in ("", ".", "..") or "/" in run:
        raise ValueError(f"{archive}: not an archive of a run (<tune|compare>-<run>.tar.xz)")
    return name


def save(checkout: Path, out: Path) -> None:
    from recbole_umi.files import write_atomic

    real = (checkout / out).resolve()
    carry = real / "carry"
    folders = run_folders(checkout, out)
    for name, folder in folders.items():
        newest = newest_last(folder)
        if newest is None or finished(real, name):  # no epoch ended yet, or a finished run's leftover
            continue
        last = newest[1]
        archive = carry / f"{name}.tar.xz"
        try:
            files = [path for path in (last, last.with_name(last.name[:-len("-last.pth")] + ".pth"),
                                       folder / "elapsed.json") if path.is_file()]
            data, epoch = pack(files), epoch_of(last.read_bytes())
        except FileNotFoundError:  # the run ended and removed its folder meanwhile
            continue
        if archive.is_file() and archived_epoch(archive) > epoch:
            print(f"kept {out}/carry/{archive.name}: further along than {last} (epoch {epoch})")
            continue
        write_atomic(archive, data)
        print(f"carried {out} {name} (epoch {epoch}, {len(data) / 2**20:.1f} MB)")
    for archive in sorted(carry.glob("*.tar.xz")):
        name = archive_name(archive)
        if finished(real, name):
            archive.unlink()
            print(f"dropped {out}/carry/{archive.name} (finished)")
        elif name not in folders:
            print(f"kept {out}/carry/{archive.name}: not in {checkout}/saved (restore it before the runs go on)",
                  file=sys.stderr)
    if carry.is_dir() and not any(carry.iterdir()):
        carry.rmdir()


def restore(checkout: Path, out: Path) -> int:
    """Each unfinished run's archive back in ``checkout``; 1 where one could not be (said on
    stderr: that run starts again), after trying the others."""
    failed = 0
    for archive in sorted(((checkout / out).resolve() / "carry").glob("*.tar.xz")):
        try:
            restore_one(checkout, out, archive)
        except (OSError, ValueError, tarfile.TarError, EOFError) as error:
            print(f"{archive} not restored ({error}): that run starts again", file=sys.stderr)
            failed = 1
    return failed


def restore_one(checkout: Path, out: Path, archive: Path) -> None:
    from recbole_umi.files import write_atomic

    real = (checkout / out).resolve()
    name = archive_name(archive)
    if finished(real, name):
        print(f"skipped {out}/carry/{archive.name} (finished; save drops it)")
        return
    kind, run = name.split("-", 1)
    target = root_of(checkout, out, kind) / run
    files = archive_members(archive)
    there = newest_last(target) if target.is_dir() else None
    if there is not None and epoch_of(there[1].read_bytes()) >= archived_epoch(archive):
        print(f"skipped {out}/carry/{archive.name}: {there[1]} is as far along")
        return
    now = time.time()  # the newest: the attempt tune and compare resume
    for member_name, (_, data) in files.items():
        os.utime(write_atomic(target / member_name, data), (now, now))
    print(f"restored {out} {name} into {target}")


def held_runs(pid: int, out: Path) -> list[str]:
    """The runs of ``out`` (a resolved results folder) whose lock file process ``pid`` holds
    open: compare holds ``runs/<run>.json.lock`` while it makes that run (files.run_lock)."""
    records, held = out / RECORDS["compare"], []
    try:
        descriptors = list(Path(f"/proc/{pid}/fd").iterdir())
    except OSError:  # ended, or not ours to read
        return held
    for descriptor in descriptors:
        try:
            target = Path(os.readlink(descriptor))
        except OSError:
            continue
        if target.parent == records and target.name.endswith(".json.lock"):
            held.append(target.name[: -len(".json.lock")])
    return held


def training(checkout: Path, argv: list[str], pid: int | None = None) -> Path | None:
    """The checkpoint folder of the run a tune or compare process is training: the compare
    run whose lock process ``pid`` holds (the streams of one table share its ``--out``), else
    the unfinished run of its ``--out`` touched last (a tune search has an ``--out`` of its
    own)."""
    out = out_of(argv)
    if out is None:
        return None
    real = (checkout / out).resolve()
    held = held_runs(pid, real) if pid is not None else []
    if held:
        return root_of(checkout, out, "compare") / held[0]
    newest = None
    for name, folder in run_folders(checkout, out).items():
        if finished(real, name):
            continue
        try:
            touched = max([folder.stat().st_mtime] + [path.stat().st_mtime for path in folder.iterdir()])
        except FileNotFoundError:
            continue
        if newest is None or touched > newest[0]:
            newest = (touched, folder)
    return None if newest is None else newest[1]


def stop(results: Path, outs: list[Path], seconds: float, since: float, also: Path | None, poll: float = 1.0) -> int:
    found = runners_on(results)
    watched = [folder for pid, argv, cwd in found if (folder := training(cwd, argv, pid)) is not None]
    while time.time() - since < seconds and watched and runners_on(results):
        behind = [folder for folder in watched if (newest_last(folder) or (0.0,))[0] < since and folder.is_dir()]
        if not behind:
            break
        time.sleep(poll)
    for sig, grace in ((signal.SIGTERM, 30), (signal.SIGKILL, 10)):
        now = runners_on(results)
        found += now  # with any run started while it waited: its out is saved too
        for pid, _, _ in now:
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                pass
        for _ in range(grace):
            if not runners_on(results):
                break
            time.sleep(1)
    carried = {}
    for pid, argv, cwd in found:
        carried.setdefault(cwd, set(outs))
        if out_of(argv) is not None:
            carried[cwd].add(out_of(argv))
    if also is not None and also.is_dir():
        carried.setdefault(also.resolve(), set(outs))
    failed = 0
    for checkout, checkout_outs in carried.items():
        for out in sorted(checkout_outs):
            if not (checkout / out).is_dir():
                continue
            try:
                save(checkout, out)
            except Exception as error:  # the others are still saved
                print(f"{checkout}: {out} not saved: {error!r}", file=sys.stderr)
                failed = 1
    return failed


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("action", choices=("save", "restore", "stop", "runners"))
    parser.add_argument("where", type=Path, help="save, restore: the checkout; stop, runners: the results folder")
    parser.add_argument("outs", nargs="*", type=Path)
    parser.add_argument("--seconds", type=float, default=0.0, help="stop: wait at most this long for the epochs")
    parser.add_argument("--since", type=float, default=None,
                        help="stop: an epoch that ended after this time (seconds since the epoch; default now) counts")
    parser.add_argument("--checkout", type=Path, default=None, help="stop: save this checkout's runs too")
    args = parser.parse_args(argv)
    where = args.where.resolve()
    if args.action == "runners":
        for pid, _, cwd in runners_on(where):
            print(f"{pid}\t{cwd}")
        return 0
    if args.action == "stop":
        return stop(where, args.outs, args.seconds, time.time() if args.since is None else args.since, args.checkout)
    busy = runners_in(where)
    if busy:
        raise SystemExit(f"runs are going on in {where} (processes {', '.join(map(str, busy))}): stop them first "
                         "(scripts/search_session.sh stop), or a run could end, or write, while it is carried")
    failed = 0
    for out in args.outs:
        if (where / out).is_dir():
            if args.action == "save":
                save(where, out)
            else:
                failed |= restore(where, out)
    return failed


if __name__ == "__main__":
    sys.exit(main())
