"""Registry lookup, config layering and start-up errors."""

from pathlib import Path

import pytest
import yaml

from recbole_umi.config import Config, parse_cmd_args
from recbole_umi.data import ProtocolConfigError
from recbole_umi.model import LossConfigError, ModelConfigError, ProfileConfigError
from recbole_umi.model.umi import UMI
from recbole_umi.registry import PLUGIN_MODELS, get_model
from recbole_umi.settings import SETTINGS, SettingsError
from tests.conftest import build, random_sequences, write_atomic


def test_plugin_models_first_then_recbole():
    assert get_model("UMI") is UMI
    assert get_model("SASRec").__module__.startswith("recbole.model")
    # RecBole's context-aware DSSM keeps its name; ours is ProfileDSSM
    assert get_model("DSSM").__module__.startswith("recbole.model.context_aware_recommender")


def test_unknown_model_name_is_a_clear_error():
    with pytest.raises(ValueError, match="Unknown model 'UMl'"):
        get_model("UMl")


def test_layering_priority(tmp_path):
    # properties/model (MatchingRecommender < UMI) < dataset_configs < files < dict < cmd
    config = Config("UMI", "ml-100k")
    assert config["harder_negatives"] is True  # UMI.yaml beats MatchingRecommender.yaml
    assert config["n_negatives"] == 5  # from MatchingRecommender.yaml
    assert config["train_batch_size"] == 512  # dataset_configs/ml-100k.yaml beats the model's 128
    assert config["MAX_ITEM_LIST_LENGTH"] == 10  # dataset_configs beats RecBole's 50
    user_file = tmp_path / "user.yaml"
    user_file.write_text(yaml.safe_dump({"train_batch_size": 64, "n_negatives": 7, "n_interests": 4}))
    config = Config(
        "UMI",
        "ml-100k",
        config_file_list=[str(user_file)],
        config_dict={"n_negatives": 8, "n_interests": 5},
        cmd_args=["--n_interests=6"],
    )
    assert (config["train_batch_size"], config["n_negatives"], config["n_interests"]) == (64, 8, 6)


def test_recbole_models_get_dataset_configs_too():
    config = Config("SASRec", "ml-100k")
    assert config["MAX_ITEM_LIST_LENGTH"] == 10
    assert "n_negatives" not in config  # plugin model defaults do not leak into RecBole models


def test_ml100k_reads_a_given_data_path_and_else_recboles_copy(tmp_path):
    import recbole

    embedded = Path(recbole.__file__).parent / "dataset_example" / "ml-100k"
    assert Path(Config("UMI", "ml-100k")["data_path"]).resolve() == embedded.resolve()
    # RecBole itself points ml-100k at its copy whatever data_path says
    for given in ({"config_dict": {"data_path": str(tmp_path)}}, {"cmd_args": [f"--data_path={tmp_path}"]}):
        assert Config("UMI", "ml-100k", **given)["data_path"] == str(tmp_path / "ml-100k")
    assert Config("UMI", "ml-1m", config_dict={"data_path": str(tmp_path)})["data_path"] == str(tmp_path / "ml-1m")


def test_profile_fields_are_added_to_load_col():
    config = Config("UMI", "ml-100k", config_dict={"profile_fields": ["age", "zip_code"]})
    assert config["load_col"]["user"] == ["user_id", "age", "gender", "occupation", "zip_code"]


def test_command_line_must_be_key_value():
    assert parse_cmd_args(["--lr=0.1", "--a=b=c"]) == {"lr": "0.1", "a": "b=c"}
    with pytest.raises(ValueError, match="--key=value"):
        parse_cmd_args(["-x"])
    with pytest.raises(ValueError, match="twice"):
        parse_cmd_args(["--a=1", "--a=2"])


@pytest.mark.parametrize(
    "overrides, error, message",
    [
        ({"n_interests": 0}, SettingsError, r"'n_interests' = 0: must be an integer in \[1, inf\)"),
        ({"loss_type": "BPR"}, SettingsError, "'loss_type' = 'BPR': must be one of 'sampled_softmax', 'full_softmax'"),
        ({"n_negatives": 40}, LossConfigError, r"'n_negatives' = 40: must be below the number of items \(40\)"),
        ({"negative_sampler": "zipf"}, SettingsError, "'negative_sampler' = 'zipf': must be one of"),
        ({"profile_fields": ["age", "income"]}, ProfileConfigError, "the field 'income' is not available"),
        ({"numerical_features": ["age"]}, ProfileConfigError, "numerical_features"),
        ({"harder_negatives": "yes"}, SettingsError, "'harder_negatives' = 'yes': must be True or False"),
        ({"train_neg_sample_args": {"distribution": "uniform", "sample_num": 1}}, ModelConfigError, "own negatives"),
        # empty values (a YAML key with nothing after the colon)
        ({"n_negatives": None}, SettingsError, "'n_negatives' = empty: must be an integer in"),
        ({"softmax_temperature": None}, SettingsError, "'softmax_temperature' = empty: must be a number in"),
        ({"shared_negatives": None}, SettingsError, "'shared_negatives' = empty: must be True or False"),
        ({"softmax_temperature": 0}, SettingsError, r"'softmax_temperature' = 0: must be a number in \(0, inf\)"),
        ({"readout_power": -1.0}, SettingsError, r"'readout_power' = -1.0: must be a number in \[0, inf\]"),
        ({"history_share": 1.0}, SettingsError, r"'history_share' = 1.0: must be a number in \(0, 1\)"),
        ({"user_split_ratios": [0.8, 0.2]}, SettingsError, "'user_split_ratios' = \\[0.8, 0.2\\]: must be a list of 3"),
    ],
)
def test_bad_config_fails_at_start_up(tiny_data, overrides, error, message):
    with pytest.raises(error, match=message) as raised:
        build(tiny_data, "UMI", **overrides)
    # the error names the key and its value (a profile field's problems name profile_fields)
    key = raised.value.key
    assert key in overrides or key == "profile_fields"
    assert raised.value.value == (overrides[key] if key in overrides else ["age", "gender"])


@pytest.mark.parametrize("error", [ModelConfigError, LossConfigError, ProfileConfigError, ProtocolConfigError])
def test_one_error_base_class(error):
    assert issubclass(error, SettingsError)


def test_settings_are_checked_before_any_data_is_loaded(tmp_path):
    # no dataset exists under this data_path: the config alone must fail
    with pytest.raises(SettingsError, match="'n_interests' = -2"):
        Config("UMI", "nowhere", config_dict={"data_path": str(tmp_path), "n_interests": -2})


def test_recbole_models_keep_their_own_meaning_of_shared_names():
    # SASRec's loss_type is 'CE': plugin model settings are not checked for RecBole models
    assert Config("SASRec", "ml-100k")["loss_type"] == "CE"
    with pytest.raises(SettingsError, match="history_share"):  # the protocol's are
        Config("SASRec", "ml-100k", config_dict={"history_share": 2})


def test_every_plugin_yaml_key_is_validated():
    """Each key the plugin's YAML files set is RecBole's own or has a type and range in
    recbole_umi.settings: no plugin setting bypasses validation."""
    import recbole

    from recbole_umi.config import resource_dir

    recbole_keys = set()
    for path in (Path(recbole.__file__).parent / "properties").rglob("*.yaml"):
        recbole_keys |= set(yaml.safe_load(path.read_text()) or {})
    files = [*resource_dir("properties").rglob("*.yaml"), *resource_dir("dataset_configs").glob("*.yaml")]
    plugin_keys = set().union(*(set(yaml.safe_load(p.read_text()) or {}) for p in files))
    unchecked = plugin_keys - recbole_keys - set(SETTINGS) - {"base_config", "profile_fields"}
    assert not unchecked, f"keys without a Setting in recbole_umi/settings.py: {sorted(unchecked)}"
    assert "profile_fields" in SETTINGS


def test_comirec_variant_is_validated(tiny_data):
    with pytest.raises(SettingsError, match="comirec_variant"):
        build(tiny_data, "ComiRec", comirec_variant="XX")


def test_dataset_without_user_file_names_the_field(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    sequences, _ = random_sequences()
    data = write_atomic(tmp_path / "data", "nouser", sequences, profiles=None)
    with pytest.raises(ProfileConfigError, match="the field 'age' is not available.*no user features"):
        build(data, "UMI", dataset="nouser")
    # a model without profile runs on it
    build(data, "ComiRecSA", dataset="nouser")


def test_every_yaml_key_has_an_inline_comment():
    from recbole_umi.config import resource_dir

    files = [*resource_dir("properties").rglob("*.yaml"), *resource_dir("dataset_configs").glob("*.yaml")]
    assert len(files) >= 8
    for path in files:
        for number, line in enumerate(path.read_text().splitlines(), 1):
            if line.strip() and not line.lstrip().startswith("#") and ":" in line:
                key_part = line.split("#")[0]
                assert "#" in line and key_part.strip(), f"{path.name}:{number} has no inline comment"


def test_comirec_variants(tiny_data):
    assert build(tiny_data, "ComiRecSA")[3].variant == "SA"
    assert build(tiny_data, "ComiRec", comirec_variant="SA")[3].variant == "SA"
    # refused when the config is built, before any data is loaded
    with pytest.raises(SettingsError, match="'comirec_variant' = 'SA': must be one of 'DR': fixed for ComiRecDR; use --model=ComiRec"):
        Config("ComiRecDR", "nowhere", config_dict={"comirec_variant": "SA"})


def _settings_classes():
    import recbole_umi.towers.settings as module

    return [cls for cls in vars(module).values()
            if isinstance(cls, type) and issubclass(cls, module.Settings) and cls is not module.Settings]


@pytest.mark.parametrize("cls", _settings_classes(), ids=lambda cls: cls.__name__)
def test_settings_objects_take_types_and_ranges_from_the_registry(cls):
    """Every field of every settings object is a key of recbole_umi.settings, of its kind
    (a Literal field has exactly the registry's choices), so the registry is the one place
    types and ranges are written."""
    import dataclasses
    import typing

    hints = typing.get_type_hints(cls)
    for field in dataclasses.fields(cls):
        spec, hint = SETTINGS[field.name], hints[field.name]
        if typing.get_origin(hint) is typing.Literal:
            assert spec.choices == typing.get_args(hint), field.name
        elif typing.get_origin(hint) is tuple:
            assert spec.kind is list, field.name
        else:
            assert hint is spec.kind, field.name


@pytest.mark.parametrize("name", sorted(PLUGIN_MODELS))
def test_every_key_a_model_reads_has_a_yaml_default(name):
    """The keys a model reads (its settings objects' fields and the run's) all have a
    default in properties/ for that model, and its settings objects build from them."""
    from recbole_umi.towers.settings import ObjectiveSettings

    model_class = PLUGIN_MODELS[name]
    config = Config(name, "ml-100k")
    for key in model_class.setting_keys():
        assert key in SETTINGS, key
        assert key in config and config[key] is not None, f"{name} reads {key!r}, which has no default in properties/"
    model_class.tower_class.settings_class.from_config(config)
    ObjectiveSettings.from_config(config)


def test_a_settings_object_names_the_key_the_value_and_the_range():
    from recbole_umi.towers.settings import ComiRecSettings, YoutubeDNNSettings

    with pytest.raises(SettingsError, match=r"'n_interests' = 2: must be an integer in \[1, 1\]: this is a single-interest model"):
        YoutubeDNNSettings(embedding_size=8, n_interests=2, profile_embedding_size=4, mlp_hidden_size=8)
    with pytest.raises(SettingsError, match="'comirec_variant' = 'XX': must be one of 'DR', 'SA'"):
        ComiRecSettings(embedding_size=8, n_interests=2, comirec_variant="XX", routing_iterations=3, attention_hidden_size=4,
                        comirec_maps="per_position", position_embedding=True)
    with pytest.raises(SettingsError, match=r"'mlp_hidden_size' = empty: must be an integer in \[1, inf\)"):
        YoutubeDNNSettings.from_config({"embedding_size": 8, "n_interests": 1, "profile_embedding_size": 4})


def test_umis_width_and_comirec_sas_width_are_two_keys(tmp_path):
    """UGANet's and Eq 7's width is UMI's uganet_hidden_size; attention_hidden_size is
    ComiRec-SA's, and UMI refuses it, naming the new key. The synthetic benchmark's config
    sets UMI's width without touching ComiRec-SA's 4d = 128."""
    from recbole_umi.settings import migrate_saved_settings

    where = {"data_path": str(tmp_path)}
    with pytest.raises(SettingsError, match="'attention_hidden_size' = 64: is not a setting of UMI: .*'uganet_hidden_size'"):
        Config("UMI", "nowhere", config_dict={**where, "attention_hidden_size": 64})
    assert Config("UMI", "synth", config_dict=where)["uganet_hidden_size"] == 64
    assert Config("ComiRecSA", "synth", config_dict=where)["attention_hidden_size"] == 128
    # a checkpoint's or an export's settings from before the rename keep their meaning
    saved = {"model": "UMI", "attention_hidden_size": 64, "embedding_size": 32}
    assert migrate_saved_settings("UMI", saved) == {"model": "UMI", "uganet_hidden_size": 64, "embedding_size": 32}
    assert migrate_saved_settings("ComiRecSA", {"attention_hidden_size": 64})["attention_hidden_size"] == 64
