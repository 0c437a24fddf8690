"""Causal encoders in one pass (``train_sampling: windows``): the rows cover each training
target once, every prefix's interests equal those of the history cut there, and the loss
equals the row-per-position loss where the two kinds of rows coincide."""

import numpy as np
import pytest
import torch

from recbole_umi import pipeline
from recbole_umi.config import Config
from recbole_umi.data.split import window_targets
from recbole_umi.settings import SettingsError
from tests.conftest import build, tiny_config, write_atomic


def test_window_targets_cover_each_target_once():
    targets, counts = window_targets(np.array([11, 21, 31, 41]), np.array([18, 22, 31, 44]), 3)
    assert targets.tolist() == [11, 14, 17, 21, 43] and counts.tolist() == [3, 1, 0, 1]
    rng = np.random.default_rng(0)
    starts = np.cumsum(rng.integers(2, 30, size=50))
    ends = starts + rng.integers(2, 28, size=50)
    for length in (1, 2, 5, 10):
        targets, counts = window_targets(starts + 1, ends, length)
        covered = []
        for user, (start, end) in enumerate(zip(starts, ends)):
            mine = targets[np.repeat(np.arange(50), counts) == user]
            for e in mine:  # the row ending at e predicts the targets after its history's positions
                covered += range(max(e - length, start) + 1, e + 1)
        assert sorted(covered) == sorted(t for s, e in zip(starts, ends) for t in range(s + 1, e))


def prefix_batches(batch, field="item_id_list", length_field="item_length"):
    """For each position j, the batch with every history cut after j (users with fewer items
    keep theirs)."""
    history, lengths = batch[field], batch[length_field]
    for j in range(history.size(1)):
        cut = history.clone()
        cut[:, j + 1:] = 0
        yield j, {**batch.interaction, field: cut, length_field: torch.clamp(lengths, max=j + 1)}


@pytest.mark.parametrize("model, overrides", [
    ("SASRecMatching", {}),
    ("UMISA", {"profile_steering": "queries"}),
    ("UMISA", {"profile_steering": "gate", "use_ir": False}),
    ("UMISA", {"profile_steering": "none", "recent_interest": False}),
])
def test_every_prefix_in_one_pass_equals_the_history_cut_there(tiny_data, model, overrides):
    _, train_data, _, built = build(tiny_data, model, **overrides)
    built.eval()
    batch = next(iter(train_data))
    with torch.no_grad():
        prefixes = built.tower.prefix_interests(batch)  # B x T x K x d
        for j, cut in prefix_batches(batch):
            real = batch["item_length"] > j  # users with a (j+1)-th item
            expected = built.tower(cut)
            torch.testing.assert_close(prefixes[:, j][real], expected[real], rtol=1e-5, atol=1e-5)


def test_the_window_loss_is_the_row_loss_where_the_rows_coincide(tmp_path, monkeypatch):
    """Every training user has at most T + 1 items: one window per user holds every row of
    the user, each position with its whole history, so the two losses are the same number."""
    monkeypatch.chdir(tmp_path)
    rng = np.random.default_rng(3)
    sequences = {u: [int(i) for i in rng.choice(np.arange(1, 31), size=int(rng.integers(2, 7)), replace=False)]
                 for u in range(1, 61)}
    data = write_atomic(tmp_path / "data", "short", sequences, {u: (30.0 + u % 20, "MF"[u % 2]) for u in sequences})
    losses = {}
    for sampling in ("all_positions", "windows"):
        config = Config("UMISA", "short", config_dict=tiny_config(
            data, eval_protocol="user_split", train_sampling=sampling, MAX_ITEM_LIST_LENGTH=5, loss_type="full_softmax",
            train_batch_size=10_000, hidden_dropout_prob=0.0, attn_dropout_prob=0.0))
        _, train_data, _, _, model = pipeline.build(config)  # the plugin's protocol: user_split rows
        batch = next(iter(train_data))  # the whole training split in one batch
        torch.manual_seed(0)
        losses[sampling] = (model.calculate_loss(batch).item(), len(batch))
    assert losses["windows"][1] < losses["all_positions"][1]  # fewer rows ...
    assert losses["windows"][0] == pytest.approx(losses["all_positions"][0], rel=1e-5)  # ... the same loss


def long_sequences(tmp_path):
    """60 users with 2-24 items each, many longer than T + 1 = 5."""
    rng = np.random.default_rng(4)
    sequences = {u: [int(i) for i in rng.choice(np.arange(1, 41), size=int(rng.integers(2, 25)), replace=False)]
                 for u in range(1, 61)}
    return write_atomic(tmp_path / "data", "long", sequences, {u: (30.0 + u % 20, "MF"[u % 2]) for u in sequences})


def whole_split_loss(data, sampling, captured=None, **settings):
    """The loss of the whole training split in one batch (no dropout, full softmax), the rows,
    and (with ``captured``) the target of every loss term appended to it."""
    config = Config("UMISA", "long", config_dict=tiny_config(
        data, eval_protocol="user_split", train_sampling=sampling, MAX_ITEM_LIST_LENGTH=5, loss_type="full_softmax",
        train_batch_size=10_000, hidden_dropout_prob=0.0, attn_dropout_prob=0.0, **settings))
    _, train_data, _, _, model = pipeline.build(config)
    batch = next(iter(train_data))
    if captured is not None:  # the loss's arguments: interests, targets, the item vectors
        model.loss_fct.register_forward_pre_hook(lambda _, args: captured.extend(args[1].tolist()))
    torch.manual_seed(0)
    return model.calculate_loss(batch).item(), len(batch)


def test_a_window_stride_of_one_is_the_row_loss_and_any_stride_counts_each_target_once(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    data = long_sequences(tmp_path)
    rows_targets, stride_one, stride_two, no_stride = [], [], [], []
    rows = whole_split_loss(data, "all_positions", rows_targets)
    # stride 1: one row per target, its last position the target with its last T items: the rows' loss
    one = whole_split_loss(data, "windows", stride_one, window_stride=1)
    assert one[1] == rows[1] and one[0] == pytest.approx(rows[0], rel=1e-5)
    # any stride: every training target is one loss term, once; fewer rows as the stride grows
    two = whole_split_loss(data, "windows", stride_two, window_stride=2)
    whole = whole_split_loss(data, "windows", no_stride)
    assert sorted(stride_one) == sorted(stride_two) == sorted(no_stride) == sorted(rows_targets)
    assert rows[1] > two[1] > whole[1]
    # overlapping rows give later positions longer histories: another loss, between nothing and the rows'
    assert two[0] != pytest.approx(whole[0], rel=1e-5)


@pytest.mark.parametrize("stride", [1, 5, None])
def test_popularity_negatives_count_every_target_the_windows_train_on(tiny_data, stride):
    """The popularity sampler's counts (and log-Q's) are of every training target, as the
    rows count them: a window row trains on several, and counting the rows' own targets gave
    most items 0 (never drawn as negatives; a positive of count 0 made log-Q's logit +inf)."""
    from recbole_umi.model.base import training_counts

    def built(**settings):
        config = Config("SASRecMatching", "tiny", config_dict=tiny_config(
            tiny_data, negative_sampler="popularity", eval_protocol="user_split", **settings))
        _, train_data, _, _, model = pipeline.build(config)
        return train_data.dataset, model

    rows_data, rows_model = built()
    by_rows = training_counts(rows_data, rows_model.n_items)
    # the rows: one a target, so their item_counter is the same count
    counter = torch.zeros_like(by_rows)
    for item, count in rows_data.item_counter.items():
        counter[item] = count
    assert torch.equal(by_rows, counter) and by_rows[0] == 0 and by_rows.sum() == len(rows_data)
    windows, model = built(train_sampling="windows", **({} if stride is None else {"window_stride": stride}))
    assert len(windows) < len(rows_data) or stride == 1
    assert torch.equal(training_counts(windows, model.n_items), by_rows)
    torch.testing.assert_close(model.loss_fct.sampler.probabilities, rows_model.loss_fct.sampler.probabilities)


def test_window_stride_is_checked_against_t_and_the_sampling(tiny_data):
    with pytest.raises(SettingsError, match="'window_stride' = 6: must be at most T = MAX_ITEM_LIST_LENGTH \\(5\\)"):
        Config("UMISA", "tiny", config_dict=tiny_config(tiny_data, eval_protocol="user_split", train_sampling="windows",
                                                         MAX_ITEM_LIST_LENGTH=5, window_stride=6))
    with pytest.raises(SettingsError, match="'window_stride' = 2: needs train_sampling: windows"):
        Config("UMISA", "tiny", config_dict=tiny_config(tiny_data, eval_protocol="user_split", window_stride=2))
    with pytest.raises(SettingsError, match="'window_stride' = 0: must be an integer in \\[1, inf\\)"):
        Config("UMISA", "tiny", config_dict=tiny_config(tiny_data, eval_protocol="user_split", train_sampling="windows",
                                                         window_stride=0))


def test_windows_need_a_causal_encoder_and_whole_histories(tiny_data):
    for model, overrides, key in [("UMI", {}, "train_sampling"), ("SASRec", {"train_neg_sample_args": None},
                                                                  "train_sampling"),
                                  ("UMISA", {"history_dropout": 0.5}, "history_dropout"),
                                  ("SASRecMatching", {"max_samples_per_user": 3}, "max_samples_per_user"),
                                  ("UMISA", {"eval_protocol": "recbole"}, "train_sampling"),
                                  ("UMISA", {"routing_regularization": 0.1}, "routing_regularization")]:
        with pytest.raises(SettingsError, match=key):
            Config(model, "tiny", config_dict=tiny_config(tiny_data, **{"eval_protocol": "user_split",
                                                                          "train_sampling": "windows", **overrides}))


def test_a_short_windows_run_trains_and_evaluates(tiny_data):
    from recbole_umi import run

    result = run("UMISA", "tiny", config_dict=tiny_config(tiny_data, eval_protocol="user_split",
                                                          train_sampling="windows", train_neg_sample_args=None))
    assert 0.0 <= result["best_valid_score"] <= 1.0 and result["epochs"] == 2
