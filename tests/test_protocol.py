"""The paper's user-split protocol, on synthetic data whose right answer is known."""

import numpy as np
import pytest
import torch
from recbole.model.abstract_recommender import SequentialRecommender
from recbole.trainer import Trainer
from recbole.utils import init_seed

from recbole_umi.config import Config
from recbole_umi.data import ProtocolConfigError, create_dataset, data_preparation
from recbole_umi.metrics import paper_metric_names
from recbole_umi.settings import SettingsError
from recbole_umi.data.protocol import history_cut
from recbole_umi.quick_start import run
from tests.conftest import SHARED_DATA, tiny_config, write_atomic

LENGTHS = [10, 11, 20, 25]  # -> 1, 2, 2, 3 targets at a 90% history share
N_USERS = 60


def known_sequences(seed=0):
    rng = np.random.default_rng(seed)
    sequences = {}
    for user in range(1, N_USERS + 1):
        length = LENGTHS[user % len(LENGTHS)]
        sequences[user] = [int(i) for i in rng.choice(np.arange(1, 101), size=length, replace=False)]
    profiles = {u: (30.0, "M") for u in sequences}
    return sequences, profiles


@pytest.fixture
def protocol_data(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    sequences, profiles = known_sequences()
    return write_atomic(tmp_path / "data", "known", sequences, profiles), sequences


def prepare(data_path, model="UMI", **overrides):
    settings = tiny_config(data_path, **{"eval_protocol": "user_split", **overrides})
    config = Config(model, "known", config_dict=settings)
    init_seed(config["seed"], config["reproducibility"])
    dataset = create_dataset(config)
    return config, dataset, data_preparation(config, dataset)


def all_rows(split):
    """Every row of a split as a batch gathers it: with its history lists."""
    return split.__getitem__(np.arange(len(split)), join=False)


def raw_user(dataset, split, row):
    """Original user id and the (history, targets) of an evaluation row, in original item ids."""
    rows = all_rows(split)
    user = dataset.id2token(dataset.uid_field, rows[dataset.uid_field][row].item())
    length = rows[dataset.item_list_length_field][row].item()
    history = rows[dataset.item_id_list_field][row][:length]
    offsets = split.target_offsets
    targets = split.target_items[offsets[row] : offsets[row + 1]]
    to_raw = lambda ids: [int(dataset.id2token(dataset.iid_field, i)) for i in ids.tolist()]  # noqa: E731
    return int(user), to_raw(history), to_raw(targets)


def test_history_cut_keeps_one_item_each_side():
    assert history_cut(np.array([2, 10, 11, 20, 25]), 0.9).tolist() == [1, 9, 9, 18, 22]
    assert history_cut(np.array([2, 3]), 0.1).tolist() == [1, 1]
    assert history_cut(np.array([90, 10]), 0.7).tolist() == [63, 7]  # 0.7 * 90 = 62.99... in floats


def test_split_is_by_user_and_cut_at_90_percent(protocol_data):
    data_path, sequences = protocol_data
    config, dataset, (train, valid, test) = prepare(data_path)
    t = config["MAX_ITEM_LIST_LENGTH"]
    uid = dataset.uid_field
    parts = [set(split.dataset.inter_feat[uid].tolist()) for split in (train, valid, test)]
    assert not (parts[0] & parts[1] or parts[0] & parts[2] or parts[1] & parts[2])
    assert sum(map(len, parts)) == N_USERS
    assert [len(p) for p in parts] == [48, 6, 6]

    # every target position of a training user is a training sample
    train_users = [int(dataset.id2token(uid, u)) for u in parts[0]]
    assert len(train.dataset) == sum(len(sequences[u]) - 1 for u in train_users)

    for split in (valid.dataset, test.dataset):
        assert len(split) == len(set(split.inter_feat[uid].tolist()))  # ONE row per user
        for row in range(len(split)):
            user, history, targets = raw_user(dataset, split, row)
            items = sequences[user]
            cut = int(np.floor(0.9 * len(items)))
            assert targets == items[cut:]
            assert history == items[max(0, cut - t) : cut]  # the last T items of the first 90%


def test_training_samples_hold_the_preceding_items(protocol_data):
    data_path, sequences = protocol_data
    config, dataset, (train, _, _) = prepare(data_path)
    t = config["MAX_ITEM_LIST_LENGTH"]
    inter = all_rows(train.dataset)
    for row in range(0, len(inter), 37):
        user = int(dataset.id2token(dataset.uid_field, inter[dataset.uid_field][row].item()))
        target = int(dataset.id2token(dataset.iid_field, inter[dataset.iid_field][row].item()))
        length = inter[dataset.item_list_length_field][row].item()
        history = [int(dataset.id2token(dataset.iid_field, i)) for i in inter[dataset.item_id_list_field][row][:length].tolist()]
        position = sequences[user].index(target)
        assert history == sequences[user][max(0, position - t) : position]
        assert inter[dataset.item_id_list_field][row][length:].eq(0).all()


def test_split_depends_only_on_the_split_seed(protocol_data):
    data_path, _ = protocol_data

    def test_users(**overrides):
        _, dataset, (_, _, test) = prepare(data_path, **overrides)
        return sorted(dataset.id2token(dataset.uid_field, test.dataset.inter_feat[dataset.uid_field]).tolist())

    assert test_users(seed=1) == test_users(seed=2, model="ComiRecSA")
    assert test_users(user_split_seed=1) != test_users(user_split_seed=2)


class TargetOracle(SequentialRecommender):
    """Scores each held-out user's targets 1 and everything else 0."""

    def __init__(self, config, dataset, targets_by_user):
        super().__init__(config, dataset)
        self.targets_by_user = targets_by_user
        self.dummy = torch.nn.Parameter(torch.zeros(1))

    def full_sort_predict(self, interaction):
        users = interaction[self.USER_ID].tolist()
        scores = torch.zeros(len(users), self.n_items)
        for row, user in enumerate(users):
            scores[row, self.targets_by_user[user]] = 1.0
        return scores


def test_oracle_scores_hitrate_one_and_exact_precision(protocol_data):
    data_path, sequences = protocol_data
    config, dataset, (_, _, test) = prepare(data_path)
    split = test.dataset
    targets_by_user, target_counts = {}, []
    for row in range(len(split)):
        offsets = split.target_offsets
        targets = split.target_items[offsets[row] : offsets[row + 1]]
        targets_by_user[split.inter_feat[dataset.uid_field][row].item()] = targets
        target_counts.append(len(targets))
    model = TargetOracle(config, split, targets_by_user)
    result = Trainer(config, model).evaluate(test, load_best_model=False)
    assert result["recall@5"] == 1.0
    assert result["precision@5"] == pytest.approx(round(np.mean(np.array(target_counts) / 5), 4))
    assert set(target_counts) > {1}  # the data really has users with several targets


def test_paper_metric_names():
    result = {"recall@50": 0.3, "precision@10": 0.05, "hit@10": 0.9, "recall@10": 0.1, "ndcg@10": 0.2}
    assert paper_metric_names(result) == {"HitRate@10": 0.1, "HitRate@50": 0.3, "Precision@10": 0.05}


def test_unknown_protocol_is_refused(protocol_data):
    data_path, _ = protocol_data
    with pytest.raises(SettingsError, match="'eval_protocol' = 'loo': must be one of 'recbole', 'user_split'"):
        prepare(data_path, eval_protocol="loo")


def test_non_sequential_model_is_refused(protocol_data):
    data_path, _ = protocol_data
    with pytest.raises(ProtocolConfigError, match="sequential model"):
        prepare(data_path, model="BPR")


@pytest.mark.parametrize("model", ["GRU4Rec", "SINE"])
def test_other_recbole_sequential_models_run_under_the_protocol(protocol_data, model):
    """Smoke: they train and are evaluated on the protocol's rows. Their scores are checked
    nowhere; the protocol's metrics are checked with the oracle above, and the plugin's
    models and SASRec against known answers in test_known_answers.py."""
    data_path, _ = protocol_data
    settings = tiny_config(data_path, eval_protocol="user_split", epochs=1, train_neg_sample_args=None)
    result = run(model, "known", config_dict=settings, saved=False)
    assert set(result["test_result"]) == {"recall@5", "precision@5"}


ML1M = SHARED_DATA / "ml-1m" / "ml-1m.inter"


@pytest.mark.slow
@pytest.mark.skipif(not ML1M.exists(), reason="../shared/data/ml-1m is not present")
def test_ml1m_matches_paper_statistics_and_split(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    config = Config("UMI", "ml-1m", config_dict={"data_path": str(SHARED_DATA), "state": "ERROR"})
    dataset = create_dataset(config)
    assert (dataset.user_num - 1, dataset.item_num - 1, dataset.inter_num) == (6040, 3260, 998539)
    _, _, test = data_preparation(config, dataset)
    split = test.dataset
    assert 600 <= len(split) <= 608
    lengths = all_rows(split)[dataset.item_list_length_field]
    counts = split.target_offsets[1:] - split.target_offsets[:-1]
    assert lengths.min().item() >= 1 and counts.min().item() >= 1
    assert lengths.max().item() == 10  # T = 10


def test_concat_ranges():
    from recbole_umi.data.protocol import concat_ranges

    assert concat_ranges(np.array([0, 5, 9]), np.array([2, 5, 12])).tolist() == [0, 1, 9, 10, 11]
    assert concat_ranges(np.array([], dtype=np.int64), np.array([], dtype=np.int64)).tolist() == []


def test_batch_rows_equal_recboles_indexing(protocol_data):
    """The tensor-indexed __getitem__ gives what RecBole's Dataset.__getitem__ gives."""
    from recbole.data.dataset import Dataset

    data_path, _ = protocol_data
    _, dataset, (train, _, _) = prepare(data_path)
    split = train.dataset
    index = np.array([5, 0, 17, 5, len(split) - 1])
    ours, recboles = split[index], Dataset.__getitem__(split, index)
    # RecBole's rows hold the internal history columns; ours hold the history lists instead
    internal = {"_history_target", "_history_user_start"}
    lists = {dataset.item_id_list_field, dataset.item_list_length_field}
    assert sorted(ours.interaction) == sorted((set(recboles.interaction) - internal) | lists)
    assert "gender" in ours.interaction  # the user features are joined
    for field in set(recboles.interaction) - internal:
        assert torch.equal(ours[field], recboles[field]), field
    assert sorted(split.__getitem__(index, join=False).interaction) == sorted(
        (set(split.inter_feat.interaction) - internal) | lists)


def test_per_user_test_metrics_average_to_recboles(protocol_data):
    data_path, sequences = protocol_data
    settings = tiny_config(data_path, eval_protocol="user_split", epochs=1, train_neg_sample_args=None,
                           metrics=["Recall", "Precision", "NDCG"], topk=[3, 5])
    result = run("UMI", "known", config_dict=settings, saved=False)
    per_user = result["test_per_user"]
    _, dataset, (_, _, test) = prepare(data_path)
    expected_users = dataset.id2token(dataset.uid_field, test.dataset.inter_feat[dataset.uid_field]).tolist()
    assert per_user["user"] == [str(u) for u in expected_users] and len(expected_users) == 6
    assert set(per_user) == {"user", "history_length", "recall@3", "recall@5", "precision@3", "precision@5", "ndcg@3",
                             "ndcg@5"}
    # each user's history: the first 90% of its sequence (before the model's last-T cut)
    assert per_user["history_length"] == [int(np.floor(0.9 * len(sequences[int(u)]))) for u in per_user["user"]]
    for metric, value in result["test_result"].items():
        assert np.mean(per_user[metric]) == pytest.approx(value, abs=1e-4)  # RecBole rounds to 4 places
    # precision@5 = hits / 5 and recall@5 = hits / |targets| for the same hits
    targets = {str(u): len(items) - int(np.floor(0.9 * len(items))) for u, items in sequences.items()}
    for user, recall, precision in zip(per_user["user"], per_user["recall@5"], per_user["precision@5"]):
        assert recall * targets[user] == pytest.approx(precision * 5)


def test_one_per_user_draws_one_fresh_sample_per_training_user_each_epoch(protocol_data):
    data_path, sequences = protocol_data
    config, dataset, (train, _, _) = prepare(data_path, train_sampling="one_per_user", train_batch_size=1000)
    t = config["MAX_ITEM_LIST_LENGTH"]
    uid, iid = dataset.uid_field, dataset.iid_field
    epochs = [next(iter(train)) for _ in range(3)]  # one batch holds the whole epoch here
    n_train_users = 48
    for batch in epochs:
        users = batch[uid].tolist()
        assert len(users) == len(set(users)) == n_train_users  # every training user once
        for row in range(len(batch)):
            user = int(dataset.id2token(uid, batch[uid][row].item()))
            target = int(dataset.id2token(iid, batch[iid][row].item()))
            length = batch[dataset.item_list_length_field][row].item()
            history = [int(dataset.id2token(iid, i)) for i in batch[dataset.item_id_list_field][row][:length].tolist()]
            position = sequences[user].index(target)
            assert position >= 1 and history == sequences[user][max(0, position - t) : position]

    def targets(batch):
        return dict(zip(batch[uid].tolist(), batch[iid].tolist()))

    # fresh draws: the epochs' targets differ, and over them a user gets different targets
    assert targets(epochs[0]) != targets(epochs[1])
    # and the same seed gives the same draws
    _, _, (again, _, _) = prepare(data_path, train_sampling="one_per_user", train_batch_size=1000)
    assert targets(next(iter(again))) == targets(epochs[0])


def test_one_per_user_needs_the_user_split(protocol_data):
    data_path, _ = protocol_data
    settings = tiny_config(data_path, eval_protocol="recbole", train_sampling="one_per_user")
    config = Config("UMI", "known", config_dict=settings)
    with pytest.raises(ProtocolConfigError, match="'train_sampling' = 'one_per_user': needs eval_protocol: user_split"):
        data_preparation(config, create_dataset(config))


def test_one_per_user_with_one_interaction_users(tmp_path, monkeypatch):
    """Training users with one interaction have no sample: every drawn row must still be the
    drawn user's own (a zero-sample user once shifted the next user's rows, or overran)."""
    monkeypatch.chdir(tmp_path)
    rng = np.random.default_rng(3)
    sequences = {u: [int(i) for i in rng.choice(np.arange(1, 41), size=1 if u % 4 == 0 else 8, replace=False)]
                 for u in range(1, 81)}
    data = write_atomic(tmp_path / "data", "ones", sequences, {u: (30.0, "M") for u in sequences})
    settings = tiny_config(data, eval_protocol="user_split", train_sampling="one_per_user", train_batch_size=1000)
    config = Config("UMI", "ones", config_dict=settings)
    init_seed(config["seed"], config["reproducibility"])
    dataset = create_dataset(config)
    train, _, _ = data_preparation(config, dataset)
    users_with_samples = len(set(train.dataset.inter_feat[dataset.uid_field].tolist()))
    for _ in range(5):
        batch = next(iter(train))
        assert len(batch) == users_with_samples
        for row in range(len(batch)):
            user = int(dataset.id2token(dataset.uid_field, batch[dataset.uid_field][row].item()))
            target = int(dataset.id2token(dataset.iid_field, batch[dataset.iid_field][row].item()))
            assert target in sequences[user][1:]


def test_profile_noise_changes_the_stated_share_and_nothing_else(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    sequences, profiles = random_sequences_with_profiles()
    data = write_atomic(tmp_path / "data", "noisy", sequences, profiles)

    def users(noise, seed=2022):
        settings = tiny_config(data, eval_protocol="user_split", profile_noise=noise, profile_noise_seed=seed)
        return create_dataset(Config("UMI", "noisy", config_dict=settings)).user_feat.copy()

    clean, noisy = users(0.0), users(0.25)
    n_users = len(clean) - 1  # row 0: the padding user
    assert n_users == 60
    for field in ("age", "gender"):
        changed = (clean[field] != noisy[field]).to_numpy()
        assert changed.sum() == 15 and not changed[0]  # round(0.25 * 60), never the padding row
        assert set(noisy[field][1:]) <= set(clean[field][1:])  # valid values only
    assert (clean["user_id"] == noisy["user_id"]).all()
    assert noisy.equals(users(0.25))  # seeded
    assert not noisy.equals(users(0.25, seed=7))


def random_sequences_with_profiles():
    """60 users; age a float of 8 values, gender a token of 3."""
    rng = np.random.default_rng(11)
    sequences = {u: [int(i) for i in rng.choice(np.arange(1, 41), size=12, replace=False)] for u in range(1, 61)}
    profiles = {u: (float(20 + 5 * rng.integers(8)), "MFX"[int(rng.integers(3))]) for u in sequences}
    return sequences, profiles
