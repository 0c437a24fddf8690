"""Every plugin model scores the same after its state dict is reloaded in a fresh process.

Here each model is built on a tiny dataset with a float profile field (``age``, whose
bucket edges come from the training users and are saved as buffers), trained a few
steps so its weights are not the initial ones, put in eval mode and scored
(``full_sort_predict``) on a fixed batch. Its ``state_dict`` and the batch go to disk.
ONE fresh Python process (importing RecBole costs seconds, so all models share it)
rebuilds every model from the same config and data with ANOTHER seed, which gives other
initial weights and another draw of the evaluation routing logits, scores the batch
before and after ``load_state_dict(strict=True)`` of the saved state (read with
``weights_only=True``) and writes the scores back. After loading the scores must equal
the saved ones; before loading they must differ (the control: the check can fail).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from recbole_umi import compat

compat.apply()  # before anything imports RecBole

from recbole.data.interaction import Interaction  # noqa: E402

from recbole_umi.registry import PLUGIN_MODELS
from tests.conftest import REPO_ROOT, build, write_atomic

MODELS = sorted(PLUGIN_MODELS)
# The models with a user-profile tower; the others (ComiRec*) have no profile at all.
PROFILE_MODELS = {name for name, model_class in PLUGIN_MODELS.items() if model_class.uses_profile}
# The models that draw initial routing logits from N(0, sigma^2), fixed in eval mode.
RANDOM_ROUTING_MODELS = {"UMI", "MIND"}
SAVE_SEED, RELOAD_SEED = 2020, 2021
TRAIN_STEPS = 5

# The fresh process: argv = repo root, data path, work folder, models.
CHILD = """
import sys
sys.path.insert(0, sys.argv[1])
from tests.test_save_reload import rebuild_and_score
rebuild_and_score(*sys.argv[2:])
"""


def write_profile_data(folder: Path) -> Path:
    """60 users with 12 random items each out of 40, a float ``age`` and a token ``gender``."""
    rng = np.random.default_rng(7)
    sequences = {u: [int(i) for i in rng.choice(np.arange(1, 41), size=12, replace=False)] for u in range(1, 61)}
    profiles = {u: (float(rng.integers(18, 70)), "MF"[int(rng.integers(0, 2))]) for u in sequences}
    return write_atomic(folder, "tiny", sequences, profiles)


def batch_tensors(train_data) -> dict[str, torch.Tensor]:
    """The first training batch (history, profile fields, ...) as a dict of tensors."""
    return dict(next(iter(train_data)).interaction)


def scores_of(model, tensors: dict[str, torch.Tensor]) -> torch.Tensor:
    model.eval()
    with torch.no_grad():
        return model.full_sort_predict(Interaction(dict(tensors)))


def train_and_save(data_path: Path, work: Path, model_name: str) -> tuple[torch.Tensor, list[str]]:
    """Build, train a few steps, score the batch and save state dict and batch to ``work``."""
    _, train_data, _, model = build(data_path, model_name, seed=SAVE_SEED)
    tensors = batch_tensors(train_data)
    optimizer = torch.optim.Adam(model.parameters(), lr=0.05)
    model.train()
    for _ in range(TRAIN_STEPS):
        optimizer.zero_grad()
        model.calculate_loss(Interaction(dict(tensors))).backward()
        optimizer.step()
    scores = scores_of(model, tensors)
    state = model.state_dict()
    torch.save(state, work / f"{model_name}.state.pt")
    torch.save(tensors, work / f"{model_name}.batch.pt")
    return scores, list(state)


def rebuild_and_score(data_path: str, work: str, *models: str) -> None:
    """In the fresh process: per model, scores before and after loading the saved state,
    and the state-dict entries in which the fresh model differed from the saved one."""
    work_ = Path(work)
    results = {"recbole_umi": compat.__file__}
    for model_name in models:
        _, _, _, model = build(Path(data_path), model_name, seed=RELOAD_SEED)
        tensors = torch.load(work_ / f"{model_name}.batch.pt", weights_only=True)
        state = torch.load(work_ / f"{model_name}.state.pt", weights_only=True)
        fresh = model.state_dict()
        differing = [k for k in state if k in fresh and not torch.equal(fresh[k], state[k])]
        before = scores_of(model, tensors)
        model.load_state_dict(state, strict=True)
        results[model_name] = {"before": before, "after": scores_of(model, tensors), "differing": differing}
    torch.save(results, work_ / "reloaded.pt")


@pytest.fixture(scope="module")
def reloaded(tmp_path_factory):
    """Saved scores and state-dict keys per model, and what the fresh process computed."""
    work = tmp_path_factory.mktemp("save_reload")
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(work)  # RecBole may write log/ and saved/ into the working directory
        data_path = write_profile_data(work / "data")
        saved = {name: train_and_save(data_path, work, name) for name in MODELS}
        out = subprocess.run(
            [sys.executable, "-c", CHILD, str(REPO_ROOT), str(data_path), str(work), *MODELS],
            capture_output=True, text=True, cwd=work, timeout=300,
        )
    assert out.returncode == 0, out.stderr[-3000:]
    fresh = torch.load(work / "reloaded.pt", weights_only=True)
    # The fresh process must have tested this checkout's package, not another install.
    assert Path(fresh["recbole_umi"]).resolve().is_relative_to(REPO_ROOT)
    return saved, fresh


@pytest.mark.parametrize("model_name", MODELS)
def test_scores_survive_save_and_reload_in_a_fresh_process(reloaded, model_name):
    saved, fresh = reloaded
    saved_scores, _ = saved[model_name]
    result = fresh[model_name]
    torch.testing.assert_close(result["after"], saved_scores, rtol=1e-6, atol=1e-6)
    # Control: the freshly seeded model, before loading, scores otherwise (a model that learns
    # nothing, Popularity, is built with its final scores)
    if getattr(PLUGIN_MODELS[model_name], "learned", True):
        assert (result["before"] - saved_scores).abs().max() > 1e-3


@pytest.mark.parametrize("model_name", MODELS)
def test_state_dict_holds_routing_logits_and_bucket_edges(reloaded, model_name):
    saved, fresh = reloaded
    _, keys = saved[model_name]
    if model_name in RANDOM_ROUTING_MODELS:
        # The evaluation routing draw is saved, and the new seed drew another one.
        assert any("routing" in key for key in keys), keys
        assert any("routing" in key for key in fresh[model_name]["differing"]), fresh[model_name]["differing"]
    # age is a float profile field: its bucket edges are state iff the model has a profile.
    assert any("bucket_edges" in key for key in keys) == (model_name in PROFILE_MODELS), keys
