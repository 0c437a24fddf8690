"""The search spaces of scripts/search_ml1m.sh (tuning/ml-1m-search/*.hyper) hold what the
search will ask of them, checked before hours of trials: every name a setting of its model,
every value and both ends accepted, the model's defaults inside (the first trial), and random
joint draws accepted together (a combination the settings refuse would end the search)."""

from pathlib import Path

import numpy as np
import pytest
import yaml
from hyperopt.pyll import stochastic

from recbole_umi.config import Config
from recbole_umi.experiments.tune import Tuning

SPACES = sorted((Path(__file__).resolve().parent.parent / "tuning" / "ml-1m-search").glob("*.hyper"))
DRAWS = 40


def test_the_search_covers_the_final_tables_models():
    assert [p.stem for p in SPACES] == ["ComiRecDR", "ComiRecSA", "MIND", "ProfileDSSM", "SASRec", "SASRecMatching",
                                        "SINE", "UMI", "UMISA", "YoutubeDNN"]


@pytest.mark.parametrize("space", SPACES, ids=lambda p: p.stem)
def test_every_search_space_is_accepted_value_by_value_and_jointly(space, tmp_path):
    # the fixed settings as scripts/search_ml1m.sh gives them: search.yaml, then the model's own
    files = [str(space.with_name("search.yaml"))] + [str(p) for p in [space.with_suffix(".yaml")] if p.exists()]
    search = Tuning(space.stem, "ml-1m", space, tmp_path / "search", algo="random", max_evals=16, seed=101,
                    config_file_list=files, log=lambda *_: None)  # refuses a bad name, value, default
    assert Config(search.model_name, "ml-1m", files, {"state": "ERROR"})["train_batch_size"] == (
        1024 if not space.with_suffix(".yaml").exists() else yaml.safe_load(space.with_suffix(".yaml").read_text())
        .get("train_batch_size", 1024))
    rng = np.random.RandomState(0)
    for _ in range(DRAWS):
        params = stochastic.sample(search.space, rng=rng)
        config = Config(search.model_name, "ml-1m", files, {**search.fixed_settings, **params, "state": "ERROR"})
        for name, value in params.items():
            assert config[name] == value
