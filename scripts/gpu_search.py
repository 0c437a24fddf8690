"""The ml-1m search's trials on a lent GPU: what goes to the device machine, and what comes back
(scripts/gpu_search.sh runs the search there).

    python scripts/gpu_search.py prepare [--pin=COMMIT] [--data=../shared/data]
    python scripts/gpu_search.py import BACK_TAR [BACK_TAR ...] [--checkout=../wt-search15] [--ran_on=TEXT]
    python scripts/gpu_search.py aside      # the size check alone (bench/gpu_run.sh's call needs it too)
    python scripts/gpu_search.py restore    # the result folders set aside, after the call or where it failed

- ``prepare``: the search's pinned commit (scripts/search_session.sh's PIN) into ``.pinned/``
  (its code, properties/, dataset_configs/, tuning/ and scripts/, with main's scheduling scripts as search_session.sh copies
  them; ignored by git), bench/gpu_prepare.sh's wheels and ml-1m, and the wheels tune needs
  besides (hyperopt 0.2.5 and its need future); then, where what travels (the tracked tree,
  results/ most of it, and these) is over the device's 64 MiB, the largest committed result
  folders other than the search's are removed from the working tree until it fits (listed in
  ``.gpu-aside``; ``restore``, ``import`` or the next ``prepare`` checks them out again: run
  ``restore`` as soon as the device call returns, so that no commit records them deleted).
- ``import``: with the search stopped here (scripts/search_session.sh stop), each model's trial
  records made there that are missing here go into main's results (a trial made both here and
  there keeps this machine's; one made with other settings stops it before anything is
  written), each marked with the machine it ran on, and the search's tuning.json and
  widened.hyper where its trials went on there (the widening stage); each carried checkpoint
  of an unfinished trial goes into carry/ where it is further along than the one here; the
  carried checkpoints of trials now finished are dropped, here and in CHECKOUT's saved/. The
  search, started again, proposes the next trials from the count on disk, as always.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))

SEARCH = Path("results/search/ml-1m")
TRIAL_FILE = re.compile(r"results/search/ml-1m/(\w+)/trials/(\d{3})\.json")
CARRY_FILE = re.compile(r"results/search/ml-1m/(\w+)/carry/(tune-\d{3})\.tar\.xz")
STATE_FILE = re.compile(r"results/search/ml-1m/(\w+)/(tuning\.json|widened\.hyper)")  # the widening's state
# tune's needs the device lacks, as setup.cfg pins them: hyperopt 0.2.5, its need future, and
# setuptools below 81, whose pkg_resources hyperopt 0.2.5 imports (the device's own setuptools
# may be newer); the device has hyperopt's other needs
TUNE_WHEELS = ("hyperopt==0.2.5", "future==1.0.0", "setuptools==80.9.0")
ASIDE = ".gpu-aside"  # what set_aside removed: "<commit> <folder>" lines (ignored by git, so it stays here)
CARRIED = (".whl", ".device-data", ".pinned")  # gpu_search.sh's carry
DEVICE_LIMIT = 64 * 2**20  # what may travel to the device machine
ROOM = 2 * 2**20  # kept free for the trials and checkpoints written there (they come back in $OUT, not counted)


def session_pin() -> str:
    text = (ROOT / "scripts/search_session.sh").read_text()
    return re.search(r"PIN=\$\{SEARCH_PIN:-(\w+)\}", text).group(1)


def prepare(pin: str, data: Path) -> None:
    pinned = ROOT / ".pinned"
    shutil.rmtree(pinned, ignore_errors=True)
    pinned.mkdir()
    archive = git("archive", pin, "recbole_umi", "properties", "dataset_configs", "tuning", "scripts", "setup.cfg",
                  "pyproject.toml", text=False)
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        tar.extractall(pinned, filter="data")
    for name in ("two_streams.sh",):  # as search_session.sh makes the search's worktree
        shutil.copy(ROOT / "scripts" / name, pinned / "scripts" / name)
    (pinned / "PIN").write_text(git("rev-parse", f"{pin}^{{commit}}").strip() + "\n")
    # bench/gpu_prepare.sh: the wheels (tune's too) and ml-1m, then its count of what travels
    # (without .pinned/), which fails over the limit: the count below decides
    subprocess.run(["bash", str(ROOT / "bench/gpu_prepare.sh"), str(data)], cwd=ROOT,
                   env={**os.environ, "EXTRA_WHEELS": " ".join(TUNE_WHEELS)})
    missing = [name for name in (".whl/recbole-1.2.1-py3-none-any.whl", ".device-data/ml-1m/ml-1m.inter.xz")
               if not (ROOT / name).is_file()]
    missing += [f".whl/{wheel.replace('==', '-')}-*.whl" for wheel in TUNE_WHEELS
                if not any((ROOT / ".whl").glob(f"{wheel.replace('==', '-')}-*.whl"))]
    if missing:
        raise SystemExit(f"bench/gpu_prepare.sh did not make {', '.join(missing)} (its output is above)")
    set_aside()


def git(*args: str, text: bool = True):
    return subprocess.run(["git", "-C", str(ROOT), *args], check=True, capture_output=True, text=text).stdout


def travelling_bytes() -> int:
    """What the device tool sends: the tracked files there are, the untracked ones git does
    not ignore, and the carried folders."""
    names = git("ls-files", "-z", "--cached", "--others", "--exclude-standard").split("\0")
    files = [ROOT / name for name in names if name] + [path for folder in CARRIED for path in (ROOT / folder).rglob("*")]
    return files_bytes(files)


def files_bytes(paths) -> int:
    """The bytes of the plain files among ``paths``."""
    return sum(path.stat().st_size for path in paths if path.is_file())


def set_aside() -> None:
    """Removes the largest committed result folders (the search's own excepted) from the
    working tree until what travels fits the device's limit, less ``ROOM`` for what the
    search writes there, each listed in ``ASIDE`` before it goes; ``restore`` (and
    ``import``, and the next ``prepare``) checks them out again. Only folders git holds
    unchanged that no run here writes into: nothing is lost."""
    from carry_checkpoints import out_of, runners_on

    restore()
    written = [(cwd / out).resolve() for _, argv, cwd in runners_on((ROOT / "results").resolve())
               if (out := out_of(argv)) is not None]
    left = DEVICE_LIMIT - ROOM - travelling_bytes()
    aside = []
    head = git("rev-parse", "HEAD").strip()
    if left < 0:
        sizes = {folder: files_bytes(folder.rglob("*")) for folder in (ROOT / "results").iterdir()
                 if folder.is_dir() and folder.name != "search" and not folder.is_symlink()}
        for folder in sorted(sizes, key=sizes.get, reverse=True):
            name = str(folder.relative_to(ROOT))
            if left >= 0:
                break
            if git("status", "--porcelain", "--ignored", "--", name) or not git("ls-files", "--", name):
                continue  # changed, untracked or ignored files: not ours to remove
            if any(out == folder.resolve() or folder.resolve() in out.parents for out in written):
                continue  # a run writes there
            left += sizes[folder]
            with open(ROOT / ASIDE, "a") as listed:  # listed before it goes
                listed.write(f"{head} {name}\n")
            shutil.rmtree(folder)
            aside.append(name)
    if aside:
        print(f"set aside (committed; python scripts/gpu_search.py restore brings them back): {', '.join(aside)}")
    print(f"what travels: {(DEVICE_LIMIT - ROOM - left) / 2**20:.1f} MiB of the device's {DEVICE_LIMIT / 2**20:.0f}"
          + ("" if left >= 0 else "; TOO MUCH: the device tool will refuse the call"))


def restore() -> None:
    """Checks out again, each from the commit it was set aside at, the result folders
    :func:`set_aside` removed that are still missing (one changed or written meanwhile is
    left as it is)."""
    listed = ROOT / ASIDE
    if not listed.is_file():
        return
    for line in listed.read_text().splitlines():
        commit, name = line.split(" ", 1)
        if (ROOT / name).exists():
            print(f"{name} is there: left as it is")
            continue
        git("checkout", commit, "--", name)
        git("reset", "-q", "--", name)  # as committed, not staged
        print(f"restored {name}")
    listed.unlink()


def import_back(backs: list[Path], checkout: Path | None, ran_on: str) -> None:
    from carry_checkpoints import archived_epoch, run_folders, runners_on

    from recbole_umi.files import read_json, record_json, write_atomic

    busy = runners_on((ROOT / "results").resolve())
    if busy:
        raise SystemExit(f"the search runs here (processes {', '.join(str(pid) for pid, _, _ in busy)}): "
                         "stop it first (bash scripts/search_session.sh stop)")
    members = {}
    for back in backs:
        with tarfile.open(back) as tar:
            members.update({member.name: tar.extractfile(member).read() for member in tar.getmembers() if member.isfile()})
    for name, data in sorted(members.items()):  # first every check, then every write
        if TRIAL_FILE.fullmatch(name) and (ROOT / name).exists() \
                and read_json(ROOT / name)["params"] != json.loads(data)["params"]:
            raise SystemExit(f"{name}: made here and there with other settings: not the same search (nothing imported)")
    models, advanced = set(), set()
    for name, data in sorted(members.items()):
        if match := TRIAL_FILE.fullmatch(name):
            models.add(match.group(1))
            target = ROOT / name
            if target.exists():
                continue
            advanced.add(match.group(1))
            record = {**json.loads(data), "ran_on": ran_on}
            write_atomic(target, record_json(record))
            print(f"imported {name}: valid {record['best_valid_score']} ({record['epochs']} epochs, "
                  f"{record['wall_s']:.0f} s)")
    for name, data in sorted(members.items()):  # a search that went on there: its record and widened space too
        if (match := STATE_FILE.fullmatch(name)) and match.group(1) in advanced and (
                not (ROOT / name).exists() or (ROOT / name).read_bytes() != data):
            write_atomic(ROOT / name, data)
            print(f"imported {name}")
    for name, data in sorted(members.items()):
        if match := CARRY_FILE.fullmatch(name):
            model, run = match.groups()
            models.add(model)
            if (ROOT / SEARCH / model / "trials" / f"{run[5:]}.json").exists():
                continue  # finished (here or there)
            target = ROOT / name
            with tempfile.TemporaryDirectory() as folder:
                incoming = Path(folder) / f"{run}.tar.xz"
                incoming.write_bytes(data)
                theirs, ours = archived_epoch(incoming), archived_epoch(target) if target.exists() else -1
            if theirs > ours:
                write_atomic(target, data)
                print(f"imported {name} (epoch {theirs}; here {ours})")
            else:
                print(f"kept this machine's {name} (epoch {ours}; there {theirs})")
    for model in sorted(models):  # carried checkpoints of the trials finished now
        out = SEARCH / model
        for archive in sorted((ROOT / out / "carry").glob("tune-*.tar.xz")):
            if (ROOT / out / "trials" / f"{archive.name[5:8]}.json").exists():
                archive.unlink()
                print(f"dropped {out}/carry/{archive.name} (finished)")
        if checkout is not None:
            for name, folder in run_folders(checkout, out).items():
                if name.startswith("tune-") and (ROOT / out / "trials" / f"{name[5:]}.json").exists():
                    shutil.rmtree(folder)
                    print(f"removed {folder} (finished)")
    restore()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("action", choices=("prepare", "import", "aside", "restore"))
    parser.add_argument("backs", nargs="*", type=Path, help="import: the back-<model>.tar files scripts/gpu_search.sh wrote")
    parser.add_argument("--pin", default=None, help="prepare: the search's commit (default: search_session.sh's PIN)")
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared/data", help="prepare: the folder with ml-1m/")
    parser.add_argument("--checkout", type=Path, default=None, help="import: the search's worktree here")
    parser.add_argument("--ran_on", default="a lent GPU (scripts/gpu_search.sh)", help="import: the device, for the records")
    args = parser.parse_args(argv)
    if args.action == "prepare":
        prepare(args.pin or session_pin(), args.data)
    elif args.action == "aside":
        set_aside()
    elif args.action == "restore":
        restore()
    elif not args.backs:
        parser.error("import needs the BACK_TAR files")
    else:
        import_back(args.backs, None if args.checkout is None else args.checkout.resolve(), args.ran_on)


if __name__ == "__main__":
    main()
