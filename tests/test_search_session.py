"""A search's unfinished runs carried from one machine to the next
(scripts/carry_checkpoints.py) and the search started and stopped around a session
(scripts/search_session.sh), on stand-in checkouts, checkpoints and processes: the
checkpoints land where tune looks for them (runs.py's own rule), the newest attempt and the
newer file win, finished runs are dropped, and only what trains on this repository's results
is stopped."""

import io
import os
import subprocess
import sys
import tarfile
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))

import carry_checkpoints  # noqa: E402

from recbole_umi.checkpoints.format import write_checkpoint  # noqa: E402
from recbole_umi.experiments.run_files import checkpoint_root  # noqa: E402

OUT = Path("results/search/ml-1m/UMI")


def repository(tmp_path: Path, *scripts: str) -> Path:
    """A repository beside ``tmp_path``'s other folders holding ``scripts/<name>`` for each of
    ``scripts`` and a search's results folder."""
    root = tmp_path / "main"
    (root / "scripts").mkdir(parents=True)
    for name in scripts:
        (root / "scripts" / name).write_text((ROOT / "scripts" / name).read_text())
    (root / OUT / "trials").mkdir(parents=True)
    return root


def checkout(root: Path, name: str) -> Path:
    """A checkout beside ``root`` whose results/ is a link to root's (as the search's worktree)."""
    folder = root.parent / name
    folder.mkdir()
    (folder / "results").symlink_to(root / "results")
    return folder


def trial_folder(where: Path, trial: int, kind: str = "tune", out: Path = OUT) -> Path:
    """Where ``kind`` (tune, compare) keeps the checkpoints of ``trial`` of ``out`` run in
    ``where``: runs.py's rule, computed as the command does, from inside the checkout."""
    before = Path.cwd()
    os.chdir(where)
    try:
        return where / checkpoint_root(out, kind, [], None) / (f"{trial:03d}" if kind == "tune" else str(trial))
    finally:
        os.chdir(before)


def members(archive: Path) -> dict[str, bytes]:
    with tarfile.open(archive) as tar:
        return {member.name: tar.extractfile(member).read() for member in tar.getmembers()}


def carry(*args) -> None:
    carry_checkpoints.main([str(arg) for arg in args])


def checkpoint_bytes(tmp_path: Path, epoch: int) -> bytes:
    """A ``-last`` checkpoint's bytes at ``epoch`` (only its epoch matters here)."""
    return write_checkpoint(tmp_path / f"epoch{epoch}.pth", {"kind": "last", "epoch": epoch}).read_bytes()


def test_save_carries_the_newest_attempt_and_restore_puts_it_where_tune_looks(tmp_path):
    root = repository(tmp_path)
    old = checkout(root, "old")
    trial = trial_folder(old, 2)
    trial.mkdir(parents=True)
    (trial / "UMI-Dec-06-2026_10-00-00-last.pth").write_bytes(b"an abandoned attempt")  # first by name, older
    os.utime(trial / "UMI-Dec-06-2026_10-00-00-last.pth", (1e9, 1e9))
    (trial / "UMI-Dec-05-2026_01-00-00-last.pth").write_bytes(checkpoint_bytes(tmp_path, 7))
    (trial / "UMI-Dec-05-2026_01-00-00.pth").write_bytes(b"the best, epoch 5")
    (trial / "elapsed.json").write_text('{"elapsed_s": 600.0}\n')
    trial_folder(old, 3).mkdir()  # no epoch ended yet: nothing to carry
    other = old / "saved" / "tune-UMI-00000000" / "004"  # another search's (another out's hash)
    other.mkdir(parents=True)
    (other / "UMI-x-last.pth").write_bytes(b"not this search's")

    carry("save", old, OUT)
    archives = sorted((root / OUT / "carry").iterdir())
    assert [path.name for path in archives] == ["tune-002.tar.xz"]
    assert members(archives[0]) == {"UMI-Dec-05-2026_01-00-00-last.pth": checkpoint_bytes(tmp_path, 7),
                                    "UMI-Dec-05-2026_01-00-00.pth": b"the best, epoch 5",
                                    "elapsed.json": b'{"elapsed_s": 600.0}\n'}

    new = checkout(root, "new")  # the next machine: nothing in saved/
    carry("save", new, OUT)  # a save before the restore keeps what it cannot see
    assert [path.name for path in (root / OUT / "carry").iterdir()] == ["tune-002.tar.xz"]
    carry("restore", new, OUT)
    restored = trial_folder(new, 2)
    assert (restored / "UMI-Dec-05-2026_01-00-00-last.pth").read_bytes() == checkpoint_bytes(tmp_path, 7)
    assert (restored / "UMI-Dec-05-2026_01-00-00.pth").read_bytes() == b"the best, epoch 5"

    (restored / "UMI-Dec-05-2026_01-00-00-last.pth").write_bytes(checkpoint_bytes(tmp_path, 9))  # it trained on
    carry("restore", new, OUT)
    assert carry_checkpoints.epoch_of((restored / "UMI-Dec-05-2026_01-00-00-last.pth").read_bytes()) == 9

    (root / OUT / "trials" / "002.json").write_text("{}")  # the trial finished
    carry("restore", checkout(root, "third"), OUT)
    assert not trial_folder(root.parent / "third", 2).exists()  # a finished trial is not put back
    carry("save", new, OUT)
    assert not (root / OUT / "carry").exists()  # dropped, and the empty folder with it


def test_save_carries_compare_runs_of_a_table_too(tmp_path):
    root = repository(tmp_path)
    table = Path("results/ml-1m-final")
    (root / table / "runs").mkdir(parents=True)
    work = checkout(root, "wt")
    run = trial_folder(work, "UMISA__seed2021", kind="compare", out=table)
    run.mkdir(parents=True)
    (run / "UMISA-t-last.pth").write_bytes(b"epoch 2")
    carry("save", work, table, OUT)
    assert members(root / table / "carry" / "compare-UMISA__seed2021.tar.xz") == {"UMISA-t-last.pth": b"epoch 2"}
    fresh = checkout(root, "fresh")
    carry("restore", fresh, table)
    assert (trial_folder(fresh, "UMISA__seed2021", kind="compare", out=table) / "UMISA-t-last.pth").is_file()


def write_archive(archive: Path, files: dict[str, bytes]) -> Path:
    archive.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(archive, "w:xz") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size, info.mtime = len(data), 1e9
            tar.addfile(info, io.BytesIO(data))
    return archive


def test_save_never_replaces_an_archive_further_along_whatever_the_file_names(tmp_path):
    root = repository(tmp_path)
    carried = write_archive(root / OUT / "carry" / "tune-005.tar.xz",
                            {"UMI-first-last.pth": checkpoint_bytes(tmp_path, 9)})
    work = checkout(root, "wt")  # the search ran here without a restore: trial 5 started again
    trial = trial_folder(work, 5)
    trial.mkdir(parents=True)
    (trial / "UMI-again-last.pth").write_bytes(checkpoint_bytes(tmp_path, 2))
    carry("save", work, OUT)
    assert list(members(carried)) == ["UMI-first-last.pth"]
    stale = checkout(root, "stale")  # an older copy of the same attempt: the same file name
    (trial_folder(stale, 5)).mkdir(parents=True)
    (trial_folder(stale, 5) / "UMI-first-last.pth").write_bytes(checkpoint_bytes(tmp_path, 3))
    carry("save", stale, OUT)
    assert carry_checkpoints.epoch_of(members(carried)["UMI-first-last.pth"]) == 9
    (trial / "UMI-again-last.pth").write_bytes(checkpoint_bytes(tmp_path, 11))  # now further along
    carry("save", work, OUT)
    assert list(members(carried)) == ["UMI-again-last.pth"]


def test_restore_makes_the_attempt_further_along_the_one_resumed(tmp_path):
    root = repository(tmp_path)
    write_archive(root / OUT / "carry" / "tune-005.tar.xz", {"UMI-first-last.pth": checkpoint_bytes(tmp_path, 9)})
    work = checkout(root, "wt")  # a kept machine, where trial 5 was started again without a restore
    trial = trial_folder(work, 5)
    trial.mkdir(parents=True)
    (trial / "UMI-again-last.pth").write_bytes(checkpoint_bytes(tmp_path, 2))
    carry("restore", work, OUT)
    assert carry_checkpoints.newest_last(trial)[1].name == "UMI-first-last.pth"  # tune resumes the newest
    (trial / "UMI-first-last.pth").unlink()
    (trial / "UMI-again-last.pth").write_bytes(checkpoint_bytes(tmp_path, 12))  # further along than the archive
    carry("restore", work, OUT)
    assert not (trial / "UMI-first-last.pth").exists()


def test_restore_refuses_an_archive_that_would_write_outside_its_run_folder_and_restores_the_rest(tmp_path):
    root = repository(tmp_path)
    write_archive(root / OUT / "carry" / "tune-006.tar.xz", {"../../escape.pth": b"x"})
    write_archive(root / OUT / "carry" / "tune-007.tar.xz", {"UMI-t-last.pth": b"epoch 1"})
    work = checkout(root, "wt")
    assert carry_checkpoints.main(["restore", str(work), str(OUT)]) == 1  # said, and the others restored
    assert not list(root.parent.rglob("escape.pth"))
    assert (trial_folder(work, 7) / "UMI-t-last.pth").read_bytes() == b"epoch 1"


def test_runners_are_whole_command_lines_not_text_naming_them():
    assert carry_checkpoints.is_runner(["/usr/bin/python3.11", "-m", "recbole_umi.tune", "--model=UMI"])
    assert carry_checkpoints.is_runner(["python", "-u", "-m", "recbole_umi.compare"])
    assert carry_checkpoints.is_runner(["bash", "scripts/search_ml1m.sh", "../shared/data", "UMI"])
    assert carry_checkpoints.is_runner(["/bin/bash", "/w/scripts/final_table_ml1m.sh"])
    assert not carry_checkpoints.is_runner(["bash", "-c", "bash scripts/search_ml1m.sh; python -m recbole_umi.tune"])
    assert not carry_checkpoints.is_runner(["git", "commit", "-m", "recbole_umi.tune"])
    assert not carry_checkpoints.is_runner(["python", "-m", "recbole_umi.export"])


def fake_tune(cwd: Path, out: Path = OUT) -> subprocess.Popen:
    """A process whose command line is a tune run's, working in ``cwd``."""
    process = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)", "-m", "recbole_umi.tune",
                                "--model=UMI", f"--out={out}"], cwd=cwd)
    for _ in range(100):  # until it runs
        if b"recbole_umi.tune" in Path(f"/proc/{process.pid}/cmdline").read_bytes():
            break
        time.sleep(0.02)
    return process


def fake_compare(cwd: Path, out: Path, run: str) -> subprocess.Popen:
    """A process whose command line is a compare run's, holding ``run``'s lock file open as
    compare does while it makes that run (files.run_lock)."""
    lock = cwd / out / "runs" / f"{run}.json.lock"
    lock.parent.mkdir(parents=True, exist_ok=True)
    process = subprocess.Popen([sys.executable, "-c", "import sys, time; held = open(sys.argv[1], 'a'); time.sleep(60)",
                                str(lock), "-m", "recbole_umi.compare", f"--out={out}"], cwd=cwd)
    for _ in range(200):  # until it holds the lock
        if carry_checkpoints.held_runs(process.pid, (cwd / out).resolve()) == [run]:
            break
        time.sleep(0.02)
    return process


def test_stop_waits_for_the_run_of_each_table_stream_sharing_one_out(tmp_path):
    """The final table's two streams are compare processes with one --out: each is watched by
    the run whose lock it holds, so stop waits for both epochs (it took the folder touched last
    for both, returned at the first one's epoch and killed the other mid-epoch)."""
    root = repository(tmp_path)
    work = checkout(root, "wt")
    out = Path("results/ml-1m-final")
    runs = ("UMISA__seed2021", "UMI__seed2021")
    folders = {run: trial_folder(work, run, "compare", out) for run in runs}
    for folder in folders.values():
        folder.mkdir(parents=True)
        (folder / "run-last.pth").write_bytes(checkpoint_bytes(tmp_path, 1))
    since = time.time()
    processes = [fake_compare(work, out, run) for run in runs]
    try:
        os.utime(folders["UMISA__seed2021"] / "run-last.pth", (since - 60, since - 60))  # its epoch is still going
        (folders["UMI__seed2021"] / "run-last.pth").write_bytes(checkpoint_bytes(tmp_path, 2))  # UMI's has ended
        assert [carry_checkpoints.training(work, process.args, process.pid) for process in processes] == [
            folders[run] for run in runs]

        def umisa_epoch_ends():
            time.sleep(1.0)
            (folders["UMISA__seed2021"] / "run-last.pth").write_bytes(checkpoint_bytes(tmp_path, 2))

        import threading

        ending = threading.Thread(target=umisa_epoch_ends)
        ending.start()
        assert carry_checkpoints.stop(root.resolve() / "results", [], 30, since, None, poll=0.05) == 0
        assert not ending.is_alive()  # it waited for UMISA's epoch, not only UMI's
        assert all(process.wait(5) is not None for process in processes)
        carried = {path.name for path in (root / out / "carry").iterdir()}
        assert carried == {f"compare-{run}.tar.xz" for run in runs}, carried
    finally:
        for process in processes:
            process.kill()
            process.wait()


def test_save_and_restore_refuse_while_runs_go_on_in_the_checkout(tmp_path):
    root = repository(tmp_path)
    work = checkout(root, "wt")
    tune = fake_tune(work)
    try:
        for action in ("save", "restore"):
            with pytest.raises(SystemExit, match="runs are going on in"):
                carry(action, work, OUT)
        carry("save", checkout(root, "elsewhere"), OUT)  # not that checkout's
    finally:
        tune.kill()
        tune.wait()


STREAMS = ('source scripts/two_streams.sh\n'
           f'a() {{ {sys.executable} -c "import time; time.sleep(60)" -m recbole_umi.tune --out={OUT}; }}\n'
           'b() { sleep 60; }\n'
           'two_streams a b\n')


def pinned_search(tmp_path: Path, search: str = STREAMS) -> tuple[Path, dict]:
    """A repository whose pinned commit's scripts/search_ml1m.sh stands in for the search
    (``search``, after a line writing its arguments to started.txt; by default two streams
    through the real two_streams.sh, which ends them with ``kill 0``, one a stand-in tune run
    of UMI's search); (the repository, the environment with SEARCH_PIN naming that commit)."""
    root = repository(tmp_path, "search_session.sh", "carry_checkpoints.py", "two_streams.sh",
                      "synth_profile_ablation.sh", "final_table_ml1m.sh", "search_edges.py")
    (root / "tuning" / "synth").mkdir(parents=True)
    for name in ("noise_profile.yaml", "one_noise_field.yaml"):
        (root / "tuning" / "synth" / name).write_text("# a profile\n")
    (root / "scripts" / "search_ml1m.sh").write_text('printf "%s\\n" "$@" > started.txt\n' + search)
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@t"]
    subprocess.run([*git, "init", "-q"], cwd=root, check=True)
    subprocess.run([*git, "add", "scripts", "tuning"], cwd=root, check=True)
    subprocess.run([*git, "commit", "-qm", "the pin"], cwd=root, check=True)
    pin = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True).stdout.strip()
    (root / "scripts" / "search_ml1m.sh").write_text("echo main's, not the pin's\n")  # main moved on
    with (root / "scripts" / "search_edges.py").open("a") as edges:
        edges.write("# main's limits, not the pin's\n")
    (tmp_path / "shared" / "data").mkdir(parents=True)
    return root, {**os.environ, "SEARCH_PIN": pin}


def working_in(folder: Path) -> list[int]:
    return carry_checkpoints.runners_in(folder.resolve())


def test_search_session_starts_the_pinned_search_and_stops_it_after_the_epoch_carrying_its_trial(tmp_path):
    root, env = pinned_search(tmp_path)
    archive = write_archive(root / OUT / "carry" / "tune-002.tar.xz", {"UMI-t-last.pth": b"epoch 3"})
    worktree = tmp_path / "wt-search"
    session = ["bash", "scripts/search_session.sh"]
    unlinked = tmp_path / "unlinked"  # a search of other results: never stopped
    unlinked.mkdir()
    (unlinked / "results").mkdir()
    decoy = fake_tune(unlinked)
    done = subprocess.run([*session, "start", str(worktree)], cwd=root, capture_output=True, text=True, env=env,
                          timeout=60)
    other = checkout(root, "other")
    try:
        assert done.returncode == 0, done.stderr
        for _ in range(200):
            if (worktree / "started.txt").is_file() and len(working_in(worktree)) >= 2:
                break
            time.sleep(0.05)
        assert (worktree / "started.txt").read_text().split() == [
            str(tmp_path / "shared" / "data"), "ComiRecDR", "UMI", "UMISA", "SASRec", "SINE", "SASRecMatching", "ComiRecSA"]
        assert (worktree / "results").resolve() == (root / "results").resolve()
        assert (worktree / "tuning" / "synth" / "one_noise_field.yaml").is_file()
        # main's widening rule (its limits), not the pin's
        edges_script = "scripts/search_edges.py"
        assert (worktree / edges_script).read_text() == (root / edges_script).read_text()
        trial = trial_folder(worktree, 2)
        assert (trial / "UMI-t-last.pth").read_bytes() == b"epoch 3"  # restored

        again = subprocess.run([*session, "start", str(other)], cwd=root, capture_output=True, text=True, env=env)
        assert again.returncode == 1 and str(worktree) in again.stderr  # a second search is refused
        elsewhere = fake_tune(other)  # a run on main's results from another checkout: stopped too

        began = time.monotonic()
        # the caller's own shell names a runner in its text: not stopped
        stop = subprocess.Popen(["bash", "-c", "bash scripts/search_session.sh stop 60; echo next # recbole_umi.tune"],
                                cwd=root, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
        time.sleep(3)  # three of its polls
        assert stop.poll() is None and working_in(worktree)  # waiting for the epoch to end
        (trial / "UMI-t-last.pth").write_bytes(b"epoch 4")  # it ends
        out, err = stop.communicate(timeout=60)
        assert stop.returncode == 0 and out.rstrip().endswith("next"), err
        assert time.monotonic() - began < 45  # not the whole minute
        assert working_in(worktree) == [] and elsewhere.wait(5) is not None
        assert decoy.poll() is None
        assert members(archive) == {"UMI-t-last.pth": b"epoch 4"}
    finally:
        for pid in working_in(worktree) + working_in(other):
            os.kill(pid, 9)
        decoy.kill()
        decoy.wait()


@pytest.mark.parametrize("search_ends", ["done", "failed"])
def test_search_session_starts_the_final_table_once_the_search_has_ended(tmp_path, search_ends):
    """A search that ends with every model done is followed by the final table, from the
    pinned worktree (main's final_table_ml1m.sh copied in), in the session's process group; a
    search that fails (or is stopped) is not, and start says the search ended at once; a start
    in a worktree made before copies main's scripts in again."""
    root, env = pinned_search(tmp_path, "exit 0\n" if search_ends == "done" else "exit 3\n")
    (root / "scripts" / "final_table_ml1m.sh").write_text('printf "%s\\n" "$@" > table.txt\nsleep 30\n')
    worktree = tmp_path / "wt-search"
    done = subprocess.run(["bash", "scripts/search_session.sh", "start", str(worktree)], cwd=root,
                          capture_output=True, text=True, env=env, timeout=60)
    try:
        assert (worktree / "started.txt").is_file()  # the search ran first
        if search_ends == "done":
            assert done.returncode == 0, done.stderr
            assert (worktree / "table.txt").read_text().split() == [str(tmp_path / "shared" / "data")]
            assert working_in(worktree)  # the table is a runner: stop finds it
        else:
            assert done.returncode == 1 and "ended at once" in done.stderr
            assert not (worktree / "table.txt").exists()
            # started again in the worktree the first start made: main's scripts copied in again
            with (root / "scripts" / "search_edges.py").open("a") as edges:
                edges.write("# main's newer limits\n")
            again = subprocess.run(["bash", "scripts/search_session.sh", "start", str(worktree)], cwd=root,
                                   capture_output=True, text=True, env=env, timeout=60)
            assert again.returncode == 1 and "ended at once" in again.stderr
            edges_script = "scripts/search_edges.py"
            assert (worktree / edges_script).read_text() == (root / edges_script).read_text()
    finally:
        for pid in working_in(worktree):
            os.kill(pid, 9)
