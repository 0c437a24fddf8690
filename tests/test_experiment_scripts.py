"""The experiment scripts' shell: every script under scripts/ and bench/ parses, and the
helpers they share (scripts/two_streams.sh) run compare as the scripts expect, checked with
a stand-in ``python`` that records its arguments instead of training."""

import subprocess
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


def test_compare_seeds_goes_on_past_a_failing_seed_and_reports_it(tmp_path):
    """A run that keeps failing (every session resumes it first) must not hold back the
    stream's later seeds."""
    bin_dir, calls = recording_python(tmp_path)
    recorder = (bin_dir / "python").read_text()
    (bin_dir / "python").write_text(recorder + '[[ " $* " == *" --seeds=2022 "* ]] && exit 3\nexit 0\n')
    done = subprocess.run(["bash", "-c", 'set -euo pipefail; source scripts/two_streams.sh; seeds=(2021 2022 2023); '
                           'common=(--dataset=ml-1m); compare_seeds "$(join UMI MIND)" stream_a'], cwd=ROOT,
                          capture_output=True, text=True, env={"PATH": f"{bin_dir}:/usr/bin:/bin"})
    assert done.returncode == 1 and "failed for seed(s) 2022 (above); the other seeds went on" in done.stderr
    runs = [path.read_text().splitlines() for path in sorted(calls.iterdir())]
    assert [run[-2] for run in runs] == ["--seeds=2021", "--seeds=2022", "--seeds=2023"]


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


def fake_checkout(tmp_path: Path, finished: dict[str, int],
                  wall_s: dict[str, float] | None = None) -> tuple[Path, Path, Path]:
    """A checkout holding scripts/final_table_ml1m.sh, its helpers, and the search's results
    as ``finished`` says (model: trials done, with best.yaml chosen among them: the last, which
    trained ``wall_s[model]`` seconds where given); (its root, a bin folder with the recording
    ``python``, the calls folder)."""
    root = checkout_with(tmp_path / "checkout", "final_table_ml1m.sh")
    (root / "tuning" / "ml-1m-search").mkdir(parents=True)
    (root / "tuning" / "ml-1m-search" / "search.yaml").write_text("train_batch_size: 1024\n")
    for model, trials in finished.items():
        search = root / "results" / "search" / "ml-1m" / model
        (search / "trials").mkdir(parents=True)
        for i in range(1, trials + 1):
            (search / "trials" / f"{i:03d}.json").write_text("{}")
        if wall_s and model in wall_s:
            (search / "trials" / f"{trials:03d}.json").write_text(f'{{\n  "trial": {trials},\n  "wall_s": {wall_s[model]},\n}}')
        (search / "best.yaml").write_text(f"# Best of {trials} random trials for {model} on ml-1m, chosen on validation "
                                          f"users: trial {trials}, valid score 0.1.\nlearning_rate: 0.001\n")
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


def test_final_table_runs_every_model_in_two_streams_then_writes_the_table_and_its_figure(tmp_path):
    models = ["UMISA", "UMI", "MIND", "ComiRecDR", "ComiRecSA", "YoutubeDNN", "ProfileDSSM", "SASRecMatching",
              "SASRec", "SINE"]
    hours = {"SASRec": 26313.4, "UMISA": 20955, "SINE": 9000, "SASRecMatching": 5000, "UMI": 4556.2, "ComiRecDR": 3153,
             "MIND": 2573, "ComiRecSA": 1500, "ProfileDSSM": 108, "YoutubeDNN": 107}
    root, bin_dir, calls = fake_checkout(tmp_path, {model: 20 for model in models}, hours)
    out = root / "results" / "ml-1m-final"
    out.mkdir(parents=True)
    # the streams' own tables, and a killed MODELS run's
    for leftover in ("stream_a.md", "stream_b.csv", "stream_a_tests.csv", "early_123.md", "early_123_tests.csv"):
        (out / leftover).write_text("")
    done = run_final_table(root, bin_dir, None)
    assert done.returncode == 0, done.stderr
    runs = [path.read_text().splitlines() for path in sorted(calls.iterdir())]
    assert len(runs) == 12  # five seeds in each stream, then the table and its figure
    # split by the chosen trials' hours, longest first to the lighter stream (by hand: 37,039 s
    # against 36,226 s); each stream cheapest first
    streams = sorted(run[3] for run in runs[:10])
    assert streams == sorted(["--models=MIND,ComiRecDR,SASRecMatching,SASRec"] * 5
                             + ["--models=YoutubeDNN,ProfileDSSM,ComiRecSA,UMI,SINE,UMISA"] * 5)
    assert "streams by the chosen trials' hours: MIND ComiRecDR SASRecMatching SASRec (10 h)" in done.stdout
    assert all(run[0] == "OMP_NUM_THREADS=1" for run in runs[:10])
    # the runs span sessions: the library versions of their parts are allowed (the table lists them)
    assert all("--allow_mixed_code=True" in run for run in runs[:11])
    table, figure = runs[10:]
    assert table[1:4] == ["-m", "recbole_umi.compare", f"--models={','.join(models)}"]
    assert "--seeds=2021,2022,2023,2024,2025" in table and "--table_only=True" in table
    # the figure from the same runs, into the table's folder (not the docs' figure)
    assert figure[1:4] == ["scripts/results_figure.py", "results/ml-1m-final", f"--models={','.join(models)}"]
    assert "--seeds=2021,2022,2023,2024,2025" in figure and "--out=results/ml-1m-final/hr50.png" in figure
    assert sorted(p.name for p in out.iterdir()) == ["plan.yaml"]  # the streams' tables removed
