"""Registry lookup, config layering and start-up errors."""

import pytest
import yaml

from recbole_umi.config import Config, parse_cmd_args
from recbole_umi.model import LossConfigError, ModelConfigError, ProfileConfigError
from recbole_umi.model.umi import UMI
from recbole_umi.registry import get_model
from tests.conftest import build, random_sequences, tiny_config, write_atomic


def test_plugin_models_first_then_recbole():
    assert get_model("UMI") is UMI
    assert get_model("SASRec").__module__.startswith("recbole.model")
    # RecBole's context-aware DSSM keeps its name; ours is ProfileDSSM
    assert get_model("DSSM").__module__.startswith("recbole.model.context_aware_recommender")


def test_unknown_model_name_is_a_clear_error():
    with pytest.raises(ValueError, match="Unknown model 'UMl'"):
        get_model("UMl")


def test_layering_priority(tmp_path):
    # properties/model (MultiInterestRecommender < UMI) < dataset_configs < files < dict < cmd
    config = Config("UMI", "ml-100k")
    assert config["harder_negatives"] is True  # UMI.yaml beats MultiInterestRecommender.yaml
    assert config["n_negatives"] == 5  # from MultiInterestRecommender.yaml
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
        ({"n_interests": 0}, ModelConfigError, "n_interests must be >= 1"),
        ({"loss_type": "BPR"}, LossConfigError, "loss_type"),
        ({"n_negatives": 40}, LossConfigError, "n_negatives"),  # 40 items in the tiny dataset
        ({"negative_sampler": "zipf"}, LossConfigError, "negative_sampler"),
        ({"profile_fields": ["age", "income"]}, ProfileConfigError, "'income'"),
        ({"numerical_features": ["age"]}, ProfileConfigError, "numerical_features"),
        ({"harder_negatives": "yes"}, LossConfigError, "harder_negatives must be True or False"),
        ({"train_neg_sample_args": {"distribution": "uniform", "sample_num": 1}}, ModelConfigError, "own negatives"),
    ],
)
def test_bad_config_fails_at_start_up(tiny_data, overrides, error, message):
    with pytest.raises(error, match=message):
        build(tiny_data, "UMI", **overrides)


def test_comirec_variant_is_validated(tiny_data):
    with pytest.raises(ModelConfigError, match="comirec_variant"):
        build(tiny_data, "ComiRec", comirec_variant="XX")


def test_dataset_without_user_file_names_the_field(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    sequences, _ = random_sequences()
    data = write_atomic(tmp_path / "data", "nouser", sequences, profiles=None)
    with pytest.raises(ProfileConfigError, match="'age'.*no user features"):
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
    with pytest.raises(ModelConfigError, match="use --model=ComiRec"):
        build(tiny_data, "ComiRecDR", comirec_variant="SA")
