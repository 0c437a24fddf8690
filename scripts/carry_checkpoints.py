"""Carries the checkpoints of unfinished runs from one machine to the next.

A search's trial (``python -m recbole_umi.tune``) or a comparison's run
(``python -m recbole_umi.compare``) cut short by the end of a session continues from its last
finished epoch only where its checkpoints are still in the checkout it ran in
(``saved/<tune|compare>-<out's name>-<hash>/<trial or run>/``, runs.py's
:func:`~recbole_umi.experiments.runs.checkpoint_root`). A session may begin on a new machine,
with a fresh checkout, and a run longer than a session (SASRec's and UMISA's at T = 50 take
hours) would start again every session and never finish. So, with the runs stopped:

    python scripts/carry_checkpoints.py wait CHECKOUT OUT [OUT ...] --seconds=900
    python scripts/carry_checkpoints.py save CHECKOUT OUT [OUT ...]      # then commit OUT/carry/
    python scripts/carry_checkpoints.py restore CHECKOUT OUT [OUT ...]   # on the next machine

OUT: a ``--out`` folder of tune or compare, relative to CHECKOUT (e.g.
``results/search/ml-1m/UMI``, ``results/ml-1m-final``); missing ones are passed over.
``save`` writes each unfinished run's newest ``-last`` checkpoint, the best checkpoint beside
it and its ``elapsed.json`` (where the code keeps one) into ``OUT/carry/<kind>-<run>.tar.xz``
(xz takes a pair to about 45%: the two are often the same epoch), keeps an archive already
there whose attempt is further along (a run started again without ``restore`` is behind it),
and removes the archives of runs that have finished since (their record is in
``OUT/trials/`` or ``OUT/runs/``). ``restore`` writes them back where tune and compare look
for them on this machine; a newer file already there stays. ``wait`` returns once every
unfinished run has ended the epoch it was in (a ``-last`` newer than the call, or than
``--since``), nothing runs in CHECKOUT any more, or ``--seconds`` have passed: stopping then
loses the least training.
``save`` and ``restore`` refuse while a search, a table or a run works in CHECKOUT
(scripts/search_session.sh stops them first).
"""

from __future__ import annotations

import argparse
import io
import os
import sys
import tarfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from recbole_umi.experiments.runs import checkpoint_root  # noqa: E402
from recbole_umi.files import write_atomic  # noqa: E402

# the commands that keep checkpoints, and the folder of OUT where their finished runs' records are
RECORDS = {"tune": "trials", "compare": "runs"}
# the command lines of what trains in a checkout (scripts/search_session.sh stops the same)
RUNNERS = ("search_ml1m.sh", "final_table_ml1m.sh", "recbole_umi.tune", "recbole_umi.compare")


def runners_in(checkout: Path) -> list[int]:
    """The processes that train in ``checkout``: a runner's command line, working there."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            command = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            cwd = Path(os.readlink(entry / "cwd"))
        except OSError:  # ended meanwhile, or not ours to read
            continue
        if cwd == checkout and any(runner in command for runner in RUNNERS):
            found.append(int(entry.name))
    return found


def run_folders(checkout: Path, out: Path) -> dict[str, Path]:
    """``{"<kind>-<run>": folder}``: the checkpoint folders of ``out``'s runs in ``checkout``."""
    folders = {}
    for kind in RECORDS:
        root = checkout / checkpoint_root(checkout / out, kind, [], None)
        if root.is_dir():
            folders.update({f"{kind}-{run.name}": run for run in sorted(root.iterdir()) if run.is_dir()})
    return folders


def folder_of(checkout: Path, out: Path, name: str) -> Path:
    kind, run = name.split("-", 1)
    return checkout / checkpoint_root(checkout / out, kind, [], None) / run


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
    try:
        return int(torch.load(io.BytesIO(data), weights_only=True, map_location="cpu")["epoch"])
    except Exception:  # damaged, truncated, or not a checkpoint: the other attempt wins
        return -1


def archived_last(archive: Path) -> tuple[str, bytes] | None:
    with tarfile.open(archive) as tar:
        for member in tar.getmembers():
            if member.name.endswith("-last.pth"):
                return member.name, tar.extractfile(member).read()
    return None


def pack(files: list[Path]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:xz") as tar:
        for path in files:
            tar.add(path, arcname=path.name)
    return buffer.getvalue()


def save(checkout: Path, out: Path) -> None:
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
            data = pack(files)
        except FileNotFoundError:  # the run ended and removed its folder meanwhile
            continue
        kept = archived_last(archive) if archive.is_file() else None
        if kept is not None and kept[0] != last.name and epoch_of(kept[1]) > epoch_of(last.read_bytes()):
            print(f"kept {out}/carry/{archive.name}: its attempt ({kept[0]}) is further along than {last}")
            continue
        write_atomic(archive, data)
        print(f"carried {out} {name} ({len(data) / 2**20:.1f} MB)")
    for archive in sorted(carry.glob("*.tar.xz")):
        name = archive.name[:-len(".tar.xz")]
        if finished(real, name):
            archive.unlink()
            print(f"dropped {out}/carry/{archive.name} (finished)")
        elif name not in folders:
            print(f"kept {out}/carry/{archive.name}: not in {checkout}/saved (restore it before the runs go on)",
                  file=sys.stderr)
    if carry.is_dir() and not any(carry.iterdir()):
        carry.rmdir()


def restore(checkout: Path, out: Path) -> None:
    real = (checkout / out).resolve()
    for archive in sorted((real / "carry").glob("*.tar.xz")):
        name = archive.name[:-len(".tar.xz")]
        if finished(real, name):
            print(f"skipped {out}/carry/{archive.name} (finished; save drops it)")
            continue
        target = folder_of(checkout, out, name)
        target.mkdir(parents=True, exist_ok=True)
        with tarfile.open(archive) as tar:
            for member in tar.getmembers():
                path = target / member.name
                if not member.isfile() or Path(member.name).name != member.name:
                    raise SystemExit(f"{archive}: {member.name!r} is not a file of a run's folder")
                if path.is_file() and path.stat().st_mtime >= member.mtime:
                    continue  # a newer epoch already there stays
                path.write_bytes(tar.extractfile(member).read())
                os.utime(path, (member.mtime, member.mtime))
        print(f"restored {out} {name} into {target}")


def wait(checkout: Path, outs: list[Path], seconds: float, since: float, poll: float = 5.0) -> None:
    while time.time() - since < seconds and runners_in(checkout):
        behind = []
        for out in outs:
            real = (checkout / out).resolve()
            for name, folder in run_folders(checkout, out).items():
                newest = newest_last(folder)
                if not finished(real, name) and (newest is None or newest[0] < since):
                    behind.append(name)
        if not behind:
            return
        time.sleep(poll)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("action", choices=("save", "restore", "wait"))
    parser.add_argument("checkout", type=Path)
    parser.add_argument("outs", nargs="+", type=Path)
    parser.add_argument("--seconds", type=float, default=0.0, help="wait: at most this long")
    parser.add_argument("--since", type=float, default=None,
                        help="wait: from this time (seconds since the epoch; default now): an epoch that "
                             "ended after it counts, also one that ended while this started")
    args = parser.parse_args(argv)
    checkout = args.checkout.resolve()
    outs = [out for out in args.outs if (checkout / out).is_dir()]
    if args.action == "wait":
        wait(checkout, outs, args.seconds, time.time() if args.since is None else args.since)
        return
    busy = runners_in(checkout)
    if busy:
        raise SystemExit(f"runs are going on in {checkout} (processes {', '.join(map(str, busy))}): stop them first "
                         "(scripts/search_session.sh stop), or a run could end, or write, while it is carried")
    for out in outs:
        (save if args.action == "save" else restore)(checkout, out)


if __name__ == "__main__":
    main()
