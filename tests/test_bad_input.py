"""Bad input, one test per case of docs/reliability.md: each input either works as
documented or stops, before anything trains, with an error naming the key, the value and
what is allowed."""

from __future__ import annotations

import contextlib
import io
import logging
import re

import numpy as np
import pytest
import torch
import yaml

from recbole_umi.experiments import compare as compare_module
from recbole_umi.experiments.tables import summarise
from recbole_umi.experiments.variants import VariantError, resolve_variant
from recbole_umi.config import Config, known_keys, resource_dir
from recbole_umi.data import ProtocolConfigError, create_dataset, data_preparation
from recbole_umi.data.protocol import split_users
from recbole_umi.model import MatchingRecommender, ProfileConfigError
from recbole_umi.quick_start import main
from recbole_umi.registry import PLUGIN_MODELS, get_model
from recbole_umi.run_log import close_run_logger
from recbole_umi.settings import SETTINGS, SettingsError, UnknownSettingError
from tests.conftest import random_sequences, tiny_config, write_atomic, write_config

N_USERS = 60


@contextlib.contextmanager
def raises_setting(error, key, value, requirement):
    """``pytest.raises(error)`` for a SettingsError that names ``key``, ``value`` and a
    requirement matching the regular expression ``requirement``."""
    with pytest.raises(error) as info:
        yield info
    raised = info.value
    assert isinstance(raised, SettingsError)
    assert (raised.key, raised.value) == (key, value), str(raised)
    assert re.search(requirement, raised.requirement), raised.requirement
    assert str(raised).startswith(f"setting {key!r} = ")


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    """The tiny datasets of this module, written once: ``tiny`` (60 users, 40 items, age and
    gender), and variants written by the tests that need them under the same folder."""
    folder = tmp_path_factory.mktemp("bad_input")
    sequences, profiles = random_sequences(n_users=N_USERS)
    write_atomic(folder / "data", "tiny", sequences, profiles)
    return folder / "data", sequences, profiles


@pytest.fixture
def in_tmp(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # RecBole writes log/ and saved/ into the working directory
    return tmp_path


def prepared(data_path, dataset="tiny", model="UMI", **overrides):
    """Config, dataset and loaders as ``run`` makes them, under the user split."""
    config = Config(model, dataset, config_dict=tiny_config(data_path, **{"eval_protocol": "user_split", **overrides}))
    data = create_dataset(config)
    return config, data, data_preparation(config, data)


def built_model(data_path, dataset, model="UMI"):
    """The config, the training split and a model built on it, as ``run`` builds them."""
    config, _, (train, _, _) = prepared(data_path, dataset, model)
    return config, train.dataset, get_model(model)(config, train.dataset)


# -- refused when the config is built, before any data is loaded -----------------------------


@pytest.mark.parametrize("model", ["UMI", "YoutubeDNN", "ProfileDSSM", "SASRec"])
def test_history_length_zero_is_refused_for_every_model(tmp_path, model):
    with raises_setting(SettingsError, "MAX_ITEM_LIST_LENGTH", 0, r"must be an integer in \[1, inf\)"):
        Config(model, "nowhere", config_dict={"data_path": str(tmp_path), "eval_protocol": "user_split",
                                              "train_neg_sample_args": None, "MAX_ITEM_LIST_LENGTH": 0})


@pytest.mark.parametrize(
    "argument, key, value, suggestion",
    [
        ("--n_interest=8", "n_interest", 8, "'n_interests'"),
        ("--harder_negative=False", "harder_negative", False, "'harder_negatives'"),
        ("--max_item_list_length=5", "max_item_list_length", 5, "'MAX_ITEM_LIST_LENGTH'"),  # RecBole's own key
        ("--learnig_rate=0.1", "learnig_rate", 0.1, "'learning_rate'"),
    ],
)
def test_misspelt_key_is_refused_with_did_you_mean(tmp_path, argument, key, value, suggestion):
    with raises_setting(UnknownSettingError, key, value, f"did you mean {suggestion}"):
        Config("UMI", "nowhere", config_dict={"data_path": str(tmp_path)}, cmd_args=[argument])


@pytest.mark.parametrize("given, key, requirement", [
    # RecBole fills in the default split and carries 'spilt' unread: 80/10/10 instead of 90/5/5
    ({"eval_args": {"spilt": {"RS": [0.9, 0.05, 0.05]}, "order": "TO"}}, "eval_args",
     r"has no key 'spilt'.*did you mean 'split'"),
    ({"eval_args": {"split": {"RS": [0.8, 0.1, 0.1]}, "mode": {"vaild": "uni100"}}}, "eval_args.mode",
     r"has no key 'vaild': RecBole reads valid, test there.*did you mean 'valid'"),
    ({"eval_args": {"split": {"rs": [0.8, 0.1, 0.1]}}}, "eval_args.split", r"has no key 'rs'"),
    ({"train_neg_sample_args": {"distribution": "popularity", "sample_nums": 5}}, "train_neg_sample_args",
     r"has no key 'sample_nums'.*did you mean 'sample_num'"),
])
def test_unknown_keys_inside_recboles_dict_settings_are_refused(tmp_path, given, key, requirement):
    outer = key.split(".")[0]
    with raises_setting(UnknownSettingError, key, given[outer], requirement):
        Config("BPR", "nowhere", config_dict={"data_path": str(tmp_path), **given})
    # control: the same settings with RecBole's keys pass this check
    good = {"eval_args": {"split": {"TS": [0.9, 0.05, 0.05]}, "order": "TO", "mode": {"valid": "full", "test": "full"}},
            "train_neg_sample_args": {"distribution": "popularity", "sample_num": 5}}
    config = Config("BPR", "nowhere", config_dict={"data_path": str(tmp_path), **{outer: good[outer]}})
    assert all(config[outer][name] == value for name, value in good[outer].items())


def test_a_checkpoints_saved_dict_settings_are_not_checked_for_keys(tmp_path):
    """RecBole kept any key of eval_args in the saved config, read or not: a checkpoint
    saved with one still loads; the keys the user gives now are checked."""
    from recbole_umi.checkpoints.loading import _CheckpointConfig

    saved = {"eval_args": {"split": {"RS": [0.8, 0.1, 0.1]}, "order": "RO", "mode": "full", "spilt": 1}}
    config = _CheckpointConfig(saved, "BPR", "nowhere", config_dict={"data_path": str(tmp_path)})
    assert config["eval_args"]["split"] == {"RS": [0.8, 0.1, 0.1]}
    with raises_setting(UnknownSettingError, "eval_args.mode", {"mode": {"vaild": "full"}}, "has no key 'vaild'"):
        _CheckpointConfig(saved, "BPR", "nowhere", config_dict={"data_path": str(tmp_path),
                                                                "eval_args": {"mode": {"vaild": "full"}}})


def test_unknown_key_close_to_nothing_and_dataset_fields_are_allowed(data, in_tmp):
    data_path, _, _ = data
    # RecBole configs carry keys of their own: one close to no known key passes through
    config = Config("UMI", "tiny", config_dict={"data_path": str(data_path), "my_experiment_note": "baseline",
                                                "profile_fields": ["age", "gender"]})
    assert config["my_experiment_note"] == "baseline"
    # the dataset's field names are known keys ('gender' is one; 'genders' is close to it)
    assert {"user_id", "item_id", "timestamp", "age", "gender"} <= known_keys(config)
    with raises_setting(UnknownSettingError, "genders", 1, "did you mean 'gender'"):
        Config("UMI", "tiny", config_dict={"data_path": str(data_path), "genders": 1})


def test_a_setting_the_model_is_built_from_is_required_before_any_data_loads(tmp_path):
    """A profile model without profile_fields failed when the model was built, after the
    data had loaded (in compare: after '[1/N] UMI seed 1: training ...'); now when the
    config is (the dataset 'nowhere' does not exist)."""
    with raises_setting(SettingsError, "profile_fields", None, r"must be a list of strings \(set it in a config file"):
        Config("UMI", "nowhere", config_dict={"data_path": str(tmp_path)})
    Config("ComiRecSA", "nowhere", config_dict={"data_path": str(tmp_path)})  # reads no profile
    # UMISA reads one where it steers or refines; with neither it needs none, and reads the history only
    with raises_setting(SettingsError, "profile_fields", None, r"must be a list of strings"):
        Config("UMISA", "nowhere", config_dict={"data_path": str(tmp_path), "refine_interests": False})
    profile_free = {"data_path": str(tmp_path), "refine_interests": False, "profile_steering": "none"}
    Config("UMISA", "nowhere", config_dict=profile_free)
    with raises_setting(SettingsError, "history_dropout", 0.5, "must be 0 with UMISA: it reads the history only"):
        Config("UMISA", "nowhere", config_dict={**profile_free, "eval_protocol": "user_split", "history_dropout": 0.5})
    # steering without refinement reads a profile but has no interests without a history: all scores 0
    steered = {"data_path": str(tmp_path), "refine_interests": False, "profile_fields": ["age"],
               "eval_protocol": "user_split"}
    with raises_setting(SettingsError, "eval_history_items", 0, "its profile only weighs the history"):
        Config("UMISA", "nowhere", config_dict={**steered, "eval_history_items": 0})
    Config("UMISA", "nowhere", config_dict={**steered, "refine_interests": True, "eval_history_items": 0})
    # settings that do not fit together fail here too, not when the model is built
    with raises_setting(SettingsError, "use_ir", False, "must be True"):
        Config("UMISA", "nowhere", config_dict={**steered, "use_ir": False})
    with raises_setting(SettingsError, "profile_steering", "queries", "must be 'none'"):
        Config("UMISA", "nowhere", config_dict={**steered, "refine_interests": True, "n_interests": 1})


@pytest.mark.parametrize("key, value, requirement", [
    ("nproc", 0, r"must be an integer in \[1, inf\): training processes on this machine"),
    ("world_size", -2, r"must be an integer in \[-1, inf\): processes on all machines"),
])
def test_process_counts_are_checked(tmp_path, key, value, requirement):
    with raises_setting(SettingsError, key, value, requirement):
        Config("UMI", "nowhere", config_dict={"data_path": str(tmp_path)}, cmd_args=[f"--{key}={value}"])
    assert Config("UMI", "nowhere", config_dict={"data_path": str(tmp_path), key: 1, "profile_fields": ["age"]})[key] == 1


def _yaml_ranges():
    """``(file, model class or None, key, range text)`` for every 'Range in ...' comment."""
    files = [*resource_dir("properties").rglob("*.yaml"), *resource_dir("dataset_configs").glob("*.yaml")]
    models = {**PLUGIN_MODELS, "MatchingRecommender": MatchingRecommender}
    found = []
    for path in files:
        model = models.get(path.stem) if path.parent.name == "model" else None
        for line in path.read_text().splitlines():
            match = re.match(r"^(\w+):.*#.*Range in (.+?)\.?\s*$", line)
            if match:
                found.append((path.name, model, match.group(1), match.group(2)))
    return found


def _schema(model, key):
    restrictions = {}
    for cls in reversed(model.__mro__) if model else ():
        restrictions.update(getattr(cls, "setting_restrictions", {}))
    return restrictions.get(key, SETTINGS.get(key))


_INTERVAL = re.compile(r"([\[(])\s*(-?inf|[-\d.e]+)\s*,\s*(-?inf|[-\d.e]+)\s*([\])])")


def _bound(text):
    return text if "inf" in text else f"{float(text):g}"


def test_every_yaml_range_is_the_schemas_and_is_enforced():
    """Each 'Range in ...' comment of properties/ and dataset_configs/ is the range
    settings.py checks (the model's narrower one for its own YAML file), and a value just
    outside it is refused."""
    ranges = _yaml_ranges()
    assert len(ranges) >= 30
    for name, model, key, text in ranges:
        where = f"{name}: {key} (Range in {text})"
        spec = _schema(model, key)
        assert spec is not None, f"{where} has no Setting in recbole_umi/settings.py"
        if "#items" in text:  # data-dependent (n_negatives): the lower bound here, the rest at build
            assert text.startswith(f"[{spec.low:g}, "), where
            continue
        interval = _INTERVAL.fullmatch(text)
        if interval:
            opening, low, high, closing = interval.groups()
            assert spec.describe().endswith(f"in {opening}{_bound(low)}, {_bound(high)}{closing}"), (where, spec.describe())
            outside = []
            if "inf" not in low:
                step = 1 if spec.kind is int else 1e-9
                outside.append(float(low) if opening == "(" else float(low) - step)
            if "inf" not in high:
                outside.append(float(high) if closing == ")" else float(high) + (1 if spec.kind is int else 1e-9))
            for value in outside:
                with pytest.raises(SettingsError):
                    spec.check(key, spec.kind(value))
            continue
        values = yaml.safe_load(text)
        assert isinstance(values, list), where
        if all(isinstance(v, bool) for v in values):
            assert spec.kind is bool and set(values) == {True, False}, where
            with pytest.raises(SettingsError):
                spec.check(key, "yes")
        elif all(isinstance(v, int) for v in values):  # a single value: [1]
            assert (spec.low, spec.high) == (values[0], values[-1]) and len(values) == 1, where
            with pytest.raises(SettingsError):
                spec.check(key, values[0] + 1)
        else:
            assert spec.choices == tuple(values), (where, spec.choices)
            with pytest.raises(SettingsError):
                spec.check(key, "not-a-choice")
        for value in values:
            spec.check(key, value)


# -- compare: every name checked before the first run ---------------------------------------


def test_resolve_variant_refuses_suffixes_a_model_does_not_have():
    assert resolve_variant("UMI-DAR-IR") == ("UMI", {"use_dar": False, "use_ir": False})
    assert resolve_variant("MIND+HN") == ("MIND", {"harder_negatives": True})
    assert resolve_variant("ComiRecSA-HN") == ("ComiRecSA", {"harder_negatives": False})
    assert resolve_variant("UMISA-PROFILE-HN") == (
        "UMISA", {"profile_steering": "none", "refine_interests": False, "harder_negatives": False})
    for name, suffix, takes in [
        ("YoutubeDNN-DAR", "-DAR", "no suffix"),
        ("YoutubeDNN+HN", r"\+HN", "no suffix"),  # single interest: HN changes nothing
        ("ProfileDSSM-HN", "-HN", "no suffix"),
        ("MIND-IR", "-IR", r"\+HN, -HN"),
        ("SASRec+HN", r"\+HN", "no suffix"),
        ("UMI-PROFILE", "-PROFILE", r"\+HN, -HN, -DAR, -IR"),  # a suffix of two settings
    ]:
        with raises_setting(VariantError, "models", name, f"the suffix {suffix} sets .* {takes}"):
            resolve_variant(name)
    with raises_setting(VariantError, "models", "MIDN", "names no model: Unknown model 'MIDN'.*Did you mean 'MIND'"):
        resolve_variant("MIDN")
    with raises_setting(VariantError, "models", "UMI+HN-HN", "sets harder_negatives twice"):  # not the rightmost
        resolve_variant("UMI+HN-HN")


@pytest.mark.parametrize("models, bad, requirement", [
    ("UMI,MIDN", "MIDN", "names no model"),
    ("UMI,YoutubeDNN-DAR", "YoutubeDNN-DAR", "the suffix -DAR sets use_dar"),
])
def test_compare_checks_every_name_before_the_first_run(data, in_tmp, monkeypatch, models, bad, requirement):
    data_path, _, _ = data
    monkeypatch.setattr("recbole_umi.experiments.runs.run", lambda *a, **k: pytest.fail("trained before checking every name"))
    out = in_tmp / "out"
    with raises_setting(VariantError, "models", bad, requirement):
        compare_module.main([f"--models={models}", "--dataset=tiny", "--seeds=1", f"--out={out}",
                             f"--data_path={data_path}"])
    assert not out.exists()
    # a variant's settings are checked up front too (here a typo in the shared settings)
    with raises_setting(UnknownSettingError, "n_interest", 2, "did you mean 'n_interests'"):
        compare_module.main(["--models=UMI,MIND", "--dataset=tiny", "--seeds=1", f"--out={out}",
                             f"--data_path={data_path}", "--n_interest=2"])


def test_tune_refuses_a_suffix_the_model_does_not_have(tmp_path, monkeypatch):
    from recbole_umi.experiments import tune as tune_module

    params = tmp_path / "p.hyper"
    params.write_text("learning_rate loguniform -6,-3\n")
    monkeypatch.setattr(tune_module, "run", lambda *a, **k: pytest.fail("trained a bad variant"))
    with raises_setting(VariantError, "models", "YoutubeDNN+HN", "does not change YoutubeDNN"):
        tune_module.tune("YoutubeDNN+HN", "tiny", params, tmp_path / "out", "random", 1)


# -- refused right after the dataset is loaded, before training ----------------------------


def test_topk_longer_than_the_catalogue_is_refused_after_loading(data, in_tmp):
    data_path, _, _ = data
    settings = tiny_config(data_path, eval_protocol="user_split", topk=[10, 300], valid_metric="Recall@10")
    config = Config("UMI", "tiny", config_dict=settings)
    with raises_setting(SettingsError, "topk", [10, 300], r"must be at most the number of items of the dataset 'tiny' \(40\)"):
        create_dataset(config)
    # the whole catalogue is a valid cut-off
    create_dataset(Config("UMI", "tiny", config_dict={**settings, "topk": [40], "valid_metric": "Recall@40"}))


@pytest.mark.parametrize("protocol, key", [("user_split", "user_split_ratios"), ("recbole", "eval_args")])
def test_split_without_training_samples_is_a_clear_error(data, in_tmp, protocol, key):
    data_path, _, _ = data
    sequences = {user: [user % 20 + 1] for user in range(1, 11)}  # one interaction per user
    write_atomic(data_path, "single", sequences, {user: (30.0, "M") for user in sequences})
    config = Config("UMI", "single", config_dict=tiny_config(data_path, eval_protocol=protocol, topk=[5]))
    with pytest.raises(ProtocolConfigError, match="leaves no training samples on the dataset 'single'") as raised:
        data_preparation(config, create_dataset(config))
    assert (raised.value.key, raised.value.value) == (key, config[key])


def test_split_without_held_out_users_is_a_clear_error(data, in_tmp):
    """RecBole would train without validation (no early stopping, no best epoch), or fail
    after training with nothing to test."""
    data_path, _, _ = data
    sequences = {user: [user % 20 + 1, user % 20 + 2, user % 20 + 3] for user in range(1, 11)}
    write_atomic(data_path, "few", sequences, {user: (30.0, "M") for user in sequences})
    # 10 users: round(9.8) = 10 train, round(0.1) = 0 validation users
    config = Config("UMI", "few", config_dict=tiny_config(data_path, eval_protocol="user_split", topk=[5],
                                                          user_split_ratios=[0.98, 0.01, 0.01]))
    with pytest.raises(ProtocolConfigError, match="leaves no validation users on the dataset 'few'"):
        data_preparation(config, create_dataset(config))


@pytest.mark.parametrize("field, profiles", [
    ("age", {user: (float("nan"), "MF"[user % 2]) for user in range(1, N_USERS + 1)}),  # float: every value NaN
    ("gender", {user: (float(20 + user % 30), "") for user in range(1, N_USERS + 1)}),  # token: every value empty
])
def test_profile_field_without_values_is_refused(data, in_tmp, field, profiles):
    data_path, sequences, _ = data
    write_atomic(data_path, f"no_{field}", sequences, profiles)
    with raises_setting(ProfileConfigError, "profile_fields", ["age", "gender"],
                        f"the field '{field}' has no value for any of the 48 training users"):
        built_model(data_path, f"no_{field}")


# -- robust data ---------------------------------------------------------------------------


def _rows(dataset, split, evaluation: bool) -> set:
    """Every row of a split in original ids: (user, history, target(s))."""
    inter = split.__getitem__(np.arange(len(split)), join=False)  # with the history lists
    uid, iid = dataset.uid_field, dataset.iid_field
    users = dataset.id2token(uid, inter[uid]).tolist()
    rows = set()
    for row, user in enumerate(users):
        length = inter[dataset.item_list_length_field][row].item()
        history = tuple(dataset.id2token(iid, inter[dataset.item_id_list_field][row][:length]).tolist())
        if evaluation:
            offsets = split.target_offsets
            targets = tuple(dataset.id2token(iid, split.target_items[offsets[row]:offsets[row + 1]]).tolist())
        else:
            targets = dataset.id2token(iid, inter[iid][row].item())
        rows.add((user, history, targets))
    return rows


def test_user_split_does_not_depend_on_the_file_order(data, in_tmp):
    data_path, _, _ = data
    lines = (data_path / "tiny" / "tiny.inter").read_text().splitlines()
    shuffled = [lines[0], *np.random.default_rng(3).permutation(lines[1:]).tolist()]
    (data_path / "shuffled").mkdir(exist_ok=True)
    (data_path / "shuffled" / "shuffled.inter").write_text("\n".join(shuffled) + "\n")
    (data_path / "shuffled" / "shuffled.user").write_text((data_path / "tiny" / "tiny.user").read_text())

    splits = []
    for name in ("tiny", "shuffled"):
        _, dataset, loaders = prepared(data_path, name)
        splits.append([_rows(dataset, loader.dataset, evaluation=number > 0) for number, loader in enumerate(loaders)])
    for part, (original, reordered) in enumerate(zip(*splits)):
        assert original == reordered, f"split {part} changed with the row order"
    assert [len({row[0] for row in part}) for part in splits[0]] == [48, 6, 6]
    # and the split is the documented function of the tokens and the seed
    tokens = [str(u) for u in range(1, N_USERS + 1)]
    expected = [{tokens[i] for i in part} for part in split_users(tokens, [0.8, 0.1, 0.1], 2022)]
    assert [{row[0] for row in part} for part in splits[0]] == expected


def test_profile_value_only_held_out_users_have_maps_to_the_unknown_row(data, in_tmp):
    data_path, sequences, profiles = data
    _, tiny, (_, _, test) = prepared(data_path)
    held_out = int(tiny.id2token(tiny.uid_field, test.dataset.inter_feat[tiny.uid_field][0].item()))  # a test user
    # the same interactions (so the same split), and a gender value only that test user has
    write_atomic(data_path, "rare", sequences, {**profiles, held_out: (profiles[held_out][0], "X")})
    config, dataset, model = built_model(data_path, "rare")
    rare_id, male_id = dataset.token2id("gender", "X"), dataset.token2id("gender", "M")
    assert rare_id > 0
    batch = {"gender": torch.tensor([rare_id, male_id]), "age": torch.tensor([30.0, 30.0])}
    gender_ids = model.profile.field_ids(batch)[1]
    assert gender_ids.tolist() == [0, male_id]  # the unseen value is the unknown row, not its own
    _, per_field = model.profile(batch)
    assert torch.equal(per_field[0, 1], torch.zeros(per_field.shape[-1]))  # row 0: padding, zero
    # the mask is saved with the model: a reloaded model maps the same
    state = model.state_dict()
    assert state["profile.seen_gender"].tolist()[rare_id] is False
    fresh = get_model("UMI")(config, dataset)
    fresh.load_state_dict(state)
    assert fresh.profile.field_ids(batch)[1].tolist() == [0, male_id]


@pytest.mark.parametrize("protocol", ["user_split", "recbole"])
@pytest.mark.parametrize("keep", [True, False])
def test_users_missing_from_the_user_file_are_counted(data, in_tmp, caplog, protocol, keep):
    data_path, sequences, profiles = data
    missing = [3, 17, 29, 44, 58]
    write_atomic(data_path, "partial", sequences, {u: p for u, p in profiles.items() if u not in missing})
    config = Config("UMI", "partial", config_dict=tiny_config(
        data_path, eval_protocol=protocol, filter_inter_by_user_or_item=not keep, train_neg_sample_args=None))
    with caplog.at_level(logging.WARNING):
        dataset = create_dataset(config)
    fate = "are kept (filter_inter_by_user_or_item: False)" if keep else "are dropped with all their interactions"
    assert f"5 users (60 interactions) of partial.inter have no row in partial.user and {fate}" in caplog.text
    users = set(dataset.id2token(dataset.uid_field, dataset.inter_feat[dataset.uid_field].unique()).tolist())
    assert users == {str(u) for u in sequences if keep or u not in missing}
    if keep:  # RecBole's defaults for them: the padding token and the mean age
        ids = [dataset.token2id(dataset.uid_field, str(u)) for u in missing]
        assert dataset.user_feat["gender"][ids].tolist() == [0] * 5
        known_ages = [profiles[u][0] for u in profiles if u not in missing]
        assert dataset.user_feat["age"][ids].tolist() == pytest.approx([np.mean(known_ages)] * 5)


def test_compare_table_names_follow_the_protocol():
    def record(protocol):
        result = {"recall@5": 0.5, "precision@5": 0.1, "ndcg@5": 0.3}
        return {"variant": "UMI", "seed": 1, "test_result": result, **({"eval_protocol": protocol} if protocol else {})}

    assert summarise({"UMI": [record("user_split")]})[0] == ["HitRate@5", "Precision@5"]
    assert summarise({"UMI": [record(None)]})[0] == ["HitRate@5", "Precision@5"]  # runs recorded before the key
    assert summarise({"UMI": [record("recbole")]})[0] == ["recall@5", "precision@5"]


# -- logs and the command line's metric names ------------------------------------------------


@pytest.fixture(scope="module")
def two_runs(data, tmp_path_factory):
    """Two runs of the command line in this one process, under RecBole's protocol and then
    the paper's: what each printed, and the log files in the working directory."""
    data_path, _, _ = data
    folder = tmp_path_factory.mktemp("two_runs")
    config_file = write_config(folder / "tiny.yaml", epochs=1, train_neg_sample_args=None, state="INFO")
    base = ["--model=UMI", "--dataset=tiny", f"--data_path={data_path}", f"--config_files={config_file}"]
    printed = {}
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(folder)  # RecBole writes log/ into the working directory
        for protocol in ("recbole", "user_split"):
            with contextlib.redirect_stdout(io.StringIO()) as out:
                main([*base, f"--eval_protocol={protocol}"])
            printed[protocol] = out.getvalue()
    close_run_logger()  # leave no handler of these runs on the root logger
    return printed, sorted((folder / "log" / "UMI").glob("*.log"), key=lambda p: p.stat().st_mtime)


def test_paper_metric_names_are_printed_only_under_the_user_split(two_runs):
    printed, _ = two_runs
    assert "HitRate" not in printed["recbole"] and "recall@5" in printed["recbole"]
    assert "HitRate@5" in printed["user_split"] and "(RecBole's recall@N and precision@N)" in printed["user_split"]


def test_each_run_in_one_process_has_its_own_complete_log(two_runs):
    _, logs = two_runs
    assert len(logs) == 2
    for path, protocol, other in zip(logs, ("recbole", "user_split"), ("user_split", "recbole")):
        text = path.read_text()
        assert f"eval_protocol = {protocol}" in text and f"eval_protocol = {other}" not in text, path.name
        assert text.count("test result") == 1 and text.count("best valid") == 1, path.name
    assert "user split" in logs[1].read_text() and "user split" not in logs[0].read_text()


class _WritesMarker:
    """Unpickled, it creates (opens for writing) the marker file."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


def test_recboles_pickled_caches_are_never_read(tiny_data, tmp_path):
    """RecBole unpickles <checkpoint_dir>/<dataset>-<class>.pth and
    <dataset>-for-<model>-dataloader.pth whenever they exist: planted there, they are ignored
    (the run builds its data from the atomic files) and their code never runs."""
    import pickle

    from recbole.data.utils import create_dataset as recbole_create_dataset

    from recbole_umi.quick_start import run

    checkpoints = tmp_path / "saved"
    checkpoints.mkdir(exist_ok=True)
    marker = tmp_path / "marker"
    for name in ("tiny-SequentialDataset.pth", "tiny-for-SASRec-dataloader.pth"):
        (checkpoints / name).write_bytes(pickle.dumps(_WritesMarker(marker)))
    settings = tiny_config(tiny_data, eval_protocol="recbole", epochs=1, checkpoint_dir=str(checkpoints),
                           train_neg_sample_args=None)
    result = run("SASRec", "tiny", config_dict=settings)
    assert result["test_result"] and not marker.exists()
    # RecBole's own create_dataset refuses the cache instead of running it
    with pytest.raises(pickle.UnpicklingError, match="reads no pickled files"):
        recbole_create_dataset(Config("SASRec", "tiny", config_dict=settings))
    assert not marker.exists()
    # Control: the planted file does run code when unpickled.
    pickle.loads((checkpoints / "tiny-SequentialDataset.pth").read_bytes()).close()
    assert marker.exists()


@pytest.mark.parametrize("key, value", [("save_dataset", True), ("save_dataloaders", True),
                                        ("dataset_save_path", "d.pth"), ("dataloaders_save_path", "l.pth")])
def test_settings_that_make_recbole_pickle_are_refused(key, value):
    with pytest.raises(SettingsError, match=f"'{key}' = .*RecBole writes these files with pickle"):
        Config("UMI", "ml-100k", config_dict={key: value})
