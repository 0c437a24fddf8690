"""scripts/cold_start_curve.py on hand-made run files: the curve's cells and tests are the
two-level mean and test of the stored per-user values."""

from __future__ import annotations

import json
import runpy
from pathlib import Path

import numpy as np
import pytest

from recbole_umi.provenance import MixedCodeError, code_version, describe_code
from recbole_umi.stats import two_level_mean, two_level_test

SCRIPT = Path(__file__).resolve().parent.parent / "scripts" / "cold_start_curve.py"
main = runpy.run_path(str(SCRIPT))["main"]
USERS = [str(u) for u in range(1, 31)]


def per_user(hits):
    return {"user": USERS, "history_length": [3] * len(USERS), "recall@50": hits.tolist()}


def write_run(folder: Path, model: str, seed: int, curve: dict, own: np.ndarray) -> None:
    record = {"variant": model, "seed": seed, "best_valid_result": {"recall@50": 0.3}, "test_per_user": per_user(own),
              "history_curve": {k: {"valid": {"recall@50": 0.1 * (int(k) + 1)}, "test": {"recall@50": float(v.mean())},
                                    "test_per_user": per_user(v)} for k, v in curve.items()}}
    (folder / "runs").mkdir(parents=True, exist_ok=True)
    (folder / "runs" / f"{model}__seed{seed}.json").write_text(json.dumps(record))


def test_curve_cells_and_tests(tmp_path):
    rng = np.random.default_rng(0)
    hits = {}
    for model, rate in (("A", 0.2), ("B", 0.5)):
        for seed in (1, 2):
            hits[model, seed] = {k: (rng.random(30) < rate + 0.1 * int(k)).astype(float) for k in ("0", "1")}
            write_run(tmp_path, model, seed, hits[model, seed], (rng.random(30) < 0.4).astype(float))
    write_run(tmp_path, "C", 1, hits["A", 1], hits["A", 1]["0"])  # one seed of two: left out
    markdown = main([str(tmp_path), "--models=A,B,C", "--seeds=1,2", "--metrics=recall@50", f"--out={tmp_path / 'c'}"])
    lines = markdown.splitlines()
    a_row = next(line for line in lines if line.startswith("| A | HitRate@50 |"))
    expected = two_level_mean([100 * hits["A", s]["1"] for s in (1, 2)])
    assert f"{expected['mean']:.2f} [{expected['low']:.2f}, {expected['high']:.2f}]" == a_row.split(" | ")[3]
    valid_row = lines[lines.index(a_row) + 1]
    assert valid_row.split(" | ")[2:4] == ["10.00", "20.00"]  # the validation means at k = 0 and 1
    test = two_level_test([100 * hits["A", s]["0"] for s in (1, 2)], [100 * hits["B", s]["0"] for s in (1, 2)])
    b_test = next(line for line in lines if line.startswith("| B | HitRate@50 |") and "p=" in line)
    assert b_test.split(" | ")[2].startswith(f"{test['delta']:+.2f} [{test['low']:+.2f}, {test['high']:+.2f}]")
    assert "Not in the table (runs of some seed missing): C." in markdown
    # another folder's runs join under a label
    write_run(tmp_path / "other", "A", 1, hits["B", 1], hits["B", 1]["0"])
    write_run(tmp_path / "other", "A", 2, hits["B", 2], hits["B", 2]["0"])
    markdown = main([str(tmp_path), "--models=A", "--seeds=1,2", "--metrics=recall@50", f"--out={tmp_path / 'd'}",
                     f"--extra=A dropout={tmp_path / 'other'}:A"])
    assert next(line for line in markdown.splitlines() if line.startswith("| A dropout | HitRate@50 |")).split(" | ")[2] == \
        next(line for line in lines if line.startswith("| B | HitRate@50 |")).split(" | ")[2]
    assert (tmp_path / "c.png").stat().st_size > 0 and (tmp_path / "c.csv").read_text().startswith("model,metric,k")
    # the code the runs ran: one version (none recorded here), or a refusal to mix versions unless allowed
    assert "\nCode: not recorded" in markdown
    record = json.loads((tmp_path / "runs" / "B__seed2.json").read_text())
    (tmp_path / "runs" / "B__seed2.json").write_text(json.dumps({**record, "code": code_version()}))
    with pytest.raises(MixedCodeError, match="B seed 2"):
        main([str(tmp_path), "--models=A,B", "--seeds=1,2", "--metrics=recall@50", f"--out={tmp_path / 'e'}"])
    markdown = main([str(tmp_path), "--models=A,B", "--seeds=1,2", "--metrics=recall@50", f"--out={tmp_path / 'e'}",
                     "--allow_mixed_code=True"])
    assert "Runs of 2 code versions (--allow_mixed_code):" in markdown
    assert f"- {describe_code(code_version())}: B seed 2" in markdown


def test_runs_without_a_curve_are_refused(tmp_path):
    (tmp_path / "runs").mkdir()
    (tmp_path / "runs" / "A__seed1.json").write_text(json.dumps({"test_per_user": per_user(np.zeros(30))}))
    with pytest.raises(ValueError, match="made without eval_history_curve"):
        main([str(tmp_path), "--models=A", "--seeds=1", f"--out={tmp_path / 'c'}"])


def test_seen_items_table_pairs_a_models_two_protocols(tmp_path):
    seen_main = runpy.run_path(str(SCRIPT.with_name("seen_items_table.py")))["main"]
    rng = np.random.default_rng(5)
    paper = {s: (rng.random(30) < 0.3).astype(float) for s in (1, 2)}
    unseen = {s: np.maximum(paper[s], (rng.random(30) < 0.2).astype(float)) for s in (1, 2)}
    for seed in (1, 2):
        record = {"variant": "A", "seed": seed, "test_per_user": per_user(paper[seed]),
                  "unseen": {"test_per_user": per_user(unseen[seed])}}
        (tmp_path / "runs").mkdir(exist_ok=True)
        (tmp_path / "runs" / f"A__seed{seed}.json").write_text(json.dumps(record))
    markdown = seen_main([str(tmp_path), "--models=A,B", "--seeds=1,2", "--metrics=recall@50", f"--out={tmp_path / 's'}"])
    row = next(line for line in markdown.splitlines() if line.startswith("| A | HitRate@50 |"))
    gain = two_level_test([100 * unseen[s] for s in (1, 2)], [100 * paper[s] for s in (1, 2)], paired_seeds=True)
    assert row.split(" | ")[4].startswith(f"{gain['delta']:+.2f} [{gain['low']:+.2f}, {gain['high']:+.2f}]")
    assert "Not in the table (runs of some seed missing): B." in markdown
    assert markdown.rstrip().endswith("Code: not recorded (a run made before code versions were kept).")
    # a run continued from its checkpoint on other code ran both: refused, or listed under each
    code = code_version()
    record = json.loads((tmp_path / "runs" / "A__seed2.json").read_text())
    parts = [{"seconds": 1.0, "code": {**code, "code_digest": "older"}, "machine": None},
             {"seconds": 1.0, "code": code, "machine": None}]
    (tmp_path / "runs" / "A__seed2.json").write_text(json.dumps({**record, "code": code, "parts": parts}))
    with pytest.raises(MixedCodeError, match=r"A seed 2 \(in part\)"):
        seen_main([str(tmp_path), "--models=A", "--seeds=1,2", "--metrics=recall@50", f"--out={tmp_path / 's'}"])
    markdown = seen_main([str(tmp_path), "--models=A", "--seeds=1,2", "--metrics=recall@50", f"--out={tmp_path / 's'}",
                          "--allow_mixed_code=True"])
    assert "Runs of 3 code versions (--allow_mixed_code):" in markdown
    assert f"- {describe_code(code)}: A seed 2 (in part)" in markdown
