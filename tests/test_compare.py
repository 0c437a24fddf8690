"""The side-by-side comparison command on a tiny dataset: table contents and resuming."""

import csv
import json
import shutil
import statistics

import pytest

from recbole_umi.experiments import runs as compare_module
from recbole_umi.experiments import tables
from recbole_umi.experiments.compare import main
from recbole_umi.experiments.runs import SettingsMismatchError
from recbole_umi.experiments.variants import parse_variant, read_variant_files
from tests.conftest import cut_training, random_sequences, write_atomic, write_config

def test_parse_variant():
    assert parse_variant("MIND+HN") == ("MIND", {"harder_negatives": True})
    assert parse_variant("UMI-DAR-HN") == ("UMI", {"use_dar": False, "harder_negatives": False})
    assert parse_variant("SASRec") == ("SASRec", {})


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    """One finished comparison (2 models x 2 seeds) on a tiny dataset, made once; the tests
    work on copies of its output folder."""
    base = tmp_path_factory.mktemp("compare")
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(base)  # RecBole writes log/ into the working directory
        sequences, profiles = random_sequences(n_users=80, n_items=40, length=14)
        data = write_atomic(base / "data", "tiny", sequences, profiles)
        config = write_config(
            base / "tiny.yaml", eval_protocol="user_split", epochs=1, train_neg_sample_args=None, topk=[5, 10]
        )
        args = ["--models=UMI,ComiRecSA+HN", "--dataset=tiny", "--seeds=1,2", f"--config_files={config}",
                f"--data_path={data}", f"--checkpoint_dir={base / 'saved'}"]
        markdown = main([*args, f"--out={base / 'out'}"])
    return args, base / "out", markdown


@pytest.fixture
def compare_args(finished, tmp_path, monkeypatch):
    """Arguments of the finished comparison, with a copy of its output folder as --out."""
    monkeypatch.chdir(tmp_path)
    args, out, _ = finished
    shutil.copytree(out, tmp_path / "out")
    return [*args, f"--out={tmp_path / 'out'}"], tmp_path / "out"


def test_table_and_resume(compare_args, finished, monkeypatch, capsys):
    args, out = compare_args
    markdown = finished[2]

    runs = sorted((out / "runs").glob("*.json"))
    assert [p.name for p in runs] == ["ComiRecSA+HN__seed1.json", "ComiRecSA+HN__seed2.json", "UMI__seed1.json", "UMI__seed2.json"]
    records = {p.name: json.loads(p.read_text()) for p in runs}
    assert records["ComiRecSA+HN__seed1.json"]["overrides"] == {"harder_negatives": True}

    # the table's numbers are the mean and std (in percent) of the runs' test metrics, each
    # run's the mean over its test users
    def stats(variant, metric):
        values = [100 * statistics.mean(records[f"{variant}__seed{s}.json"]["test_per_user"][metric]) for s in (1, 2)]
        return f"{statistics.mean(values):.3f} ± {statistics.stdev(values):.3f}"

    lines = markdown.splitlines()
    header = next(line for line in lines if line.startswith("| model"))
    assert header == "| model | HitRate@5 | Precision@5 | HitRate@10 | Precision@10 |"
    umi_row = next(line for line in lines if line.startswith("| UMI |"))
    comirec_row = next(line for line in lines if line.startswith("| ComiRecSA+HN |"))
    assert stats("UMI", "recall@5") in umi_row and stats("UMI", "precision@10") in umi_row
    assert stats("ComiRecSA+HN", "recall@10") in comirec_row
    gain_row = next(line for line in lines if line.startswith("| ▲% |"))

    # the default test: UMI against ComiRecSA+HN over the test users and the seeds (two-level)
    from scipy import stats

    from recbole_umi.stats import two_level_test

    users = records["UMI__seed1.json"]["test_per_user"]["user"]
    assert all(r["test_per_user"]["user"] == users for r in records.values())

    def per_seed(variant, metric):
        return [[100 * x for x in records[f"{variant}__seed{s}.json"]["test_per_user"][metric]] for s in (1, 2)]

    expected = two_level_test(per_seed("UMI", "recall@10"), per_seed("ComiRecSA+HN", "recall@10"))
    tests_row = next(line for line in lines if line.startswith("| ComiRecSA+HN | ") and "p=" in line)
    cell = tests_row.split(" | ")[3]
    assert cell.startswith(f"{expected['delta']:+.2f} [{expected['low']:+.2f}, {expected['high']:+.2f}] "
                           f"p={expected['p']:.3g}")
    assert "seeds p" not in cell  # the two-level test counts the seeds itself
    # one comparison: Holm's correction leaves its p as it is, so the gain has both marks or none
    assert gain_row.split(" | ")[3].endswith("*†") == (expected["p"] < 0.05)
    # one comparison: Holm's correction leaves p as it is, so the dagger goes with the star
    assert cell.endswith("*†") == (expected["p"] < 0.05)
    assert "Two-level test of UMI" in markdown and "Code: recbole-umi" in markdown

    # --significance=ttest: over the users (each averaged over the seeds), and Welch over the seeds
    monkeypatch.setattr(compare_module, "run", lambda *a, **k: pytest.fail("a finished run was trained again"))
    ttest_markdown = main([*args, "--significance=ttest", "--table=ttest"])
    umi, other = (list(map(statistics.mean, zip(*per_seed(v, "recall@10")))) for v in ("UMI", "ComiRecSA+HN"))
    p = stats.ttest_rel(umi, other).pvalue if umi != other else 1.0
    tests_row = next(line for line in ttest_markdown.splitlines() if line.startswith("| ComiRecSA+HN | ") and "p=" in line)
    users_part, _, seeds_part = tests_row.split(" | ")[3].partition("; ")
    assert f"{sum(umi) / len(umi) - sum(other) / len(other):+.2f} [" in users_part and f"p={p:.3g}" in users_part
    seed_means = {v: [statistics.mean(values) for values in per_seed(v, "recall@10")] for v in ("UMI", "ComiRecSA+HN")}
    if len(set(seed_means["UMI"])) + len(set(seed_means["ComiRecSA+HN"])) > 2:  # a spread: a p-value
        welch = stats.ttest_ind(seed_means["UMI"], seed_means["ComiRecSA+HN"], equal_var=False).pvalue
        assert seeds_part.strip() == f"seeds p={welch:.3g}"
    else:
        assert seeds_part == ""
    monkeypatch.undo()
    monkeypatch.chdir(out.parent)
    assert (out / "table_tests.csv").exists()
    # exactly one best (bold) and one second best (italic) per column
    cells = [row.split(" | ")[1:] for row in (umi_row, comirec_row)]
    for column in range(4):
        pair = [cells[0][column], cells[1][column]]
        assert sum(c.startswith("**") for c in pair) == 1 and sum(c.startswith("_") for c in pair) == 1

    # the interest diagnostics: each model's seeds' means
    diagnostics_row = next(line for line in lines if line.startswith("| UMI | 3 | "))
    cosines = [records[f"UMI__seed{s}.json"]["interest_diagnostics"]["interest_cosine"] for s in (1, 2)]
    assert diagnostics_row.split(" | ")[2] == f"{statistics.mean(cosines):.3f} ± {statistics.stdev(cosines):.3f}"

    assert (out / "table.md").read_text() == markdown
    with (out / "table.csv").open() as handle:
        rows = list(csv.reader(handle))
    assert rows[0][:3] == ["model", "HitRate@5 mean", "HitRate@5 std"]
    assert [r[0] for r in rows[1:]] == ["UMI", "ComiRecSA+HN"]

    # a second invocation resumes: nothing is trained again
    def no_training(*args, **kwargs):
        raise AssertionError("a finished run was trained again")

    monkeypatch.setattr(compare_module, "run", no_training)
    assert main(args) == markdown
    assert "already done" in capsys.readouterr().out


@pytest.fixture
def trained(monkeypatch):
    """The models compare trains, in order (each still trained for real)."""
    models, real_run = [], compare_module.run

    def counting_run(model, *rest, **kwargs):
        models.append(model)
        return real_run(model, *rest, **kwargs)

    monkeypatch.setattr(compare_module, "run", counting_run)
    return models


def test_interrupted_comparison_redoes_only_missing_runs(compare_args, trained):
    args, out = compare_args
    (out / "runs" / "UMI__seed2.json").unlink()
    main(args)
    assert trained == ["UMI"]


def test_malformed_argument_fails_before_any_run(compare_args, tmp_path):
    args, _ = compare_args
    fresh = tmp_path / "fresh"
    with pytest.raises(ValueError, match="--key=value"):
        main([a if not a.startswith("--out=") else f"--out={fresh}" for a in args] + ["oops"])
    assert not fresh.exists()


@pytest.mark.parametrize("replace, message", [
    # --seeds=1,1 made one run and tabulated it as two seeds (a mean of two, no spread)
    (("--seeds=", "--seeds=1,2,1"), r"setting 'seeds' = \[1, 2, 1\]: lists 1 more than once"),
    (("--models=", "--models=UMI,ComiRecSA+HN,UMI"), r"setting 'models' = .*: lists UMI more than once"),
    (("--seeds=", "--seeds=1,2.5"), r"--seeds must be comma-separated integers: '2.5' is not one"),
])
def test_a_seed_or_model_listed_twice_or_a_seed_not_an_integer_is_refused(compare_args, monkeypatch, replace, message):
    args, out = compare_args
    before = sorted(p.name for p in (out / "runs").iterdir())
    monkeypatch.setattr(compare_module, "run", lambda *a, **k: pytest.fail("trained"))
    prefix, value = replace
    with pytest.raises(ValueError, match=message):
        main([value if a.startswith(prefix) else a for a in args])
    assert sorted(p.name for p in (out / "runs").iterdir()) == before


def test_resuming_with_other_settings_fails_and_tables_share_runs(compare_args, monkeypatch):
    args, out = compare_args
    record = json.loads((out / "runs" / "UMI__seed1.json").read_text())
    assert record["settings"]["epochs"] == 1 and "data_path" not in record["settings"]
    assert record["dataset"] == "tiny"
    # the mismatch is found before anything trains, even with the first run missing
    (out / "runs" / "UMI__seed1.json").unlink()
    monkeypatch.setattr(compare_module, "run", lambda *a, **k: pytest.fail("trained despite a mismatch"))
    with pytest.raises(SettingsMismatchError, match=r"ComiRecSA\+HN__seed1\.json"):  # the next run, seed by seed
        main(args + ["--learning_rate=0.1"])
    with pytest.raises(SettingsMismatchError, match="dataset 'tiny'"):
        main([a if not a.startswith("--dataset=") else "--dataset=other" for a in args])
    # the same value written on the command line instead of the YAML file is no mismatch
    (out / "runs" / "UMI__seed1.json").write_text(json.dumps(record))
    assert main(args + ["--epochs=1"])

    # a second table over a subset of the finished runs trains nothing and keeps table.md
    first_table = (out / "table.md").read_text()
    subset = [a if not a.startswith("--models=") else "--models=UMI" for a in args]
    main(subset + ["--table=umi_only"])
    assert (out / "table.md").read_text() == first_table

    def umi_cells(markdown):
        row = next(line for line in markdown.splitlines() if line.startswith("| UMI |"))
        return [cell.strip("*_ ") for cell in row.split("|")[2:-1]]

    assert umi_cells((out / "umi_only.md").read_text()) == umi_cells(first_table)


def test_runs_go_seed_by_seed(compare_args, monkeypatch):
    # every model's seed 1 before any seed 2: a comparison cut short is complete for its first seeds
    args, out = compare_args
    records = [json.loads(path.read_text()) for path in (out / "runs").glob("*.json")]
    records = {(record["model"], record["seed"]): record for record in records}
    for path in (out / "runs").glob("*.json"):
        path.unlink()
    order = []

    def recorded_run(model, dataset, files, settings, saved, resume):
        order.append((model, settings["seed"]))
        record = records[model, settings["seed"]]
        return {key: record[key] for key in ("eval_protocol", "epochs", "best_epoch", "best_valid_result", "test_result",
                                             "interest_diagnostics", "test_per_user")}

    monkeypatch.setattr(compare_module, "run", recorded_run)
    main(args)
    assert order == [("UMI", 1), ("ComiRecSA", 1), ("UMI", 2), ("ComiRecSA", 2)]


def test_variant_files_give_a_variant_its_own_settings(compare_args, tmp_path, monkeypatch):
    args, out = compare_args
    tuned = tmp_path / "umi_best.yaml"
    tuned.write_text("n_interests: 2\n")
    plan = tmp_path / "plan.yaml"
    plan.write_text(f"UMI: [{tuned}]\n")
    fresh = tmp_path / "tuned"
    seen = {}
    real_run = compare_module.run

    def recording_run(model, dataset, files, settings, **kwargs):
        seen.setdefault(model, files)
        return real_run(model, dataset, files, settings, **kwargs)

    monkeypatch.setattr(compare_module, "run", recording_run)
    tuned_args = [a if not a.startswith("--out=") else f"--out={fresh}" for a in args]
    tuned_args = [a if not a.startswith("--seeds=") else "--seeds=1" for a in tuned_args]
    main(tuned_args + [f"--variant_files={plan}"])
    assert seen["UMI"][-1] == str(tuned) and str(tuned) not in seen["ComiRecSA"]
    umi = json.loads((fresh / "runs" / "UMI__seed1.json").read_text())
    other = json.loads((fresh / "runs" / "ComiRecSA+HN__seed1.json").read_text())
    assert umi["settings"]["n_interests"] == 2 and "n_interests" not in other["settings"]
    # resuming without the plan is another set of settings for UMI
    with pytest.raises(SettingsMismatchError, match="UMI__seed1.json"):
        main(tuned_args)
    plan.write_text("MIDN: [x.yaml]\n")
    with pytest.raises(ValueError, match="'MIDN'.*names no model"):
        main(tuned_args + [f"--variant_files={plan}"])
    # one plan for several compare calls: a variant not run now is skipped (its files unread)
    plan.write_text(f"UMI: [{tuned}]\nMIND+HN: [not-there.yaml]\n")
    assert read_variant_files(plan, ["UMI", "ComiRecSA+HN"]) == {"UMI": [str(tuned)]}
    with pytest.raises(FileNotFoundError, match="MIND\\+HN's files"):
        read_variant_files(plan, ["MIND+HN"])
    plan.write_text("UMI:\n")  # a forgotten file is not "no files"
    with pytest.raises(ValueError, match=r"UMI must map to a YAML file or a list of them \(\[\] for none\), got None"):
        read_variant_files(plan, ["UMI"])


def test_diagnostics_table_from_hand_made_runs():
    def record(cosine, overlap, share, **more):
        return {"interest_diagnostics": {"interest_cosine": cosine, "routing_overlap": overlap, "routing_share": share,
                                         **more}}

    results = {
        "UMI": [record(0.6, 0.9, [0.8, 0.2], routing_by_position=0.5),
                record(0.8, 0.7, [0.6, 0.4], routing_by_position=0.7)],
        "MIND": [record(0.9, 0.4, [0.6, 0.4])],  # made before routing_by_position was measured
        "YoutubeDNN": [{"interest_diagnostics": None}, {"interest_diagnostics": None}],  # one interest
        "ComiRecSA": [record(0.5, None, None, routing_by_position=None)],  # no routing
    }
    lines = tables.render_diagnostics(results).splitlines()
    assert lines[-3:] == [
        "| UMI | 2 | 0.700 ± 0.141 | 0.800 ± 0.141 | 0.70 / 0.30 | 0.600 ± 0.141 |",  # std of (0.6, 0.8): 0.1414
        "| MIND | 2 | 0.900 ± 0.000 | 0.400 ± 0.000 | 0.60 / 0.40 | - |",
        "| ComiRecSA | - | 0.500 ± 0.000 | - | - | - |",
    ]
    assert tables.render_diagnostics({"YoutubeDNN": results["YoutubeDNN"]}) is None


def test_seed_is_not_taken_for_seeds(tmp_path):
    # argparse would read --seed=3 as an abbreviation of --seeds: refused instead
    from recbole_umi.experiments.compare import main

    with pytest.raises(ValueError, match="--seeds"):
        main(["--models=UMI", f"--out={tmp_path}", "--seed=3"])


def test_an_interrupted_run_continues_and_ends_as_the_uninterrupted_one(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    sequences, profiles = random_sequences(n_users=60, n_items=30, length=12)
    data = write_atomic(tmp_path / "data", "tiny", sequences, profiles)
    config = write_config(tmp_path / "tiny.yaml", eval_protocol="user_split", epochs=3, stopping_step=5,
                          train_neg_sample_args=None, topk=[5])
    args = ["--models=UMI", "--dataset=tiny", "--seeds=1", f"--config_files={config}", f"--data_path={data}",
            f"--checkpoint_dir={tmp_path / 'saved'}"]
    main([*args, f"--out={tmp_path / 'whole'}"])

    cut = cut_training(monkeypatch, lambda epoch: epoch == 1)  # the session ends in the second epoch
    with pytest.raises(KeyboardInterrupt):
        main([*args, f"--out={tmp_path / 'cut'}"])
    assert not (tmp_path / "cut" / "runs" / "UMI__seed1.json").exists()
    [kept] = (tmp_path / "saved").glob("compare-cut-*/UMI__seed1/elapsed.json")  # the first part's time
    first_part = json.loads(kept.read_text())
    assert first_part["elapsed_s"] > 0
    kept.write_text(json.dumps({**first_part, "elapsed_s": 10000.0}))  # as if the first part had taken hours
    capsys.readouterr()
    main([*args, f"--out={tmp_path / 'cut'}"])
    assert cut == [1] and "seed 1: continuing the interrupted run from" in capsys.readouterr().out

    whole = json.loads((tmp_path / "whole" / "runs" / "UMI__seed1.json").read_text())
    resumed = json.loads((tmp_path / "cut" / "runs" / "UMI__seed1.json").read_text())
    assert whole["resumed_from"] is None and resumed["resumed_from"].endswith("-last.pth")
    for key in ("best_valid_result", "test_result", "test_per_user", "interest_diagnostics", "epochs", "best_epoch"):
        assert resumed[key] == whole[key], key
    assert whole["epochs"] == 3 and 0 <= whole["best_epoch"] < 3
    assert resumed["wall_s"] > 10000 and resumed["wall_s_all_parts"]  # the run's time over both parts
    assert whole["wall_s"] < 10000 and whole["wall_s_all_parts"]
    # each comparison keeps its runs' checkpoints in a folder of its own
    folders = sorted(path.name.rsplit("-", 1)[0] for path in (tmp_path / "saved").glob("compare-*"))
    assert folders == ["compare-cut", "compare-whole"]


def test_a_checkpoint_made_with_other_settings_is_not_continued(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    sequences, profiles = random_sequences(n_users=60, n_items=30, length=12)
    data = write_atomic(tmp_path / "data", "tiny", sequences, profiles)
    config = write_config(tmp_path / "tiny.yaml", eval_protocol="user_split", epochs=2, train_neg_sample_args=None,
                          topk=[5])
    args = ["--models=UMI", "--dataset=tiny", "--seeds=1", f"--config_files={config}", f"--data_path={data}",
            f"--checkpoint_dir={tmp_path / 'saved'}", f"--out={tmp_path / 'out'}"]
    cut_training(monkeypatch, lambda epoch: epoch == 1)
    with pytest.raises(KeyboardInterrupt):
        main(args)
    capsys.readouterr()
    main([*args, "--learning_rate=0.02"])
    assert "made with another learning_rate; the run starts afresh" in capsys.readouterr().out
    record = json.loads((tmp_path / "out" / "runs" / "UMI__seed1.json").read_text())
    assert record["resumed_from"] is None and float(record["settings"]["learning_rate"]) == 0.02


def test_table_only_trains_nothing_and_names_the_missing_runs(compare_args, monkeypatch):
    args, out = compare_args
    monkeypatch.setattr(compare_module, "run", lambda *a, **k: pytest.fail("--table_only trained a run"))
    assert "| UMI |" in main([*args, "--table_only=True"])
    (out / "runs" / "UMI__seed2.json").unlink()
    with pytest.raises(compare_module.MissingRunsError, match=r"1 run\(s\) are not in .*: UMI seed 2"):
        main([*args, "--table_only=True"])


def test_a_damaged_run_file_is_set_aside_and_made_again(compare_args, trained, capsys):
    args, out = compare_args
    (out / "runs" / "UMI__seed2.json").write_text('{"variant": "UMI", "se')  # cut short
    main(args)
    assert trained == ["UMI"]
    assert "UMI__seed2.json is damaged (not JSON" in capsys.readouterr().out
    assert (out / "runs" / "UMI__seed2.json.damaged").exists()
    assert json.loads((out / "runs" / "UMI__seed2.json").read_text())["seed"] == 2


def test_a_run_another_process_is_making_is_waited_for_not_repeated(compare_args, monkeypatch):
    import threading

    from recbole_umi.files import run_lock

    args, out = compare_args
    path = out / "runs" / "UMI__seed2.json"
    record = path.read_text()
    path.unlink()
    monkeypatch.setattr(compare_module, "LOCK_POLL_S", 0.05)
    monkeypatch.setattr(compare_module, "run", lambda *a, **k: pytest.fail("a run another process holds was made"))
    lines, finished = [], {}
    with run_lock(path) as mine:  # "another process" makes UMI seed 2
        assert mine
        worker = threading.Thread(target=lambda: finished.update(
            compare_module.compare(["UMI", "ComiRecSA+HN"], "tiny", [1, 2], out, [args[3].split("=", 1)[1]],
                                   {"data_path": args[4].split("=", 1)[1]}, log=lines.append)))
        worker.start()
        while not any("waiting for the other process" in line for line in lines):
            assert worker.is_alive(), lines
            worker.join(0.05)
        path.write_text(record)  # the other process finishes it
    worker.join(60)
    assert any("another process is making it" in line for line in lines)
    assert [r["seed"] for r in finished["UMI"]] == [1, 2]


def test_a_run_another_process_made_with_other_settings_is_not_tabulated(compare_args, monkeypatch):
    """The settings and code of a run that appears while this process works are checked as
    those of the runs found at the start are."""
    import threading

    from recbole_umi.files import run_lock

    args, out = compare_args
    path = out / "runs" / "UMI__seed2.json"
    record = json.loads(path.read_text())
    path.unlink()
    monkeypatch.setattr(compare_module, "LOCK_POLL_S", 0.05)
    monkeypatch.setattr(compare_module, "run", lambda *a, **k: pytest.fail("a run another process holds was made"))
    lines, raised = [], []

    def compare_in_thread():
        try:
            compare_module.compare(["UMI", "ComiRecSA+HN"], "tiny", [1, 2], out, [args[3].split("=", 1)[1]],
                                   {"data_path": args[4].split("=", 1)[1]}, log=lines.append)
        except SettingsMismatchError as error:
            raised.append(error)

    with run_lock(path) as mine:  # "another process", run with 2 epochs, makes UMI seed 2
        assert mine
        worker = threading.Thread(target=compare_in_thread)
        worker.start()
        while not any("waiting for the other process" in line for line in lines):
            assert worker.is_alive(), lines
            worker.join(0.05)
        record["settings"]["epochs"] = 2
        path.write_text(json.dumps(record))
    worker.join(60)
    assert len(raised) == 1 and "UMI__seed2.json was run with the settings" in str(raised[0])


def test_breakdown_by_history_length(compare_args, monkeypatch):
    import numpy as np

    from recbole_umi.experiments.tables import history_buckets
    from recbole_umi.stats import two_level_mean, two_level_test

    args, out = compare_args
    monkeypatch.setattr(compare_module, "run", lambda *a, **k: pytest.fail("nothing should train"))
    markdown = main([*args, "--table_only=True", "--history_buckets=2", "--table=by_history"])
    runs = {v: [json.loads((out / "runs" / f"{v}__seed{s}.json").read_text()) for s in (1, 2)]
            for v in ("UMI", "ComiRecSA+HN")}
    lengths = np.array(runs["UMI"][0]["test_per_user"]["history_length"])
    low, high = history_buckets(lengths, 2)[0]  # tiny data: every user has the same length, one bucket
    users = (lengths >= low) & (lengths <= high)
    values = {v: 100 * np.array([r["test_per_user"]["recall@5"] for r in rs])[:, users] for v, rs in runs.items()}
    mean = two_level_mean(values["UMI"])
    lines = markdown.splitlines()
    header = next(line for line in lines if line.startswith("| model |") and "users)" in line)
    assert header.split(" | ")[1].rstrip(" |") == f"{low}-{high} ({int(users.sum())} users)"
    row = next(line for line in lines[lines.index(header):] if line.startswith("| UMI |"))
    assert row.split(" | ")[1].rstrip(" |") == f"{mean['mean']:.2f} [{mean['low']:.2f}, {mean['high']:.2f}]"
    test = two_level_test(values["UMI"], values["ComiRecSA+HN"])
    vs = next(line for line in lines[lines.index(header):] if line.startswith("| ComiRecSA+HN |") and "p=" in line)
    assert vs.split(" | ")[1].startswith(f"{test['delta']:+.2f} [{test['low']:+.2f}, {test['high']:+.2f}]")
    assert "Test HitRate@5 by the test users' history length" in markdown  # no @50 in this table: its first column


def test_a_history_bucket_of_one_user_shows_its_mean_without_a_test():
    """One user gives no spread over users: the bucket shows the mean and no interval or
    test (the breakdown used to fail after every run had finished)."""
    from recbole_umi.experiments.tables import render_history_breakdown

    def runs(variant, values):
        return [{"variant": variant, "seed": seed, "test_per_user": {
            "user": ["1", "2", "3", "4", "5", "6"], "history_length": [1, 5, 5, 5, 5, 9], "recall@50": values}}
            for seed in (1, 2)]

    markdown = render_history_breakdown({"UMI": runs("UMI", [1, 0, 1, 0, 1, 1]), "MIND": runs("MIND", [0] * 6)},
                                        "HitRate@50", 3)
    lines = markdown.splitlines()
    assert "| model | 1-5 (5 users) | 6-9 (1 users) |" in lines
    umi = next(line for line in lines if line.startswith("| UMI |"))
    assert umi.endswith("| 100.00 |")  # the one user's mean over the seeds, no interval
    assert next(line for line in lines if line.startswith("| MIND |") and "p=" in line).endswith("| - (1 user) |")


def test_the_gain_row_marks_the_raw_and_the_holm_corrected_test_of_the_best_other_model():
    """▲%: the first model's gain over the best other, * where its test against that model has
    p < 0.05, † where the Holm-corrected p does too (here 0.03 raw, 0.06 corrected: * alone)."""
    from recbole_umi.experiments.tables import render_markdown

    table = {"UMISA": {"HitRate@50": (50.0, 1.0)}, "SASRec": {"HitRate@50": (40.0, 1.0)},
             "UMI": {"HitRate@50": (30.0, 1.0)}}
    tests = {"SASRec": {"HitRate@50": {"p": 0.03, "p_holm": 0.06}},
             "UMI": {"HitRate@50": {"p": 0.001, "p_holm": 0.002}}}
    gain_row = next(line for line in render_markdown(["HitRate@50"], table, 5, tests).splitlines()
                    if line.startswith("| ▲% |"))
    assert gain_row == "| ▲% | +25.00* |"
    tests["SASRec"]["HitRate@50"]["p_holm"] = 0.04
    assert "+25.00*†" in render_markdown(["HitRate@50"], table, 5, tests)


def test_the_table_averages_each_run_over_its_users_not_recboles_rounded_figure():
    """RecBole rounds ``test_result`` to 4 decimals; a run's mean over its kept per-user
    values is what the tests use, and the table too. Here 2/3 = 66.6667% where RecBole's
    rounded 0.6667 would print 66.670; a run without per-user values keeps RecBole's."""
    from recbole_umi.experiments.tables import summarise

    def run(seed, per_user):
        record = {"variant": "UMI", "seed": seed, "test_result": {"recall@50": 0.6667}}
        if per_user is not None:
            record["test_per_user"] = {"user": ["1", "2", "3"], "recall@50": per_user}
        return record

    _, table = summarise({"UMI": [run(1, [1.0, 1.0, 0.0]), run(2, [1.0, 0.0, 1.0])]})
    mean, std = table["UMI"]["HitRate@50"]
    assert f"{mean:.3f}" == "66.667" and std == 0
    _, table = summarise({"UMI": [run(1, None)]})
    assert table["UMI"]["HitRate@50"][0] == pytest.approx(66.67)


def test_the_history_breakdown_refuses_models_tested_on_other_users():
    """The buckets come from the first run's history lengths: every model must have its users."""
    from recbole_umi.experiments.tables import render_history_breakdown

    def runs(variant, users):
        return [{"variant": variant, "seed": seed, "test_per_user": {
            "user": users, "history_length": [1, 5, 9], "recall@50": [1, 0, 1]}} for seed in (1, 2)]

    with pytest.raises(ValueError, match="MIND"):
        render_history_breakdown({"UMI": runs("UMI", ["1", "2", "3"]), "MIND": runs("MIND", ["1", "2", "4"])},
                                 "HitRate@50", 2)
