"""The experiment scripts' shell: every script under scripts/ and bench/ parses, and the
helpers they share (scripts/two_streams.sh) run compare as the scripts expect, checked with
a stand-in ``python`` that records its arguments instead of training."""

import os
import subprocess
import tarfile
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SCRIPTS = sorted([*ROOT.glob("scripts/*.sh"), *ROOT.glob("bench/*.sh")])


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_every_shell_script_parses(script):
    done = subprocess.run(["bash", "-n", str(script)], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


def recording_python(tmp_path: Path, record_threads: bool = False) -> tuple[Path, Path]:
    """A folder with a stand-in ``python`` that writes each call's arguments, one per line
    (after ``OMP_NUM_THREADS=...`` with ``record_threads``), to a file of its own in a calls
    folder, named by the time of the call and its process (two streams calling at once keep
    both; sorted names are the calls in order); (the folder to put first on the PATH, the calls
    folder)."""
    bin_dir, calls = tmp_path / "bin", tmp_path / "calls"
    bin_dir.mkdir()
    calls.mkdir()
    threads = '"OMP_NUM_THREADS=$OMP_NUM_THREADS" ' if record_threads else ""
    (bin_dir / "python").write_text(f'#!/usr/bin/env bash\n'
                                    f'printf "%s\\n" {threads}"$@" > {calls}/$(date +%s%N)-$$\n')
    (bin_dir / "python").chmod(0o755)
    return bin_dir, calls


def run_helpers(body: str, tmp_path: Path) -> tuple[str, list[list[str]]]:
    """``body`` run after sourcing two_streams.sh, with a ``python`` on the PATH that writes
    each call's arguments, one per line, to a file of its own; (stdout, the calls in order)."""
    bin_dir, calls = recording_python(tmp_path)
    done = subprocess.run(["bash", "-c", f'set -euo pipefail; source scripts/two_streams.sh; {body}'], cwd=ROOT,
                          capture_output=True, text=True, env={"PATH": f"{bin_dir}:/usr/bin:/bin"})
    assert done.returncode == 0, done.stderr
    return done.stdout, [path.read_text().splitlines() for path in sorted(calls.iterdir())]


def test_join_puts_commas_between(tmp_path):
    out, _ = run_helpers('join A B+HN C; join; join "one two"', tmp_path)
    assert out.splitlines() == ["A,B+HN,C", "", "one two"]


def test_compare_seeds_runs_compare_once_a_seed_in_order(tmp_path):
    _, calls = run_helpers('seeds=(2021 2022 2023); common=(--dataset=ml-1m "--out=a b"); '
                           'compare_seeds "$(join UMI MIND)" stream_a', tmp_path)
    assert calls == [["-m", "recbole_umi.compare", "--models=UMI,MIND", "--dataset=ml-1m", "--out=a b",
                      f"--seeds={seed}", "--table=stream_a"] for seed in (2021, 2022, 2023)]


def test_two_streams_runs_both_and_reports_a_failure(tmp_path):
    out, _ = run_helpers('a() { echo a; }; b() { echo b; }; two_streams a b', tmp_path)
    assert sorted(out.split()) == ["a", "b"]
    done = subprocess.run(["bash", "-c", "source scripts/two_streams.sh; a() { true; }; b() { false; }; two_streams a b"],
                          cwd=ROOT, capture_output=True, text=True)
    assert done.returncode == 1 and "a stream failed" in done.stderr


def checkout_with(root: Path, script: str) -> Path:
    """``root`` as a checkout holding ``scripts/<script>`` and the helpers it sources."""
    (root / "scripts").mkdir(parents=True)
    for name in (script, "two_streams.sh"):
        (root / "scripts" / name).write_text((ROOT / "scripts" / name).read_text())
    return root


def fake_checkout(tmp_path: Path, finished: dict[str, int]) -> tuple[Path, Path, Path]:
    """A checkout holding scripts/final_table_ml1m.sh, its helpers, and the search's results
    as ``finished`` says (model: trials done, with best.yaml chosen among them); (its root, a
    bin folder with the recording ``python``, the calls folder)."""
    root = checkout_with(tmp_path / "checkout", "final_table_ml1m.sh")
    (root / "tuning" / "ml-1m-search").mkdir(parents=True)
    (root / "tuning" / "ml-1m-search" / "search.yaml").write_text("train_batch_size: 1024\n")
    for model, trials in finished.items():
        search = root / "results" / "search" / "ml-1m" / model
        (search / "trials").mkdir(parents=True)
        for i in range(1, trials + 1):
            (search / "trials" / f"{i:03d}.json").write_text("{}")
        (search / "best.yaml").write_text(f"# Best of {trials} random trials for {model}\nlearning_rate: 0.001\n")
    bin_dir, calls = recording_python(tmp_path, record_threads=True)
    return root, bin_dir, calls


def run_final_table(root: Path, bin_dir: Path, models: str | None) -> subprocess.CompletedProcess:
    env = {"PATH": f"{bin_dir}:/usr/bin:/bin", **({"MODELS": models} if models is not None else {})}
    return subprocess.run(["bash", "scripts/final_table_ml1m.sh", str(root)], cwd=root, capture_output=True, text=True,
                          env=env)


def test_final_table_runs_the_finished_models_alone_with_MODELS(tmp_path):
    root, bin_dir, calls = fake_checkout(tmp_path, {"YoutubeDNN": 20, "MIND": 20, "UMI": 7})
    done = run_final_table(root, bin_dir, "YoutubeDNN")
    assert done.returncode == 0, done.stderr
    runs = [path.read_text().splitlines() for path in sorted(calls.iterdir())]
    assert [run[:3] for run in runs] == [["OMP_NUM_THREADS=1", "-m", "recbole_umi.compare"]] * 5
    assert [run[3] for run in runs] == ["--models=YoutubeDNN"] * 5
    assert [arg for run in runs for arg in run if arg.startswith("--seeds=")] == [
        f"--seeds={seed}" for seed in (2021, 2022, 2023, 2024, 2025)]
    # the plan holds every finished search, so that a second stream's MODELS run writes the same
    out = root / "results" / "ml-1m-final"
    assert (out / "plan.yaml").read_text().splitlines() == [
        f"{model}: [tuning/ml-1m-search/search.yaml,results/search/ml-1m/{model}/best.yaml]"
        for model in ("MIND", "YoutubeDNN")]
    assert sorted(p.name for p in out.iterdir()) == ["plan.yaml"]  # no table, no leftovers


def test_final_table_refuses_unfinished_searches_and_unknown_models(tmp_path):
    root, bin_dir, calls = fake_checkout(tmp_path, {"YoutubeDNN": 20, "UMI": 7})
    done = run_final_table(root, bin_dir, "YoutubeDNN UMI")
    assert done.returncode == 1 and "UMI's search is not finished (7 of 20 trials)" in done.stderr
    done = run_final_table(root, bin_dir, None)  # the whole table: every search first
    assert done.returncode == 1 and "UMISA's search is not finished (0 of 20 trials)" in done.stderr
    done = run_final_table(root, bin_dir, "YoutubeDNN Foo")
    assert done.returncode == 2 and "MODELS: Foo is not one of the table's" in done.stderr
    assert not any(calls.iterdir())


def test_profile_ablation_reads_PROFILE_and_writes_OUT(tmp_path):
    root, synth = checkout_with(tmp_path / "checkout", "synth_profile_ablation.sh"), tmp_path / "data"
    for folder in (root / "results" / "synth-final", synth / "synth"):
        folder.mkdir(parents=True)
        (folder / "generator.json").write_text('{"seed": 2022}\n')
    (synth / "synth" / "synth.inter").write_text("")
    (root / "one.yaml").write_text("profile_fields: [f06]\n")
    bin_dir, calls = recording_python(tmp_path)

    def ablation(profile):
        return subprocess.run(["bash", "scripts/synth_profile_ablation.sh", str(synth)], cwd=root, capture_output=True,
                              text=True, env={"PATH": f"{bin_dir}:/usr/bin:/bin", "OUT": "results/arm",
                                              "PROFILE": profile})

    done = ablation("two.yaml")
    assert done.returncode == 2 and "PROFILE: no file two.yaml" in done.stderr and not any(calls.iterdir())
    done = ablation("one.yaml")
    assert done.returncode == 0, done.stderr
    runs = [path.read_text().splitlines() for path in sorted(calls.iterdir())]
    assert len(runs) == 7  # three seeds in each stream, then the table
    assert all("--config_files=one.yaml" in run and "--out=results/arm" in run for run in runs)
    assert sorted(run[2] for run in runs[:6]) == ["--models=UMI,MIND,YoutubeDNN,ProfileDSSM"] * 3 + ["--models=UMISA"] * 3
    assert runs[6][2] == "--models=UMISA,UMI,MIND,YoutubeDNN,ProfileDSSM" and "--table_only=True" in runs[6]
    assert (root / "results" / "arm" / "generator.json").read_text() == '{"seed": 2022}\n'


def test_final_table_runs_every_model_in_two_streams_then_writes_the_table(tmp_path):
    models = ["UMISA", "UMI", "MIND", "ComiRecDR", "ComiRecSA", "YoutubeDNN", "ProfileDSSM", "SASRecMatching",
              "SASRec", "SINE"]
    root, bin_dir, calls = fake_checkout(tmp_path, {model: 20 for model in models})
    out = root / "results" / "ml-1m-final"
    out.mkdir(parents=True)
    for leftover in ("stream_a.md", "stream_b.csv", "stream_a_tests.csv"):  # the streams' own tables
        (out / leftover).write_text("")
    done = run_final_table(root, bin_dir, None)
    assert done.returncode == 0, done.stderr
    runs = [path.read_text().splitlines() for path in sorted(calls.iterdir())]
    assert len(runs) == 11  # five seeds in each stream, then the table
    streams = sorted(run[3] for run in runs[:10])
    assert streams == sorted(["--models=YoutubeDNN,MIND,ComiRecSA,UMISA,SASRec"] * 5
                             + ["--models=ProfileDSSM,ComiRecDR,UMI,SASRecMatching,SINE"] * 5)
    assert all(run[0] == "OMP_NUM_THREADS=1" for run in runs[:10])
    table = runs[10]
    assert table[1:4] == ["-m", "recbole_umi.compare", f"--models={','.join(models)}"]
    assert "--seeds=2021,2022,2023,2024,2025" in table and "--table_only=True" in table
    assert sorted(p.name for p in out.iterdir()) == ["plan.yaml"]  # the streams' tables removed


def search_checkout(root: Path, name: str) -> Path:
    """A search's checkout beside the repository ``root``, its results/ a link to root's (as
    results/search/ml-1m/README.md sets it up)."""
    checkout = root.parent / name
    checkout.mkdir()
    (checkout / "results").symlink_to(root / "results")
    return checkout


def tune_folder(checkout: Path, model: str, trial: int, monkeypatch) -> Path:
    """Where ``tune`` keeps trial ``trial``'s checkpoints when run in ``checkout`` (runs.py's own rule)."""
    from recbole_umi.experiments.runs import checkpoint_root

    monkeypatch.chdir(checkout)
    return checkout / checkpoint_root(Path(f"results/search/ml-1m/{model}"), "tune", [], None) / f"{trial:03d}"


def carry(action: str, root: Path, checkout: Path) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", "scripts/search_carry.sh", action, str(checkout)], cwd=root,
                          capture_output=True, text=True)


def test_search_carry_takes_unfinished_trials_to_a_new_checkout_and_drops_finished_ones(tmp_path, monkeypatch):
    root = checkout_with(tmp_path / "main", "search_carry.sh")
    search = root / "results" / "search" / "ml-1m"
    (search / "UMI" / "trials").mkdir(parents=True)
    (search / "UMI" / "trials" / "001.json").write_text("{}")
    old = search_checkout(root, "old")
    trial = tune_folder(old, "UMI", 2, monkeypatch)
    trial.mkdir(parents=True)
    (trial / "UMI-Dec-04-2026_10-00-00-last.pth").write_bytes(b"an abandoned attempt")
    os.utime(trial / "UMI-Dec-04-2026_10-00-00-last.pth", (1e9, 1e9))
    (trial / "UMI-Dec-05-2026_01-00-00-last.pth").write_bytes(b"epoch 7")
    (trial / "UMI-Dec-05-2026_01-00-00.pth").write_bytes(b"epoch 5")
    tune_folder(old, "UMI", 3, monkeypatch).mkdir()  # no epoch finished: nothing to carry
    other = old / "saved" / "tune-UMI-00000000" / "004"  # another search's trial
    other.mkdir(parents=True)
    (other / "UMI-x-last.pth").write_bytes(b"not this search's")

    done = carry("save", root, old)
    assert done.returncode == 0, done.stderr
    carried = root / "results" / "search" / "ml-1m-carry"
    assert sorted(str(p.relative_to(carried)) for p in carried.rglob("*") if p.is_file()) == ["UMI/002.tar.xz"]
    with tarfile.open(carried / "UMI" / "002.tar.xz") as archive:
        assert sorted(archive.getnames()) == ["UMI-Dec-05-2026_01-00-00-last.pth", "UMI-Dec-05-2026_01-00-00.pth"]

    new = search_checkout(root, "new")  # the next machine's checkout: nothing in saved/
    done = carry("restore", root, new)
    assert done.returncode == 0, done.stderr
    restored = tune_folder(new, "UMI", 2, monkeypatch)
    assert (restored / "UMI-Dec-05-2026_01-00-00-last.pth").read_bytes() == b"epoch 7"
    assert (restored / "UMI-Dec-05-2026_01-00-00.pth").read_bytes() == b"epoch 5"

    (restored / "UMI-Dec-05-2026_01-00-00-last.pth").write_bytes(b"epoch 9")  # it trained on
    assert carry("restore", root, new).returncode == 0
    assert (restored / "UMI-Dec-05-2026_01-00-00-last.pth").read_bytes() == b"epoch 9"  # not overwritten

    (search / "UMI" / "trials" / "002.json").write_text("{}")  # the trial finished
    done = carry("save", root, new)
    assert done.returncode == 0 and "dropped UMI/002 (finished)" in done.stdout, done.stderr
    assert not carried.exists() or not [p for p in carried.rglob("*") if p.is_file()]


def fake_process(name: str, cwd: Path) -> subprocess.Popen:
    """A process whose command line reads ``name``, working in ``cwd`` (a stand-in for a search's)."""
    process = subprocess.Popen(["bash", "-c", f'exec -a "{name}" sleep 60'], cwd=cwd)
    for _ in range(100):  # until the exec has happened
        if name in Path(f"/proc/{process.pid}/cmdline").read_text():
            break
        time.sleep(0.02)
    return process


def test_search_carry_refuses_while_the_search_runs_in_the_checkout(tmp_path):
    root = checkout_with(tmp_path / "main", "search_carry.sh")
    (root / "results" / "search" / "ml-1m").mkdir(parents=True)
    checkout = search_checkout(root, "checkout")
    fake_tune = fake_process("python -m recbole_umi.tune", checkout)
    try:
        done = carry("save", root, checkout)
        assert done.returncode == 1 and "a search is running in" in done.stderr
        assert carry("save", root, search_checkout(root, "elsewhere")).returncode == 0  # not that checkout's
    finally:
        fake_tune.kill()
        fake_tune.wait()


def test_search_session_stop_stops_the_search_in_its_worktree_only_and_carries_its_trials(tmp_path, monkeypatch):
    root = checkout_with(tmp_path / "main", "search_session.sh")
    (root / "scripts" / "search_carry.sh").write_text((ROOT / "scripts" / "search_carry.sh").read_text())
    (root / "results" / "search" / "ml-1m" / "UMI" / "trials").mkdir(parents=True)
    worktree = search_checkout(root, "wt-search")
    trial = tune_folder(worktree, "UMI", 1, monkeypatch)
    trial.mkdir(parents=True)
    (trial / "UMI-t-last.pth").write_bytes(b"epoch 3")
    os.utime(trial / "UMI-t-last.pth", (1e9, 1e9))  # written before stop was called
    elsewhere = search_checkout(root, "elsewhere")
    stream, tune, other = (fake_process("bash scripts/search_ml1m.sh", worktree),
                           fake_process("python -m recbole_umi.tune --model=UMI", worktree),
                           fake_process("python -m recbole_umi.tune --model=UMI", elsewhere))
    try:
        began = time.monotonic()
        stop = subprocess.Popen(["bash", "scripts/search_session.sh", "stop", str(worktree), "60"], cwd=root,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        time.sleep(2)
        assert stop.poll() is None and tune.poll() is None  # waiting for the epoch to end
        (trial / "UMI-t-last.pth").write_bytes(b"epoch 4")  # it ends
        _, err = stop.communicate(timeout=30)
        assert stop.returncode == 0, err
        assert time.monotonic() - began < 30  # not the whole minute
        assert stream.wait(5) is not None and tune.wait(5) is not None
        assert other.poll() is None  # another folder's search runs on
        with tarfile.open(root / "results" / "search" / "ml-1m-carry" / "UMI" / "001.tar.xz") as archive:
            assert archive.extractfile("UMI-t-last.pth").read() == b"epoch 4"
    finally:
        for process in (stream, tune, other):
            process.kill()
            process.wait()


def test_search_session_start_makes_the_pinned_worktree_restores_and_runs_the_search(tmp_path, monkeypatch):
    root = checkout_with(tmp_path / "main", "search_session.sh")
    for name in ("search_carry.sh", "synth_profile_ablation.sh", "final_table_ml1m.sh"):
        (root / "scripts" / name).write_text((ROOT / "scripts" / name).read_text())
    (root / "tuning" / "synth").mkdir(parents=True)
    for name in ("noise_profile.yaml", "one_noise_field.yaml"):
        (root / "tuning" / "synth" / name).write_text("# a profile\n")
    (root / "scripts" / "search_ml1m.sh").write_text(  # a stream and its tune run, as the search's
        'printf "%s\\n" "$@" > started.txt; (exec -a "python -m recbole_umi.tune" sleep 60) & wait\n')
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@t"]
    subprocess.run([*git, "init", "-q"], cwd=root, check=True)
    subprocess.run([*git, "add", "."], cwd=root, check=True)
    subprocess.run([*git, "commit", "-qm", "the pin"], cwd=root, check=True)
    pin = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True).stdout.strip()
    (root / "scripts" / "search_ml1m.sh").write_text("echo main's, not the pin's\n")  # main moved on
    (tmp_path / "shared" / "data").mkdir(parents=True)
    (root / "results" / "search" / "ml-1m" / "UMI" / "trials").mkdir(parents=True)
    trial = tmp_path / "trial"
    trial.mkdir()
    (trial / "UMI-t-last.pth").write_bytes(b"epoch 3")
    (root / "results" / "search" / "ml-1m-carry" / "UMI").mkdir(parents=True)
    with tarfile.open(root / "results" / "search" / "ml-1m-carry" / "UMI" / "002.tar.xz", "w:xz") as archive:
        archive.add(trial / "UMI-t-last.pth", arcname="UMI-t-last.pth")

    worktree = tmp_path / "wt-search"
    session = ["bash", "scripts/search_session.sh"]
    env = {"PATH": "/usr/bin:/bin", "SEARCH_PIN": pin}
    done = subprocess.run([*session, "start", str(worktree)], cwd=root, capture_output=True, text=True, env=env)
    try:
        assert done.returncode == 0, done.stderr
        for _ in range(100):
            if (worktree / "started.txt").is_file():
                break
            time.sleep(0.05)
        assert (worktree / "started.txt").read_text().split() == [
            str(tmp_path / "shared" / "data"), "ComiRecDR", "UMI", "UMISA", "SASRec", "SINE", "SASRecMatching", "ComiRecSA"]
        assert (worktree / "results").resolve() == (root / "results").resolve()
        assert (worktree / "tuning" / "synth" / "one_noise_field.yaml").is_file()
        assert (tune_folder(worktree, "UMI", 2, monkeypatch) / "UMI-t-last.pth").read_bytes() == b"epoch 3"
        again = subprocess.run([*session, "start", str(worktree)], cwd=root, capture_output=True, text=True, env=env)
        assert again.returncode == 1 and "running already" in again.stderr
    finally:
        stopped = subprocess.run([*session, "stop", str(worktree)], cwd=root, capture_output=True, text=True, env=env)
    assert stopped.returncode == 0, stopped.stderr
    assert not subprocess.run(["pgrep", "-f", str(worktree)], capture_output=True).stdout
