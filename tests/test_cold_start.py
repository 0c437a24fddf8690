"""The cold-start protocol (eval_history_items), history dropout, seen items left out, and
the history curve: on known sequences, checked by hand."""

import numpy as np
import pytest
import torch

from recbole_umi.config import Config
from recbole_umi.data import ProtocolConfigError
from recbole_umi.quick_start import run
from recbole_umi.settings import SettingsError
from tests.conftest import tiny_config
from tests.test_protocol import N_USERS, all_rows, prepare, protocol_data, raw_user  # noqa: F401 (a fixture)


def test_first_k_items_are_the_history_and_every_later_item_a_target(protocol_data):
    data_path, sequences = protocol_data
    for k in (0, 1, 3):
        config, dataset, (train, valid, test) = prepare(data_path, eval_history_items=k)
        for split in (valid.dataset, test.dataset):
            assert split.history_lengths.tolist() == [k] * len(split)
            for row in range(len(split)):
                user, history, targets = raw_user(dataset, split, row)
                # k = 0: no history (the profile alone); k = 1: the first item; the rest are targets
                assert history == sequences[user][:k] and targets == sequences[user][k:]
    # the training samples do not change with k
    _, _, (train_0, _, _) = prepare(data_path, eval_history_items=0)
    _, _, (train_paper, _, _) = prepare(data_path)
    assert len(train_0.dataset) == len(train_paper.dataset)


def test_k_beyond_the_history_keeps_the_last_T_of_the_first_k_and_drops_users_without_targets(protocol_data):
    data_path, sequences = protocol_data
    config, dataset, (_, valid, test) = prepare(data_path, eval_history_items=10, MAX_ITEM_LIST_LENGTH=4)
    _, _, (_, all_valid, all_test) = prepare(data_path)
    # users of length 10 have no item after their first 10: left out (the others stay)
    for split, every in ((valid.dataset, all_valid.dataset), (test.dataset, all_test.dataset)):
        held_out = [raw_user(dataset, every, row)[0] for row in range(len(every))]
        assert len(split) == sum(len(sequences[user]) > 10 for user in held_out) < len(every)
    for split in (valid.dataset, test.dataset):
        for row in range(len(split)):
            user, history, targets = raw_user(dataset, split, row)
            assert len(sequences[user]) > 10
            assert history == sequences[user][6:10] and targets == sequences[user][10:]


def test_history_left_out_of_the_ranking(protocol_data):
    data_path, sequences = protocol_data
    config, dataset, (_, valid, _) = prepare(data_path, exclude_history=True)
    interaction, history_index, positive_u, positive_i = valid.collate_fn(np.arange(len(valid.dataset)))
    rows, items = history_index
    for row in range(len(valid.dataset)):
        user, history, targets = raw_user(dataset, valid.dataset, row)
        length = len(sequences[user])
        cut = max(1, min(length - 1, int(np.floor(0.9 * length + 1e-9))))
        left_out = [int(dataset.id2token(dataset.iid_field, i)) for i in items[rows == row].tolist()]
        assert left_out == sequences[user][:cut]  # every history item, not only the last T
    _, _, (_, plain, _) = prepare(data_path)
    assert plain.collate_fn(np.arange(len(plain.dataset)))[1] is None  # the paper's protocol ranks them


def test_history_dropout_shortens_a_share_of_the_training_histories_to_the_users_first_items(protocol_data):
    data_path, sequences = protocol_data
    config, dataset, (train, _, _) = prepare(data_path, history_dropout=0.5)
    torch.manual_seed(0)
    rows = all_rows(train.dataset)
    lengths = rows[dataset.item_list_length_field]
    _, _, (plain, _, _) = prepare(data_path)
    plain_rows = all_rows(plain.dataset)
    full = plain_rows[dataset.item_list_length_field]
    changed = lengths != full
    assert 0.3 < changed.float().mean().item() < 0.6  # about half were drawn (some draws keep the length)
    items = rows[dataset.item_id_list_field]
    for row in torch.nonzero(changed).flatten()[:50].tolist():
        user = int(dataset.id2token(dataset.uid_field, rows[dataset.uid_field][row].item()))
        kept = [int(dataset.id2token(dataset.iid_field, i)) for i in items[row][: lengths[row]].tolist()]
        assert kept == sequences[user][: lengths[row]]  # a prefix of the user's sequence, possibly empty
        assert (items[row][lengths[row]:] == 0).all()


def test_settings_of_the_cold_start_protocol_are_checked(protocol_data):
    data_path, _ = protocol_data
    with pytest.raises(SettingsError, match="'eval_history_items' = -1"):
        Config("UMI", "known", config_dict=tiny_config(data_path, eval_protocol="user_split", eval_history_items=-1))
    with pytest.raises(SettingsError, match="'history_dropout' = 1.0"):
        Config("UMI", "known", config_dict=tiny_config(data_path, eval_protocol="user_split", history_dropout=1.0))
    # no history and no profile: nothing to go on
    with pytest.raises(SettingsError, match="ComiRecSA: it reads the history only"):
        Config("ComiRecSA", "known", config_dict=tiny_config(data_path, eval_protocol="user_split", eval_history_items=0))
    for model in ("ComiRecSA", "SASRecMatching"):  # SASRec's encoder fails on an empty history mid-training
        with pytest.raises(SettingsError, match=f"'history_dropout' = 0.5: must be 0 with {model}"):
            Config(model, "known", config_dict=tiny_config(data_path, eval_protocol="user_split", history_dropout=0.5))
    Config("YoutubeDNN", "known", config_dict=tiny_config(data_path, eval_protocol="user_split", history_dropout=0.5))
    with pytest.raises(ProtocolConfigError, match="'exclude_history' = True: needs eval_protocol: user_split"):
        prepare(data_path, eval_protocol="recbole", exclude_history=True)


def test_the_history_curve_evaluates_the_tested_model_at_each_k(protocol_data):
    data_path, sequences = protocol_data
    settings = tiny_config(data_path, eval_protocol="user_split", epochs=1, eval_history_curve=[0, 1])
    result = run("UMI", "known", config_dict=settings, saved=False)
    curve = result["history_curve"]
    assert list(curve) == ["0", "1"]
    for k, point in curve.items():
        assert point["test_per_user"]["history_length"] == [int(k)] * len(point["test_per_user"]["user"])
        assert point["test"]["recall@5"] == pytest.approx(np.mean(point["test_per_user"]["recall@5"]), abs=1e-4)
    # the run's own test (the paper's cut) is unchanged by the curve
    assert result["test_per_user"]["history_length"] != [0] * len(result["test_per_user"]["user"])


@pytest.mark.parametrize("model", ["UMI", "MIND", "YoutubeDNN", "ProfileDSSM"])
def test_profile_models_answer_from_the_profile_alone(tiny_data, model):
    from recbole.utils import init_seed

    from recbole_umi.data import create_dataset, data_preparation
    from recbole_umi.registry import get_model

    config = Config(model, "tiny", config_dict=tiny_config(tiny_data, eval_protocol="user_split", eval_history_items=0))
    init_seed(config["seed"], config["reproducibility"])
    train, valid, _ = data_preparation(config, create_dataset(config))
    model_ = get_model(model)(config, train.dataset).eval()
    interaction = valid.collate_fn(np.arange(len(valid.dataset)))[0]
    assert (interaction[model_.ITEM_SEQ] == 0).all()  # no history at all
    with torch.no_grad():
        interests = model_(interaction)
        scores = model_.full_sort_predict(interaction)
    assert torch.isfinite(interests).all() and torch.isfinite(scores[:, 1:]).all()
    profiles = torch.stack([interaction[field].float().reshape(-1) for field in config["profile_fields"]], dim=1)
    same_profile = (profiles.unsqueeze(0) == profiles.unsqueeze(1)).all(dim=-1)
    same_interests = torch.isclose(interests.unsqueeze(0), interests.unsqueeze(1)).flatten(2).all(dim=-1)
    assert torch.equal(same_profile, same_interests)  # the profile, and nothing else, decides


def test_popularity_ranks_every_user_by_training_counts_at_any_k(tiny_data):
    from collections import Counter

    from recbole.utils import init_seed

    from recbole_umi.data import create_dataset, data_preparation
    from recbole_umi.registry import get_model

    config = Config("Popularity", "tiny", config_dict=tiny_config(tiny_data, eval_protocol="user_split",
                                                                     eval_history_items=0))
    init_seed(config["seed"], config["reproducibility"])
    train, valid, _ = data_preparation(config, create_dataset(config))
    model = get_model("Popularity")(config, train.dataset).eval()
    # by hand: the training samples' target items, counted
    counts = Counter(train.dataset.inter_feat[train.dataset.iid_field].tolist())
    interaction = valid.collate_fn(np.arange(len(valid.dataset)))[0]
    with torch.no_grad():
        scores = model.full_sort_predict(interaction)
    # by hand: by count, the lower id first among equal counts, the padding item last
    ranked = sorted(range(1, model.n_items), key=lambda item: (-counts.get(item, 0), item))
    assert scores[0, 1:].argsort(descending=True).add(1).tolist() == ranked
    assert (scores == scores[0]).all() and scores[0, 0] == scores.min()  # every user alike
    assert len(set(scores[0].tolist())) == model.n_items  # no ties
    assert model.calculate_loss(interaction).item() == 0.0


def test_also_exclude_history_tests_the_same_model_without_the_seen_items(protocol_data):
    data_path, _ = protocol_data
    settings = tiny_config(data_path, eval_protocol="user_split", epochs=1, also_exclude_history=True)
    result = run("UMI", "known", config_dict=settings, saved=False)
    unseen = result["unseen"]
    assert unseen["test_per_user"]["user"] == result["test_per_user"]["user"]
    # the same model and users: leaving the seen items out can only raise each user's hits
    # (a history item in the top N makes room for a target when it goes)
    for seen, not_seen in zip(result["test_per_user"]["recall@5"], unseen["test_per_user"]["recall@5"]):
        assert not_seen >= seen
    assert unseen["test"]["recall@5"] == pytest.approx(np.mean(unseen["test_per_user"]["recall@5"]), abs=1e-4)
