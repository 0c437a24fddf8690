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


def run_helpers(body: str, tmp_path: Path) -> tuple[str, list[list[str]]]:
    """``body`` run after sourcing two_streams.sh, with a ``python`` on the PATH that writes
    each call's arguments, one per line, to a file of its own; (stdout, the calls in order)."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    calls = tmp_path / "calls"
    calls.mkdir()
    (bin_dir / "python").write_text(f'#!/usr/bin/env bash\nn=$(ls {calls} | wc -l)\n'
                                    f'printf "%s\\n" "$@" > {calls}/$(printf %03d "$n")\n')
    (bin_dir / "python").chmod(0o755)
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
