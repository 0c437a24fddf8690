"""Pruning a search's trials: the median stopping rule by hand, the trainer's stop rule (and
its resume), and a pruned search whose every decision is checked against its trial files."""

import json
import shutil
import statistics
from pathlib import Path

import pytest

from recbole_umi.experiments.pruning import MedianStoppingRule
from recbole_umi.experiments.tune import tune
from recbole_umi.quick_start import run
from tests.conftest import cut_training, random_sequences, tiny_config, write_atomic


def test_the_median_rule_by_hand():
    curves = [[0.20, 0.25, 0.26], [0.22, 0.24], [0.10, 0.30, 0.31]]
    rule = MedianStoppingRule(curves, after=2, min_trials=3, bigger=True)
    # by validation 2 the references' bests are 0.25, 0.24, 0.30: median 0.25
    assert rule.median_at(2) == 0.25
    assert rule([0.10, 0.24])
    assert not rule([0.10, 0.25])  # a tie goes on
    assert not rule([0.10])  # before `after` validations nothing stops
    # by validation 3 the second curve has ended: its final best 0.24 counts; median 0.26
    assert rule.median_at(3) == 0.26
    assert rule([0.10, 0.20, 0.255]) and not rule([0.10, 0.20, 0.27])
    # a smaller-is-better score: the bests are the minima (0.20, 0.22, 0.10), median 0.20
    lower = MedianStoppingRule(curves, after=1, min_trials=3, bigger=False)
    assert lower([0.21]) and not lower([0.19])
    # too few reference trials: nothing stops
    assert not MedianStoppingRule(curves, after=1, min_trials=4, bigger=True)([0.0])
    with pytest.raises(ValueError, match="at least 1"):
        MedianStoppingRule(curves, after=0, min_trials=1, bigger=True)


@pytest.fixture
def data(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    sequences, profiles = random_sequences(n_users=80, n_items=40, length=14)
    return write_atomic(tmp_path / "data", "tiny", sequences, profiles)


def test_a_stop_rule_ends_training_and_a_resumed_run_keeps_its_curve(data, monkeypatch):
    settings = tiny_config(data, eval_protocol="user_split", epochs=4, stopping_step=10, train_neg_sample_args=None)
    seen = []

    def after_two(scores):
        seen.append(list(scores))
        return len(scores) >= 2

    stopped = run("UMI", "tiny", config_dict=settings, stop_rule=after_two)
    assert stopped["epochs"] == 2 and stopped["stopped_at_validation"] == 2
    assert seen == [stopped["valid_scores"][:1], stopped["valid_scores"]] and len(stopped["valid_scores"]) == 2
    assert stopped["best_valid_score"] == max(stopped["valid_scores"])

    whole = run("UMI", "tiny", config_dict=settings)
    assert whole["stopped_at_validation"] is None and len(whole["valid_scores"]) == whole["epochs"] == 4
    assert whole["valid_scores"][:2] == stopped["valid_scores"]  # the same run up to the stop

    # cut in epoch 3, resumed: the curve holds the validations before the cut too
    cut_training(monkeypatch, lambda epoch: epoch == 2)
    checkpoints = data.parent / "cut"
    with pytest.raises(KeyboardInterrupt) as interrupted:
        run("UMI", "tiny", config_dict={**settings, "checkpoint_dir": str(checkpoints)})
    monkeypatch.undo()
    monkeypatch.chdir(data.parent)
    last = Path(interrupted.value.resume_command.split("=", 1)[1])
    copy = shutil.copytree(checkpoints, data.parent / "copy")  # resuming writes to the checkpoint's files
    resumed = run(resume=str(last), config_dict={"data_path": str(data)})
    assert resumed["valid_scores"] == whole["valid_scores"]
    # resumed under a rule that had already stopped it: no further epoch
    again = run(resume=str(copy / last.name), config_dict={"data_path": str(data)},
                stop_rule=lambda scores: len(scores) >= 2)
    assert again["epochs"] == 2 and again["stopped_at_validation"] == 2


def test_a_run_pruned_at_its_last_epoch_and_cut_before_its_test_is_resumed_pruned(data, monkeypatch):
    """The rule fires at the validation where the epochs run out; the session ends during the
    test. Resumed, the run is the finished, pruned run it was (its last validation asked the
    rule first): resuming used to take it for a run that had ended by its epochs alone."""
    from recbole_umi import quick_start

    settings = tiny_config(data, eval_protocol="user_split", epochs=2, stopping_step=10, train_neg_sample_args=None,
                           checkpoint_dir=str(data.parent / "cut"))
    rule = lambda scores: len(scores) >= 2  # noqa: E731
    whole = run("UMI", "tiny", config_dict={**settings, "checkpoint_dir": str(data.parent / "whole")}, stop_rule=rule)
    assert whole["stopped_at_validation"] == 2 and whole["epochs"] == 2

    def cut(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(quick_start, "evaluate_trained", cut)
    with pytest.raises(KeyboardInterrupt):
        run("UMI", "tiny", config_dict=settings, stop_rule=rule)
    monkeypatch.undo()
    monkeypatch.chdir(data.parent)
    (last,) = (data.parent / "cut").glob("*-last.pth")
    resumed = run(resume=str(last), config_dict={"data_path": str(data)}, stop_rule=rule)
    assert resumed["stopped_at_validation"] == 2 and resumed["epochs"] == 2
    assert resumed["valid_scores"] == whole["valid_scores"] and resumed["test_result"] == whole["test_result"]


def test_every_pruning_decision_of_a_search_follows_the_rule(data, tmp_path):
    settings = tiny_config(data, eval_protocol="user_split", epochs=4, stopping_step=10, train_neg_sample_args=None)
    params = tmp_path / "umi.hyper"
    params.write_text("learning_rate loguniform -12,-2\n")  # 6e-6 (learns nothing) to 0.14
    out = tmp_path / "search"
    tune("UMI", "tiny", params, out, "random", 6, 3, config_dict=settings, log=lambda *_: None,
         prune_after=1, prune_min_trials=1)
    trials = [json.loads(p.read_text()) for p in sorted((out / "trials").glob("*.json"))]
    assert len(trials) == 6
    pruned = 0
    for number, trial in enumerate(trials):
        references = [t["valid_curve"] for t in trials[:number] if t["pruned_at"] is None]
        expected = None
        for v in range(1, len(trial["valid_curve"]) + 1):
            if references and max(trial["valid_curve"][:v]) < statistics.median(max(c[:v]) for c in references):
                expected = v
                break
        assert trial["pruned_at"] == expected, number
        assert len(trial["valid_curve"]) == (expected or trial["epochs"])
        pruned += expected is not None
    assert pruned >= 1  # the tiny learning rates fall behind after one validation
    assert "pruned after validation" in (out / "trials.md").read_text()
    # the search's record names its rule: resuming without it is another search
    with pytest.raises(Exception, match="prune_after"):
        tune("UMI", "tiny", params, out, "random", 7, 3, config_dict=settings, log=lambda *_: None)
