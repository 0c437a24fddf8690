"""Data that would silently change an experiment: refused or warned about with numbers when
the dataset is loaded (recbole_umi/data/checks.py, data/protocol.py; docs/reliability.md)."""

from __future__ import annotations

import contextlib
import logging

import numpy as np
import pytest
from recbole.utils import init_seed

from recbole_umi.config import Config
from recbole_umi.data import create_dataset, data_preparation
from recbole_umi.data.checks import DataError
from recbole_umi.data.protocol import split_users
from recbole_umi.settings import SettingsError
from tests.conftest import random_sequences, tiny_config, write_atomic


@contextlib.contextmanager
def warnings_logged():
    """Every WARNING record of the root logger (RecBole's datasets log there) in the block."""
    records: list[str] = []

    class Keep(logging.Handler):
        def emit(self, record):
            records.append(record.getMessage())

    handler = Keep(level=logging.WARNING)
    root = logging.getLogger()
    level = root.level  # a run earlier in this process may have set it to its `state` (ERROR in the tests)
    root.setLevel(logging.WARNING)
    root.addHandler(handler)
    try:
        yield records
    finally:
        root.removeHandler(handler)
        root.setLevel(level)


def load(data_path, name="tiny", **overrides):
    config = Config("UMI", name, config_dict=tiny_config(data_path, eval_protocol="user_split", **overrides))
    init_seed(config["seed"], config["reproducibility"])
    dataset = create_dataset(config)
    return config, dataset, data_preparation(config, dataset)


@pytest.fixture
def folder(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    return tmp_path / "data"


def write(folder, inter_lines, user_lines=None, name="odd"):
    (folder / name).mkdir(parents=True, exist_ok=True)
    (folder / name / f"{name}.inter").write_text("\n".join(inter_lines) + "\n")
    if user_lines is not None:
        (folder / name / f"{name}.user").write_text("\n".join(user_lines) + "\n")
    return folder


def test_a_header_that_names_a_column_twice_is_refused_naming_it(folder):
    lines = ["user_id:token\titem_id:token\ttimestamp:float\titem_id:token", "1\t2\t0\t2"]
    write(folder, lines, ["user_id:token\tage:float\tgender:token", "1\t30\tM"])
    with pytest.raises(DataError, match=r"odd.inter.*header names the column\(s\) 'item_id' twice"):
        load(folder, "odd")


def test_a_column_load_col_asks_for_that_the_file_lacks_is_refused_naming_it(folder):
    """RecBole loads the columns it finds and drops the others without a word: a misspelt
    profile field left the model without it."""
    sequences, profiles = random_sequences(n_users=20)
    write_atomic(folder, "tiny", sequences, profiles)
    with pytest.raises(DataError, match=r"tiny.user: has no column 'gendr' \(did you mean 'gender'\?\), which load_col "
                                        r"asks for; its columns are \['user_id', 'age', 'gender'\]"):
        load(folder, load_col={"inter": ["user_id", "item_id", "timestamp"], "user": ["user_id", "age", "gendr"]},
             profile_fields=["age"])
    with pytest.raises(DataError, match=r"tiny.inter: has no column 'rating', which load_col"):
        load(folder, load_col={"inter": ["user_id", "item_id", "timestamp", "rating"], "user": ["user_id", "age"]},
             profile_fields=["age"])
    with pytest.raises(DataError, match=r"tiny.user: has no column 'gendr' \(did you mean 'gender'\?\), which "
                                        r"profile_fields names \(and so load_col loads\)"):
        load(folder, profile_fields=["age", "gendr"])  # the config adds the profile fields to load_col
    load(folder, load_col={"inter": ["user_id", "item_id", "timestamp"], "user": ["user_id", "age"]},
         profile_fields=["age"])  # control: the columns there


def test_an_inter_file_with_only_its_header_is_refused(folder):
    write(folder, ["user_id:token\titem_id:token\ttimestamp:float"], ["user_id:token\tage:float\tgender:token"])
    with pytest.raises(DataError, match=r"odd.inter.*has no interactions \(only its header\)"):
        load(folder, "odd")


def test_the_user_split_without_a_time_column_is_refused_naming_it(folder):
    lines = ["user_id:token\titem_id:token"] + [f"{u}\t{i}" for u in range(1, 9) for i in range(1, 6)]
    write(folder, lines, ["user_id:token\tage:float\tgender:token"] + [f"{u}\t30\tM" for u in range(1, 9)])
    with pytest.raises(DataError, match=r"odd.inter.*has no time column 'timestamp'"):
        load(folder, "odd", load_col={"inter": ["user_id", "item_id"], "user": ["user_id", "age", "gender"]})


def test_a_sequential_model_under_recboles_protocol_without_the_time_column_loaded_is_refused(folder):
    """RecBole sorts a sequential model's interactions by time: without the column loaded it
    failed with '[timestamp] is not exist in interaction [...]'."""
    sequences, profiles = random_sequences(n_users=20)
    write_atomic(folder, "tiny", sequences, profiles)
    settings = tiny_config(folder, eval_protocol="recbole", profile_fields=["age"],
                           load_col={"inter": ["user_id", "item_id"], "user": ["user_id", "age"]})
    with pytest.raises(DataError, match=r"tiny.inter: has no time column 'timestamp' \(TIME_FIELD\) loaded: RecBole, "
                                        r"for the sequential model UMI, orders .* the file has it, add it to load_col"):
        create_dataset(Config("UMI", "tiny", config_dict=settings))


def test_load_col_star_for_the_user_file_loads_it_whole_with_a_profile(folder):
    """'*' loads every column of a file (RecBole); the profile fields were appended to it as
    if it were a list (['*', 'age', 'gender']), and only those were loaded."""
    sequences, profiles = random_sequences(n_users=20)
    write_atomic(folder, "tiny", sequences, profiles)
    _, dataset, _ = load(folder, load_col={"inter": ["user_id", "item_id", "timestamp"], "user": "*"},
                         profile_fields=["age"])
    assert {"user_id", "age", "gender"} <= set(dataset.user_feat.columns)  # gender: no profile field, loaded


def test_recbole_benchmark_files_are_refused_under_the_user_split(folder):
    sequences, profiles = random_sequences(n_users=20)
    write_atomic(folder, "tiny", sequences, profiles)
    for part in ("train", "valid", "test"):  # RecBole's files split in advance
        (folder / "tiny" / f"tiny.{part}.inter").write_text((folder / "tiny" / "tiny.inter").read_text())
    with pytest.raises(SettingsError, match=r"'benchmark_filename' = \['train', 'valid', 'test'\]: must be empty under "
                                            r"eval_protocol: user_split"):
        load(folder, benchmark_filename=["train", "valid", "test"])


def test_infinite_profile_values_are_refused_naming_field_and_users(folder):
    sequences, profiles = random_sequences(n_users=20)
    profiles[7] = (float("inf"), "M")
    profiles[9] = (float("-inf"), "F")
    write_atomic(folder, "tiny", sequences, profiles)
    with pytest.raises(DataError, match=r"tiny.user.*float column 'age' holds \+-inf for 2 row\(s\) \(the user_ids 7, 9\)"):
        load(folder)


def test_a_user_listed_twice_with_other_values_is_refused_and_a_repeat_warned(folder):
    sequences, profiles = random_sequences(n_users=20)
    write_atomic(folder, "tiny", sequences, profiles)
    user_file = folder / "tiny" / "tiny.user"
    rows = user_file.read_text().splitlines()
    user_file.write_text("\n".join(rows + ["3\t99.0\tF"]) + "\n")  # user 3 again, with another profile
    with pytest.raises(DataError, match=r"tiny.user.*lists 1 user\(s\) more than once with different values \(users 3\)"):
        load(folder)
    user_file.write_text("\n".join(rows + [rows[3], rows[3]]) + "\n")  # the same row again: kept once
    with warnings_logged() as logged:
        load(folder)
    assert any("lists 1 user(s) more than once with the same values" in line for line in logged)


def held_out_histories(dataset, splits) -> dict:
    """``{user: its history's item ids}`` of the validation and test rows."""
    out = {}
    for split in splits:
        rows = split.dataset.__getitem__(np.arange(len(split.dataset)), join=False)
        users = dataset.id2token(dataset.uid_field, rows[dataset.uid_field].numpy())
        for user, history in zip(users, rows[dataset.item_id_list_field]):
            out[user] = [int(i) for i in dataset.id2token(dataset.iid_field, history[history > 0].numpy())]
    return out


def test_timestamp_ties_are_warned_with_their_share_and_item_id_order_does_not_depend_on_the_file(folder):
    sequences, profiles = random_sequences(n_users=30, length=8)
    write_atomic(folder, "tiny", sequences, profiles)
    path = folder / "tiny" / "tiny.inter"
    header, *rows = path.read_text().splitlines()
    tied = [row.rsplit("\t", 1)[0] + "\t0" for row in rows]  # every interaction at time 0
    path.write_text("\n".join([header, *tied]) + "\n")

    def held_out(**overrides):
        _, dataset, (_, valid, test) = load(folder, **overrides)
        return held_out_histories(dataset, (valid, test))

    with warnings_logged() as logged:
        by_file = held_out()
    assert any("240 of 240 interactions (100.0%) share their timestamp" in line for line in logged)
    by_item = held_out(timestamp_ties="item_id")
    rng = np.random.default_rng(0)
    path.write_text("\n".join([header, *[tied[i] for i in rng.permutation(len(tied))]]) + "\n")  # rows shuffled
    assert held_out(timestamp_ties="item_id") == by_item  # the same histories whatever the rows' order
    assert held_out() != by_file  # the file's order decides within a tie: it changed


@pytest.mark.parametrize("normalize_all", [False, True])
def test_unix_seconds_a_few_apart_are_ordered_not_tied(folder, normalize_all):
    """Timestamps near 1e9 s, 5 s apart, the rows written latest first: each user's history is
    in time order, with no tie reported (sorted on RecBole's 32-bit floats, whose
    step there is 64 s, they tied and kept the file's reversed order)."""
    sequences, profiles = random_sequences(n_users=30, length=8)
    write_atomic(folder, "tiny", sequences, profiles)
    path = folder / "tiny" / "tiny.inter"
    header, *_ = path.read_text().splitlines()
    rows = [f"{user}\t{item}\t{1_000_000_000 + 40 * user + 5 * position}"
            for user, items in sequences.items() for position, item in enumerate(items)]
    path.write_text("\n".join([header, *reversed(rows)]) + "\n")
    with warnings_logged() as logged:
        _, dataset, (_, valid, test) = load(folder, normalize_all=normalize_all)
    assert not any("share their timestamp" in line for line in logged)
    histories = held_out_histories(dataset, (valid, test))
    assert histories
    for user, history in histories.items():  # the last T of its first items, in time order
        sequence = [int(item) for item in sequences[int(user)]]
        start = sequence.index(history[0])
        assert history == sequence[start:start + len(history)] and start + len(history) < len(sequence)


def test_removing_duplicates_keeps_ties_in_the_files_order(folder):
    """``rm_dup_inter`` sorts by time first; with pandas' default quicksort the rows of one
    timestamp came out in no defined order, unlike the file's that ``timestamp_ties: file``
    promises. Without any repeat to remove, the histories are those without it."""
    sequences, profiles = random_sequences(n_users=30, length=8)
    write_atomic(folder, "tiny", sequences, profiles)
    path = folder / "tiny" / "tiny.inter"
    header, *_ = path.read_text().splitlines()
    rows = [f"{user}\t{item}\t{position // 3}"  # ties of three within a user, and across users
            for user, items in sequences.items() for position, item in enumerate(items)]
    path.write_text("\n".join([header, *rows]) + "\n")
    _, dataset, (_, valid, test) = load(folder)
    by_file = held_out_histories(dataset, (valid, test))
    _, dataset, (_, valid, test) = load(folder, rm_dup_inter="first")
    assert held_out_histories(dataset, (valid, test)) == by_file


def test_a_dominant_user_is_warned_about_and_max_samples_per_user_caps_it(folder):
    sequences, profiles = random_sequences(n_users=30, n_items=40, length=6)
    rng = np.random.default_rng(1)
    ratios = [0.9, 0.05, 0.05]  # 27 / 2 / 1 users
    tokens = np.array([str(user) for user in sequences])
    heavy = int(tokens[split_users(tokens, ratios, 2022)[0][0]])  # a training user (user_split_seed 2022)
    sequences[heavy] = [int(i) for i in rng.integers(1, 41, size=400)]  # one user with most interactions
    write_atomic(folder, "tiny", sequences, profiles)
    with warnings_logged() as logged:
        _, dataset, (train, _, _) = load(folder, user_split_ratios=ratios, user_split_seed=2022)
    assert any(f"training user {heavy} holds" in line and "of the training samples (399 of" in line for line in logged)
    _, dataset, (capped, _, _) = load(folder, user_split_ratios=ratios, user_split_seed=2022, max_samples_per_user=3)
    users = capped.dataset.inter_feat[dataset.uid_field].numpy()
    counts = np.bincount(users)
    assert counts.max() == 3
    # the heavy user's samples are its last 3 targets
    heavy_id = dataset.token2id(dataset.uid_field, str(heavy))
    targets = capped.dataset.inter_feat[dataset.iid_field].numpy()[users == heavy_id]
    assert list(dataset.id2token(dataset.iid_field, targets).astype(int)) == sequences[heavy][-3:]


def test_a_valid_metric_the_run_does_not_compute_is_refused_before_any_data(folder):
    with pytest.raises(SettingsError, match=r"'valid_metric' = 'NDCG@50': must be one of the metrics the run computes"):
        Config("UMI", "tiny", config_dict=tiny_config(folder, valid_metric="NDCG@50"))
    # a ranking metric without its cut-off: RecBole's results have only recall@5
    with pytest.raises(SettingsError, match=r"'valid_metric' = 'Recall': must be one of .* recall@5"):
        Config("UMI", "tiny", config_dict=tiny_config(folder, valid_metric="Recall"))


def test_more_interests_than_history_items_is_warned(folder):
    with warnings_logged() as logged:
        Config("UMI", "tiny", config_dict=tiny_config(folder, n_interests=20, MAX_ITEM_LIST_LENGTH=3))
    assert any("n_interests = 20 is more than the 3 history items" in line for line in logged)


def test_settings_whose_tensors_cannot_fit_are_refused_before_the_model_is_built(folder, monkeypatch):
    from recbole_umi import pipeline
    from recbole_umi.model.base import MatchingRecommender
    from recbole_umi.quick_start import run

    write_atomic(folder, "tiny", *random_sequences(n_users=30))
    monkeypatch.setattr(MatchingRecommender, "__init__", lambda *a, **k: pytest.fail("built the model"))
    for key, value in (("embedding_size", 2**33), ("n_interests", 10**10)):
        with pytest.raises(SettingsError, match=rf"'{key}' = {value}: needs about .* GiB for .* more than this machine"):
            run("UMI", "tiny", config_dict=tiny_config(folder, eval_protocol="user_split", **{key: value}), saved=False)
    monkeypatch.undo()
    # the arithmetic, against a memory of 1 GiB: 3 x 4 bytes x 41 items x d = 2**24 is 7.7 GiB
    from recbole_umi.config import Config

    config = Config("UMI", "tiny", config_dict=tiny_config(folder, eval_protocol="user_split", embedding_size=2**24,
                                                            loss_type="full_softmax"))
    with pytest.raises(SettingsError, match=r"needs about 7\.7 GiB for the item table .* than this machine's 1\.0 GiB"):
        pipeline.check_tensor_sizes(config, 41, 100, 6, memory=2**30)
    pipeline.check_tensor_sizes(config, 41, 100, 6, memory=2**34)  # fits in 16 GiB
    # the paper's industrial setting: 10240 negatives for 1024 rows, d 64, K 4: 8.0 GiB of
    # candidates drawn per row; shared by the batch, 0.5 GiB (10240 x 64 and 1024 x 4 x 10241)
    industrial = dict(eval_protocol="user_split", n_negatives=10240, train_batch_size=1024, embedding_size=64,
                      n_interests=4, loss_type="sampled_softmax")
    config = Config("UMI", "tiny", config_dict=tiny_config(folder, **industrial))
    with pytest.raises(SettingsError, match=r"'n_negatives' = 10240: needs about 8\.0 GiB for the sampled candidates"):
        pipeline.check_tensor_sizes(config, 3700, 10**6, 6, memory=2**32)
    config = Config("UMI", "tiny", config_dict=tiny_config(folder, shared_negatives=True, **industrial))
    pipeline.check_tensor_sizes(config, 3700, 10**6, 6, memory=2**30)
    with pytest.raises(SettingsError, match=r"needs about 0\.5 GiB for the shared negatives"):
        pipeline.check_tensor_sizes(config, 3700, 10**6, 6, memory=2**28)


def test_header_field_names_in_order_without_a_windows_line_end(tmp_path):
    from recbole_umi.item_file import header_field_names

    path = tmp_path / "x.user"
    path.write_bytes(b"user_id:token\tage:float\tgender:token\r\n1\t20\tM\r\n")
    assert header_field_names(path, "\t") == ["user_id", "age", "gender"]
    # a setting named by the last field of such a header is a known key, not a typo
    from recbole_umi.config import dataset_field_names

    config = {"data_path": str(tmp_path), "dataset": "x", "field_separator": None, "encoding": None}
    assert "gender" in dataset_field_names(config)
