"""The tuning command on a tiny dataset: resuming, choosing on validation, bad input."""

import json
import math
import sys
from pathlib import Path

import pytest

from recbole_umi.experiments import tune as tune_module
from recbole_umi.experiments.runs import SettingsMismatchError
from recbole_umi.config import Config
from recbole_umi.experiments.tune import ParamsFileError, best_trial, read_params_file, trials_table, tune
from tests.conftest import cut_training, random_sequences, tiny_config, write_atomic

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "scripts"))

import search_edges  # noqa: E402
import search_proposals  # noqa: E402


@pytest.fixture
def setup(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    sequences, profiles = random_sequences(n_users=80, n_items=40, length=14)
    data = write_atomic(tmp_path / "data", "tiny", sequences, profiles)
    settings = tiny_config(data, eval_protocol="user_split", epochs=1, train_neg_sample_args=None)
    params = tmp_path / "umi.hyper"
    params.write_text("learning_rate loguniform -6,-3\nn_interests choice [1,2,3]  # K\n")
    return tmp_path, settings, params


def quiet(*_):
    pass


def test_interrupted_search_resumes_as_if_uninterrupted(setup):
    tmp_path, settings, params = setup
    whole = tune("UMI", "tiny", params, tmp_path / "whole", "bayes", 3, 7, config_dict=settings, log=quiet)

    # the same search, interrupted after the defaults trial and one proposed trial
    tune("UMI", "tiny", params, tmp_path / "split", "bayes", 2, 7, config_dict=settings, log=quiet)
    first = (tmp_path / "split" / "trials" / "001.json").read_text()
    lines = []
    tune("UMI", "tiny", params, tmp_path / "split", "bayes", 3, 7, config_dict=settings, log=lines.append)
    assert (tmp_path / "split" / "trials" / "001.json").read_text() == first  # not run again
    assert lines[0] == f"2 of 3 trials already done in {tmp_path / 'split' / 'trials'}"

    def trials(out):
        return [json.loads(p.read_text()) for p in sorted((tmp_path / out / "trials").glob("*.json"))]

    # the first trial is the model's current settings (UMI's defaults under the fixed ones)
    assert trials("whole")[0]["params"] == {"learning_rate": 0.005, "n_interests": 3}
    assert [t["proposed_by"] for t in trials("whole")] == ["defaults", "bayes", "bayes"]
    # the resumed search proposed and measured what the uninterrupted one did
    assert [t["params"] for t in trials("split")] == [t["params"] for t in trials("whole")]
    assert [t["best_valid_score"] for t in trials("split")] == [t["best_valid_score"] for t in trials("whole")]
    assert len({json.dumps(t["params"]) for t in trials("whole")}) == 3

    # best.yaml holds the best validation trial's settings, and --config_files reads it
    assert whole == best_trial(trials("whole"))
    config = Config("UMI", "tiny", config_file_list=[str(tmp_path / "whole" / "best.yaml")], config_dict=settings)
    assert config["n_interests"] == whole["params"]["n_interests"]
    assert config["learning_rate"] == pytest.approx(whole["params"]["learning_rate"])
    table = (tmp_path / "whole" / "trials.md").read_text()
    assert f"**{whole['best_valid_score']:.4f}**" in table
    assert "| epochs (best) | s |" in table and f"| {whole['epochs']} ({whole['best_epoch']}) |" in table


def test_a_trial_cut_short_continues_and_ends_as_the_uninterrupted_one(setup, monkeypatch):
    tmp_path, settings, params = setup
    settings = {**settings, "epochs": 3, "stopping_step": 5}
    tune("UMI", "tiny", params, tmp_path / "whole", "random", 2, 7, config_dict=settings, log=quiet)

    # the session ends in the second epoch of trial 2
    cut_training(monkeypatch, lambda epoch: epoch == 1 and (tmp_path / "cut" / "trials" / "001.json").exists())
    with pytest.raises(KeyboardInterrupt):
        tune("UMI", "tiny", params, tmp_path / "cut", "random", 2, 7, config_dict=settings, log=quiet)
    assert not (tmp_path / "cut" / "trials" / "002.json").exists()
    [kept] = (tmp_path / "saved").glob("tune-cut-*/002/elapsed.json")  # the first part's time
    assert json.loads(kept.read_text())["elapsed_s"] > 0
    kept.write_text(json.dumps({"elapsed_s": 10000.0}))  # as if the first part had taken hours
    lines = []
    tune("UMI", "tiny", params, tmp_path / "cut", "random", 2, 7, config_dict=settings, log=lines.append)
    assert any("continuing the interrupted trial from" in line for line in lines)

    whole, cut = (json.loads((tmp_path / out / "trials" / "002.json").read_text()) for out in ("whole", "cut"))
    assert whole["resumed_from"] is None and cut["resumed_from"].endswith("-last.pth")
    for key in ("params", "best_valid_score", "best_valid_result", "test_result", "epochs", "best_epoch"):
        assert cut[key] == whole[key], key
    assert whole["epochs"] == 3
    assert cut["wall_s"] > 10000 and cut["wall_s_all_parts"]  # the trial's time over both parts
    assert whole["wall_s"] < 10000 and whole["wall_s_all_parts"]
    # a finished trial's checkpoints are removed: its record holds what counts
    [root] = (tmp_path / "saved").glob("tune-cut-*")
    assert list(root.iterdir()) == []


def test_a_smaller_budget_chooses_among_the_first_trials_only(setup, monkeypatch):
    tmp_path, settings, params = setup
    tune("UMI", "tiny", params, tmp_path / "cut", "random", 3, 7, config_dict=settings, log=quiet)
    records = [json.loads(p.read_text()) for p in sorted((tmp_path / "cut" / "trials").glob("*.json"))]
    # make the third trial the best on validation, then cut the budget to two trials
    records[2]["best_valid_score"] = max(r["best_valid_score"] for r in records) + 0.1
    (tmp_path / "cut" / "trials" / "003.json").write_text(json.dumps(records[2]))
    monkeypatch.setattr(tune_module, "run", lambda *a, **k: pytest.fail("nothing should train"))
    best = tune("UMI", "tiny", params, tmp_path / "cut", "random", 2, 7, config_dict=settings, log=quiet)
    assert best == best_trial(records[:2])
    assert (tmp_path / "cut" / "best.yaml").read_text().startswith("# Best of 2 random trials for UMI")
    table = (tmp_path / "cut" / "trials.md").read_text()
    assert "The budget is 2 trials: the best is chosen from trials 1-2; trials 3-3" in table
    assert [line.split(" | ")[0] for line in table.splitlines() if line.startswith("| ") and "---" not in line][1:] == [
        "| 1", "| 2", "| 3"]  # the third trial is still listed


def test_best_trial_is_chosen_on_validation_never_on_test():
    records = [
        {"trial": 1, "best_valid_score": 0.30, "valid_score_bigger": True, "test_result": {"recall@5": 0.9}},
        {"trial": 2, "best_valid_score": 0.35, "valid_score_bigger": True, "test_result": {"recall@5": 0.1}},
        {"trial": 3, "best_valid_score": 0.35, "valid_score_bigger": True, "test_result": {"recall@5": 0.5}},
    ]
    assert best_trial(records)["trial"] == 2  # ties: the earlier trial
    smaller = [{**r, "valid_score_bigger": False} for r in records]
    assert best_trial(smaller)["trial"] == 1


def test_resuming_with_another_search_fails_before_training(setup, monkeypatch):
    tmp_path, settings, params = setup
    tune("UMI", "tiny", params, tmp_path / "out", "random", 1, 7, config_dict=settings, log=quiet)
    monkeypatch.setattr(tune_module, "run", lambda *a, **k: pytest.fail("trained before checking the folder"))
    with pytest.raises(SettingsMismatchError, match="another algo"):
        tune("UMI", "tiny", params, tmp_path / "out", "bayes", 2, 7, config_dict=settings, log=quiet)
    with pytest.raises(SettingsMismatchError, match="another settings"):
        tune("UMI", "tiny", params, tmp_path / "out", "random", 2, 7, config_dict={**settings, "embedding_size": 4}, log=quiet)
    params.write_text("learning_rate loguniform -6,-2\n")
    with pytest.raises(SettingsMismatchError, match="another space"):
        tune("UMI", "tiny", params, tmp_path / "out", "random", 2, 7, config_dict=settings, log=quiet)


def test_trials_record_their_code_and_a_search_does_not_mix_codes(setup, monkeypatch):
    from recbole_umi.provenance import MixedCodeError, code_version

    tmp_path, settings, params = setup
    tune("UMI", "tiny", params, tmp_path / "out", "random", 1, 7, config_dict=settings, log=quiet)
    path = tmp_path / "out" / "trials" / "001.json"
    record = json.loads(path.read_text())
    assert record["code"] == code_version()
    assert "Code: recbole-umi" in (tmp_path / "out" / "trials.md").read_text()
    record["code"] = {**record["code"], "code_digest": "older"}  # the first trial ran other code
    path.write_text(json.dumps(record))
    monkeypatch.setattr(tune_module, "run", lambda *a, **k: pytest.fail("trained before checking the code"))
    with pytest.raises(MixedCodeError, match="trial 1"):
        tune("UMI", "tiny", params, tmp_path / "out", "random", 2, 7, config_dict=settings, log=quiet)
    monkeypatch.undo()
    monkeypatch.chdir(tmp_path)
    tune("UMI", "tiny", params, tmp_path / "out", "random", 2, 7, config_dict=settings, log=quiet,
         allow_mixed_code=True)
    assert "Trials of 2 code versions" in (tmp_path / "out" / "trials.md").read_text()


def test_variant_names_as_in_compare(setup):
    tmp_path, settings, params = setup
    tune("UMI-IR", "tiny", params, tmp_path / "out", "random", 1, 7, config_dict=settings, log=quiet)
    stored = json.loads((tmp_path / "out" / "tuning.json").read_text())
    assert stored["model"] == "UMI-IR" and stored["settings"]["use_ir"] is False
    assert "1 random trials for UMI-IR on tiny" in (tmp_path / "out" / "best.yaml").read_text()


def test_recbole_model_with_exhaustive_search(setup):
    """SASRec through the same command; exhaustive search runs the whole grid (it broke
    with hyperopt >= 0.2.7)."""
    tmp_path, settings, params = setup
    params.write_text("learning_rate choice [0.001,0.01]\n")
    small = {**settings, "epochs": 1, "hidden_size": 16, "inner_size": 32, "n_layers": 1}
    tune("SASRec", "tiny", params, tmp_path / "out", "exhaustive", 99, 7, config_dict=small, log=quiet)
    tried = sorted(json.loads(p.read_text())["params"]["learning_rate"] for p in (tmp_path / "out" / "trials").glob("*.json"))
    assert tried == [0.001, 0.01]


@pytest.mark.parametrize(
    "text, message",
    [
        ("n_interest choice [1,2]\n", "n_interest: not a setting of UMI"),
        ("n_interests choice [0,2]\n", "'n_interests' = 0: must be an integer"),
        ("learning_rate loguniform -6\n", "loguniform needs 2 comma-separated numbers"),
        ("learning_rate normal 0,1\n", "expected 'name choice|uniform|quniform|loguniform values'"),
        ("# only a comment\n", "names no setting"),
        ("n_interests choice [4,5]\n", r"the current value 3 is outside the searched choice \[4, 5\]"),
        ("n_interests quniform 2,6,1\n", "'n_interests' = 2.0: must be an integer"),  # use choice for ints
        ("softmax_temperature uniform -1,1\n", r"'softmax_temperature' = -1.0: must be a number in \(0, inf\)"),
        ("learning_rate loguniform -6,inf\n", "loguniform needs finite numbers"),
        ("softmax_temperature uniform 1.5,0.5\n", "uniform needs low < high"),
        ("softmax_temperature quniform 0.5,1.5,0\n", "step q must be above 0"),
        # hyperopt's round(x / q) * q reaches 0.0 from 0.04: the end it can hand out is checked
        ("softmax_temperature quniform 0.04,1.5,0.1\n", r"'softmax_temperature' = 0.0: must be a number in \(0, inf\)"),
    ],
)
def test_bad_params_file_fails_before_training(setup, monkeypatch, text, message):
    tmp_path, settings, params = setup
    params.write_text(text)
    monkeypatch.setattr(tune_module, "run", lambda *a, **k: pytest.fail("trained a bad search"))
    with pytest.raises(Exception, match=message):
        tune("UMI", "tiny", params, tmp_path / "out", "random", 2, 7, config_dict=settings, log=quiet)


def test_read_params_file(tmp_path):
    path = tmp_path / "p.hyper"
    path.write_text("learning_rate loguniform -8, -4\n\nn_interests choice [2, 3]\nsoftmax_temperature quniform 0.5,1.5,0.25\n")
    assert read_params_file(path) == {
        "learning_rate": ("loguniform", [-8.0, -4.0]),
        "n_interests": ("choice", [2, 3]),
        "softmax_temperature": ("quniform", [0.5, 1.5, 0.25]),
    }
    path.write_text("a choice [1]\na choice [2]\n")
    with pytest.raises(ParamsFileError, match="searched twice"):
        read_params_file(path)
    path.write_text("hidden_act choice ['gelu', 'a b']\n")  # a choice's strings as written, spaces kept
    assert read_params_file(path) == {"hidden_act": ("choice", ["gelu", "a b"])}


@pytest.mark.parametrize("max_evals", [0, -1])
def test_a_search_without_trials_is_refused_before_training(setup, monkeypatch, max_evals):
    tmp_path, settings, params = setup
    monkeypatch.setattr(tune_module, "run", lambda *a, **k: pytest.fail("trained"))
    with pytest.raises(ValueError, match="--max_evals must be an integer of at least 1"):
        tune("UMI", "tiny", params, tmp_path / "out", "random", max_evals, 7, config_dict=settings, log=quiet)


def test_a_damaged_trial_is_run_again_and_a_busy_search_refused(setup, monkeypatch):
    from recbole_umi.files import run_lock

    tmp_path, settings, params = setup
    tune("UMI", "tiny", params, tmp_path / "whole", "random", 3, 7, config_dict=settings, log=quiet)
    tune("UMI", "tiny", params, tmp_path / "cut", "random", 3, 7, config_dict=settings, log=quiet)
    (tmp_path / "cut" / "trials" / "002.json").write_text('{"trial": 2, "par')  # cut short, with trial 3 after it
    lines = []
    tune("UMI", "tiny", params, tmp_path / "cut", "random", 3, 7, config_dict=settings, log=lines.append)
    assert any("002.json is damaged (not JSON" in line for line in lines)
    assert sorted(p.name for p in (tmp_path / "cut" / "trials").iterdir()) == [
        "001.json", "002.json", "002.json.damaged", "003.json", "003.json.damaged"]

    def trials(out):
        return [json.loads(p.read_text()) for p in sorted((tmp_path / out / "trials").glob("*.json"))]

    # trials 2 and 3 were proposed and run again as the uninterrupted search did
    assert [t["params"] for t in trials("cut")] == [t["params"] for t in trials("whole")]
    with run_lock(tmp_path / "cut" / "search") as mine:  # another process runs the search
        assert mine
        with pytest.raises(tune_module.SearchBusyError, match="another process is running the search"):
            tune("UMI", "tiny", params, tmp_path / "cut", "random", 3, 7, config_dict=settings, log=quiet)


def test_a_diverging_trial_fails_is_counted_and_the_search_goes_on(setup):
    """A learning rate of 1e30 makes the loss NaN in the first epoch: that trial is recorded as
    failed (no score, never chosen), the search goes on, and a search resumed after it
    proposes what the uninterrupted one did."""
    from recbole_umi.experiments.trials import NoScoredTrialError

    tmp_path, settings, params = setup
    params.write_text("learning_rate choice [0.005,1.0e+30]\n")
    lines = []
    best = tune("UMI", "tiny", params, tmp_path / "whole", "random", 4, 3, config_dict=settings, log=lines.append)

    def trials(out):
        return [json.loads(p.read_text()) for p in sorted((tmp_path / out / "trials").glob("*.json"))]

    records = trials("whole")
    assert len(records) == 4
    diverged = [t for t in records if t["params"]["learning_rate"] > 1]
    assert diverged and len(diverged) < 4  # seed 3 draws both values
    for t in records:
        if t in diverged:
            assert t["failed"].startswith("the training loss became nan in epoch 0: the run diverged")
            assert t["best_valid_score"] is None and t["test_result"] is None and t["valid_curve"] is None
        else:
            assert "failed" not in t and t["best_valid_score"] is not None
    assert best["params"]["learning_rate"] == 0.005 and best == best_trial(records)
    assert "learning_rate: 0.005" in (tmp_path / "whole" / "best.yaml").read_text()
    table = (tmp_path / "whole" / "trials.md").read_text()
    assert table.count("| failed: the training loss became nan in epoch 0") == len(diverged)
    assert "| test HitRate@5 |" in table and all(t["eval_protocol"] == "user_split" for t in records)
    assert any(f"[{diverged[0]['trial']}/4] FAILED in" in line for line in lines)

    # interrupted after trial 3 and resumed: the failed trials are read back, the same proposals follow
    tune("UMI", "tiny", params, tmp_path / "split", "random", 3, 3, config_dict=settings, log=quiet)
    tune("UMI", "tiny", params, tmp_path / "split", "random", 4, 3, config_dict=settings, log=quiet)
    assert [t["params"] for t in trials("split")] == [t["params"] for t in records]
    assert [t.get("failed") for t in trials("split")] == [t.get("failed") for t in records]

    # every trial failed: the trials are on disk, and there is nothing to choose
    params.write_text("learning_rate choice [1.0e+30]\n")
    with pytest.raises(NoScoredTrialError, match="all 2 trials failed"):
        tune("UMI", "tiny", params, tmp_path / "all", "random", 2, 3, config_dict=settings, log=quiet,
             start_from_defaults=False)
    assert [t["failed"] is not None for t in trials("all")] == [True, True]
    assert not (tmp_path / "all" / "best.yaml").exists()


def test_tuning_summary_script(tmp_path):
    """scripts/tuning_summary.py: one line per model, chosen from the budget's first trials."""
    import subprocess

    def write(model, scores, walls):
        folder = tmp_path / model / "trials"
        folder.mkdir(parents=True)
        for number, (score, wall) in enumerate(zip(scores, walls), 1):
            record = {"trial": number, "proposed_by": "defaults" if number == 1 else "random",
                      "params": {"learning_rate": 0.001 * number, "n_interests": number},
                      "best_valid_score": score, "valid_score_bigger": True, "wall_s": wall, "test_result": {}}
            (folder / f"{number:03d}.json").write_text(json.dumps(record))

    write("UMI", [0.30, 0.33, 0.31, 0.50], [1800, 1800, 1800, 1800])  # trial 4: beyond the budget of 3
    write("SASRec", [0.37], [3600])
    write("MIND", [None, 0.2, None], [36, 3600, 36])  # the defaults and trial 3 diverged
    write("ComiRec", [None], [72])  # its only trial so far diverged
    for model, number in (("MIND", 1), ("MIND", 3), ("ComiRec", 1)):
        record = json.loads((tmp_path / model / "trials" / f"{number:03d}.json").read_text())
        record["failed"] = "the training loss became nan in epoch 0: the run diverged"
        (tmp_path / model / "trials" / f"{number:03d}.json").write_text(json.dumps(record))
    resumed = tmp_path / "SASRec" / "trials" / "001.json"  # its hours: the last process's only
    resumed.write_text(json.dumps({**json.loads(resumed.read_text()), "resumed_from": "saved/x-last.pth"}))
    resumed = tmp_path / "UMI" / "trials" / "002.json"  # resumed, its time over all its parts (RunClock)
    resumed.write_text(json.dumps({**json.loads(resumed.read_text()), "resumed_from": "saved/y-last.pth",
                                   "wall_s_all_parts": True}))
    script = Path(__file__).resolve().parent.parent / "scripts" / "tuning_summary.py"
    out = subprocess.run([sys.executable, str(script), str(tmp_path), "--budget=3"], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert lines[2] == "| ComiRec (unfinished) | 1 of 3 (1 failed) | - | - | failed | - | 0.0 |"
    assert lines[3] == "| MIND | 3 (2 failed) | 2 | 0.2000 | failed | learning_rate 0.002, n_interests 2 | 1.0 |"
    assert lines[4] == "| SASRec (unfinished) | 1 of 3 | 1 | 0.3700 | 0.3700 | learning_rate 0.001, n_interests 1 | >= 1.0 |"
    assert lines[5] == "| UMI | 3 (+1) | 2 | 0.3300 | 0.3000 | learning_rate 0.002, n_interests 2 | 2.0 |"


def test_trials_table_lists_epochs_and_a_dash_for_older_records():
    common = {"params": {"learning_rate": 0.01}, "best_valid_result": {"recall@5": 0.5}, "test_result": {"recall@5": 0.4},
              "wall_s": 12.0}
    older = {"trial": 1, "best_valid_score": 0.5, **common}  # recorded before the epochs were
    newer = {"trial": 2, "best_valid_score": 0.6, "epochs": 7, "best_epoch": 4, **common}
    rows = [line for line in trials_table([older, newer], newer).splitlines() if line.startswith("| ")]
    assert rows[0].endswith("| test recall@5 | epochs (best) | s |")
    assert rows[2] == "| 1 | 0.01 | 0.5000 | 0.4000 | - | 12 |"
    assert rows[3] == "| 2 | 0.01 | **0.6000** | 0.4000 | 7 (4) | 12 |"


def test_best_yaml_names_the_search_seed_and_compare_refuses_it(setup, monkeypatch):
    from recbole_umi.experiments.runs import SearchSeedError, check_search_seeds, search_seeds

    tmp_path, settings, params = setup
    tune("UMI", "tiny", params, tmp_path / "out", "random", 1, 7, config_dict={**settings, "seed": 11}, log=quiet)
    best = tmp_path / "out" / "best.yaml"
    assert "# search training seed: 11 " in best.read_text()
    assert json.loads((tmp_path / "out" / "trials" / "001.json").read_text())["training_seed"] == 11
    assert search_seeds([str(best)]) == {11: str(best)}
    with pytest.raises(SearchSeedError, match="must not include 11: UMI's settings"):
        check_search_seeds({"UMI": [str(best)]}, [10, 11])
    check_search_seeds({"UMI": [str(best)]}, [10, 12])
    check_search_seeds({"UMI": [str(best)]}, [11], allow=True)
    # compare itself refuses before anything trains
    from recbole_umi.experiments import runs as compare_module

    monkeypatch.setattr(compare_module, "run", lambda *a, **k: pytest.fail("trained before checking the seeds"))
    with pytest.raises(SearchSeedError):
        compare_module.compare(["UMI"], "tiny", [11], tmp_path / "table", config_dict=settings,
                               variant_files={"UMI": [str(best)]})


def test_trials_table_names_the_metrics_as_the_protocol_does():
    common = {"params": {"learning_rate": 0.01}, "best_valid_result": {"recall@5": 0.5, "ndcg@5": 0.3},
              "test_result": {"recall@5": 0.4, "ndcg@5": 0.2}, "wall_s": 12.0, "epochs": 7, "best_epoch": 4}
    paper = {"trial": 1, "best_valid_score": 0.5, "eval_protocol": "user_split", "valid_metric": "HitRate@5", **common}
    rows = trials_table([paper], paper).splitlines()
    assert rows[0] == "Every trial; the best validation HitRate@5 is in bold. Test results are recorded, never used to choose."
    assert rows[2] == "| trial | learning_rate | valid HitRate@5 | test HitRate@5 | test ndcg@5 | epochs (best) | s |"
    recbole = {**paper, "eval_protocol": "recbole", "valid_metric": "recall@5"}
    assert "| valid recall@5 | test recall@5 |" in trials_table([recbole], recbole)


def test_a_search_on_the_edge_goes_on_in_a_widened_space_only(setup, monkeypatch):
    tmp_path, settings, params = setup
    tune("UMI", "tiny", params, tmp_path / "out", "random", 2, 7, config_dict=settings, log=quiet)
    first = [json.loads(p.read_text()) for p in sorted((tmp_path / "out" / "trials").glob("*.json"))]
    # a narrower or other space is refused before anything trains, saying why
    monkeypatch.setattr(tune_module, "run", lambda *a, **k: pytest.fail("trained"))
    for text, why in (("learning_rate loguniform -5.5,-3\nn_interests choice [1,2,3]\n", r"does not hold \[-6.0, -3.0\]"),
                      ("learning_rate loguniform -6,-3\nn_interests choice [2,3,4]\n", r"\[2, 3, 4\] does not hold \[1, 2, 3\] in their order"),
                      ("learning_rate uniform 0.001,0.04\nn_interests choice [1,2,3]\n", "is uniform, was loguniform")):
        params.write_text(text)
        with pytest.raises(SettingsMismatchError, match=f"another space .*{why}"):
            tune("UMI", "tiny", params, tmp_path / "out", "random", 3, 7, config_dict=settings, log=quiet)
    monkeypatch.undo()
    monkeypatch.chdir(tmp_path)
    # a wider one: the search goes on in it, the two trials before kept
    params.write_text("learning_rate loguniform -7,-3\nn_interests choice [1,2,3,4]\n")
    lines = []
    tune("UMI", "tiny", params, tmp_path / "out", "random", 4, 7, config_dict=settings, log=lines.append)
    assert f"{tmp_path / 'out'}: the space widened after 2 trials (learning_rate, n_interests); the search goes on in it" in lines
    trials = [json.loads(p.read_text()) for p in sorted((tmp_path / "out" / "trials").glob("*.json"))]
    assert trials[:2] == first and len(trials) == 4
    record = json.loads((tmp_path / "out" / "tuning.json").read_text())
    assert record["space"] == {"learning_rate": ["loguniform", [-7.0, -3.0]], "n_interests": ["choice", [1, 2, 3, 4]]}
    assert record["widened_from"] == [{"space": {"learning_rate": ["loguniform", [-6.0, -3.0]],
                                                 "n_interests": ["choice", [1, 2, 3]]}, "trials": 2}]
    assert ("The space was widened after trial 2: learning_rate loguniform [-6.0, -3.0] -> loguniform [-7.0, -3.0]; "
            "n_interests choice [1, 2, 3] -> choice [1, 2, 3, 4].") in (tmp_path / "out" / "trials.md").read_text()
    # resumed again in the same widened space: nothing to redo, the history kept
    monkeypatch.setattr(tune_module, "run", lambda *a, **k: pytest.fail("trained"))
    tune("UMI", "tiny", params, tmp_path / "out", "random", 4, 7, config_dict=settings, log=quiet)
    assert json.loads((tmp_path / "out" / "tuning.json").read_text()) == record


def test_edges_and_the_widened_space_by_hand(tmp_path):
    import math

    from recbole_umi.experiments.params_file import edges, params_file_text, widened, widening_problems

    space = {"learning_rate": ("loguniform", [-8.0, -4.0]), "d": ("choice", [32, 64, 128]), "K": ("choice", [2, 3, 4]),
             "T": ("choice", [10, 20, 50]), "dropout": ("uniform", [0.1, 0.5]), "loss": ("choice", ["a", "b"]),
             "hn": ("choice", [True, False]), "n": ("choice", [5, 50, 500])}
    params = {"learning_rate": 0.0003, "d": 128, "K": 2, "T": 20, "dropout": 0.48, "loss": "a", "hn": True, "n": 500}
    # ln 0.0003 = -8.11 is below -8 + 0.4 (a tenth of the width); 0.48 above 0.5 - 0.04; T = 20 is inside
    assert edges(space, params, skip=("n",)) == {"learning_rate": "low", "d": "high", "K": "low", "dropout": "high"}
    assert edges(space, {**params, "learning_rate": 0.0006, "dropout": 0.14}, skip=("n",)) == {"d": "high", "K": "low"}
    ends = {"learning_rate": "low", "d": "high", "K": "low", "dropout": "low", "T": "high"}
    wider = widened(space, ends, {"K": (1, None), "dropout": (0.0, 0.9)})
    assert wider == {**space, "learning_rate": ("loguniform", [-9.0, -4.0]),  # out by a quarter of the width
                     "d": ("choice", [32, 64, 128, 256]),  # by the ratio at that end
                     "K": ("choice", [1, 2, 3, 4]),  # by the constant step
                     "dropout": ("uniform", [0.0, 0.5]),  # 0.1 - 0.1, at the floor
                     "T": ("choice", [10, 20, 50, 125])}  # 50 x 50/20
    assert widened(space, {"K": "low"}, {"K": (2, None)})["K"] == ("choice", [2, 3, 4])
    assert widened(space, {"dropout": "low"}, {"dropout": (0.05, None)})["dropout"] == ("uniform", [0.05, 0.5])
    assert widening_problems(wider, space) == [] and widening_problems(space, space) == []
    assert widening_problems(space, wider) == [
        "learning_rate loguniform [-8.0, -4.0] does not hold [-9.0, -4.0]",
        "d [32, 64, 128] does not hold [32, 64, 128, 256] in their order",
        "K [2, 3, 4] does not hold [1, 2, 3, 4] in their order", "T [10, 20, 50] does not hold [10, 20, 50, 125] in their order",
        "dropout uniform [0.1, 0.5] does not hold [0.0, 0.5]"]
    # evenly spaced floats continue by their step; a 0 beside the edge: by the difference; limits hold
    assert widened({"x": ("choice", [0.1, 0.2, 0.3])}, {"x": "high"}) == {"x": ("choice", [0.1, 0.2, 0.3, 0.4])}
    assert widened({"x": ("choice", [0, 5])}, {"x": "high"}) == {"x": ("choice", [0, 5, 10])}
    assert widened({"x": ("choice", [0, 5])}, {"x": "low"}, {"x": (0, None)}) == {"x": ("choice", [0, 5])}
    assert widened({"p": ("uniform", [0.1, 0.85])}, {"p": "high"}, {"p": (0.0, 0.9)}) == {"p": ("uniform", [0.1, 0.9])}
    # a loguniform's limits are in the setting's scale: ln 0.0002 = -8.52 stops -8 - 1
    assert widened({"lr": ("loguniform", [-8.0, -4.0])}, {"lr": "low"}, {"lr": (0.0002, None)})["lr"][1][0] == (
        pytest.approx(math.log(0.0002)))
    # other types, order or step are no widening
    assert widening_problems({"h": ("choice", [1, 0])}, {"h": ("choice", [True, False])}) == [
        "h [1, 0] does not hold [True, False] in their order"]
    assert widening_problems({"d": ("choice", [32.0, 64])}, {"d": ("choice", [32])}) != []
    assert widening_problems({"K": ("choice", [3, 2, 1])}, {"K": ("choice", [1, 2, 3])}) != []
    assert widening_problems({"t": ("quniform", [0.0, 2.0, 0.5])}, {"t": ("quniform", [0.5, 1.5, 0.25])}) == [
        "t quniform [0.0, 2.0, 0.5] does not hold [0.5, 1.5, 0.25]"]
    assert widening_problems({"b": ("choice", [1]), "a": ("choice", [1])}, {"a": ("choice", [1]), "b": ("choice", [1])}) == []
    # written as read back: floats yaml would take for strings, booleans, strings
    space = {"d": ("choice", [32, 64]), "lr": ("choice", [1e-05, 0.001]), "hn": ("choice", [True, False]),
             "loss": ("choice", ["a", "b"]), "t": ("loguniform", [-11.512925464970229, -4.0])}
    text = params_file_text(space)
    assert text == ('d choice [32,64]\nlr choice [1.0e-05,0.001]\nhn choice [True,False]\nloss choice ["a","b"]\n'
                    "t loguniform -11.512925464970229,-4.0\n")
    path = tmp_path / "w.hyper"
    path.write_text(text)
    assert read_params_file(path) == space


def test_search_edges_script_widens_once_and_writes_the_same_file_again(setup):
    """scripts/search_edges.py on a finished search, then after the widening started."""
    import subprocess

    tmp_path, settings, params = setup
    params.write_text("learning_rate loguniform -6,-3\nn_interests choice [1,2,3]\n")
    tune("UMI", "tiny", params, tmp_path / "out", "random", 2, 7, config_dict=settings, log=quiet)
    for number, k in ((1, 3), (2, 2)):  # trial 2 the best, its K inside, its learning rate made the highest
        path = tmp_path / "out" / "trials" / f"{number:03d}.json"
        record = json.loads(path.read_text())
        record.update(best_valid_score=0.5 if number == 2 else 0.1, params={"learning_rate": 0.049, "n_interests": k})
        path.write_text(json.dumps(record))
    script = Path(__file__).resolve().parent.parent / "scripts" / "search_edges.py"

    def edges_script(after):
        return subprocess.run([sys.executable, str(script), str(tmp_path / "out"), f"--after={after}"],
                              capture_output=True, text=True)

    out = edges_script(3)
    assert out.returncode != 0 and "2 of 3 trials finished; widen it when all have" in out.stderr
    out = edges_script(2)
    assert out.returncode == 0, out.stderr
    # ln 0.049 = -3.02 is above -3 - 0.3: the high end moves out by 3 / 4
    assert out.stdout.splitlines()[2] == "| out | 2 | learning_rate = 0.049 (high) | learning_rate [-6.0, -2.25] |"
    widened_file = (tmp_path / "out" / "widened.hyper").read_text()
    assert widened_file.splitlines()[1:] == ["learning_rate loguniform -6.0,-2.25", "n_interests choice [1,2,3]"]
    assert read_params_file(tmp_path / "out" / "widened.hyper") == {
        "learning_rate": ("loguniform", [-6.0, -2.25]), "n_interests": ("choice", [1, 2, 3])}
    tune("UMI", "tiny", tmp_path / "out" / "widened.hyper", tmp_path / "out", "random", 3, 7, config_dict=settings,
         log=quiet)
    assert edges_script(2).returncode == 0  # the space it widens is the first, not the widened one
    assert (tmp_path / "out" / "widened.hyper").read_text() == widened_file


def test_search_proposals_script_knows_a_random_search_s_trials_before_they_run(setup, capsys):
    """scripts/search_proposals.py: the trials a random search ran, before and after a
    widening, are its proposals, and the next trial runs the settings it proposed for it."""
    tmp_path, settings, params = setup
    out = tmp_path / "out"
    tune("UMI", "tiny", params, out, "random", 2, 11, config_dict=settings, log=quiet)
    wider = tmp_path / "wider.hyper"
    wider.write_text("learning_rate loguniform -7,-3\nn_interests choice [1,2,3,4]\n")
    # trial 3 proposed in the widened space before it runs (trial 2 in its own), then run there
    before = search_proposals.proposals(out, 3, read_params_file(wider), after=2)
    ran = [json.loads(p.read_text()) for p in sorted((out / "trials").glob("*.json"))]
    assert search_proposals.same(before[0][1], ran[1]["params"])
    (_, coming, none) = before[1]
    assert none is None
    tune("UMI", "tiny", wider, out, "random", 3, 11, config_dict=settings, log=quiet)
    ran = [json.loads(p.read_text()) for p in sorted((out / "trials").glob("*.json"))]
    assert search_proposals.same(coming, ran[2]["params"])
    rows = search_proposals.proposals(out, 4)
    assert [trial for trial, _, _ in rows] == [2, 3, 4]  # trial 1: the defaults, proposed by no algorithm
    assert all(search_proposals.same(proposed, params) for _, proposed, params in rows[:2])
    assert rows[2][2] is None and rows[2][1] != coming
    capsys.readouterr()  # the trials' own printing
    search_proposals.main([str(out), "--to=4"])
    table = capsys.readouterr().out.splitlines()
    assert [line.rsplit("|", 2)[1].strip() for line in table[2:]] == ["the same"] * 2 + ["-"]
    # a search not begun: from its space and seed, the same proposals
    assert [row[:2] for row in search_proposals.proposals(tmp_path / "new", 2, read_params_file(params), 11)] == [
        row[:2] for row in rows[:1]]
    with pytest.raises(SystemExit, match="holds no search yet"):
        search_proposals.proposals(tmp_path / "new", 3, read_params_file(params))
    # a search other than random: its proposals depend on its results
    record = json.loads((out / "tuning.json").read_text())
    (out / "tuning.json").write_text(json.dumps({**record, "algo": "bayes"}))
    with pytest.raises(SystemExit, match="only a random search's proposals are known"):
        search_proposals.proposals(out, 5)


def test_search_edges_keeps_T_within_10_to_50_and_says_so(tmp_path, capsys):
    """T chosen at 50 (or 10) is an edge, but the search's widening keeps T within 10-50 (its
    LIMITS); the width chosen at its top widens as before, and both files say which."""
    folder = tmp_path / "SASRec"
    (folder / "trials").mkdir(parents=True)
    space = {"hidden_size": ["choice", [32, 64, 128]], "MAX_ITEM_LIST_LENGTH": ["choice", [10, 20, 50]]}
    (folder / "tuning.json").write_text(json.dumps({"space": space}))
    for number, (d, t, score) in enumerate([(64, 10, 0.30), (128, 50, 0.42)], start=1):
        (folder / "trials" / f"{number:03d}.json").write_text(json.dumps(
            {"trial": number, "best_valid_score": score, "valid_score_bigger": True,
             "params": {"hidden_size": d, "MAX_ITEM_LIST_LENGTH": t}}))
    search_edges.main([str(folder), "--after=2"])
    row = capsys.readouterr().out.splitlines()[2]
    assert row == ("| SASRec | 2 | hidden_size = 128 (high); MAX_ITEM_LIST_LENGTH = 50 (high) | "
                   "hidden_size [32, 64, 128, 256]; MAX_ITEM_LIST_LENGTH [10, 20, 50] (kept: its limit) |")
    lines = (folder / "widened.hyper").read_text().splitlines()
    assert lines[0].endswith("hidden_size high, MAX_ITEM_LIST_LENGTH high (kept: its limit)")
    assert read_params_file(folder / "widened.hyper") == {
        "hidden_size": ("choice", [32, 64, 128, 256]), "MAX_ITEM_LIST_LENGTH": ("choice", [10, 20, 50])}
    # nor below 10
    (folder / "trials" / "002.json").write_text(json.dumps(
        {"trial": 2, "best_valid_score": 0.42, "valid_score_bigger": True,
         "params": {"hidden_size": 32, "MAX_ITEM_LIST_LENGTH": 10}}))
    search_edges.main([str(folder), "--after=2"])
    assert capsys.readouterr().out.splitlines()[2] == (
        "| SASRec | 2 | hidden_size = 32 (low); MAX_ITEM_LIST_LENGTH = 10 (low) | "
        "hidden_size [16, 32, 64, 128]; MAX_ITEM_LIST_LENGTH [10, 20, 50] (kept: its limit) |")


def test_widening_twice_under_tpe_and_what_a_refused_widening_leaves(setup, monkeypatch):
    from recbole_umi.provenance import MixedCodeError

    tmp_path, settings, params = setup
    params.write_text("learning_rate loguniform -6,-3\nn_interests choice [2,3]\n")
    tune("UMI", "tiny", params, tmp_path / "out", "bayes", 2, 7, config_dict=settings, log=quiet)
    record = (tmp_path / "out" / "tuning.json").read_text()
    # the space and another setting changed together: refused, saying both
    params.write_text("learning_rate loguniform -6,-3\nn_interests choice [1,2,3]\n")
    monkeypatch.setattr(tune_module, "run", lambda *a, **k: pytest.fail("trained"))
    with pytest.raises(SettingsMismatchError, match="another space, settings"):
        tune("UMI", "tiny", params, tmp_path / "out", "bayes", 3, 7, config_dict={**settings, "embedding_size": 4},
             log=quiet)
    # a widening refused for the code of its trials leaves the folder as it was
    path = tmp_path / "out" / "trials" / "001.json"
    first = path.read_text()
    path.write_text(json.dumps({**json.loads(first), "code": {"code_digest": "older"}}))
    with pytest.raises(MixedCodeError):
        tune("UMI", "tiny", params, tmp_path / "out", "bayes", 3, 7, config_dict=settings, log=quiet)
    assert (tmp_path / "out" / "tuning.json").read_text() == record
    path.write_text(first)
    monkeypatch.undo()
    monkeypatch.chdir(tmp_path)
    # widened at the low end (the choices' indices shift) under TPE, then once more
    tune("UMI", "tiny", params, tmp_path / "out", "bayes", 3, 7, config_dict=settings, log=quiet)
    params.write_text("learning_rate loguniform -7,-3\nn_interests choice [1,2,3]\n")
    tune("UMI", "tiny", params, tmp_path / "out", "bayes", 5, 7, config_dict=settings, log=quiet)
    trials = [json.loads(p.read_text()) for p in sorted((tmp_path / "out" / "trials").glob("*.json"))]
    assert [t["trial"] for t in trials] == [1, 2, 3, 4, 5]
    assert all(t["params"]["n_interests"] in (1, 2, 3) and math.exp(-7) <= t["params"]["learning_rate"] <= math.exp(-3)
               for t in trials)
    assert [stage["trials"] for stage in json.loads((tmp_path / "out" / "tuning.json").read_text())["widened_from"]] == [2, 3]
    table = (tmp_path / "out" / "trials.md").read_text()
    assert "The space was widened after trial 2: n_interests choice [2, 3] -> choice [1, 2, 3]." in table
    assert "The space was widened after trial 3: learning_rate loguniform [-6.0, -3.0] -> loguniform [-7.0, -3.0]." in table
