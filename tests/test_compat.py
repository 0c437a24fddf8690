"""Each RecBole 1.2.1 breakage on the current stack is handled by recbole_umi.compat."""

import pickle
import subprocess
import sys
from fractions import Fraction

import pytest

import numpy as np
import torch

from recbole_umi import compat
from recbole_umi.quick_start import run
from tests.conftest import tiny_config


def test_numpy_aliases_restored():
    assert np.float_ is np.float64 and np.bool8 is np.bool_ and np.unicode_ is np.str_
    from recbole.config import Config  # its compatibility_settings uses np.float_ etc.

    assert Config is not None


def test_anomaly_mode_stays_off_after_importing_models():
    import recbole.model.sequential_recommender  # noqa: F401  (sine.py switched it on)
    import recbole_umi.model  # noqa: F401

    assert not torch.is_anomaly_enabled()


def test_fresh_process_imports_recbole_quick_start_without_anomaly_mode():
    code = (
        "import recbole_umi, torch, recbole.quick_start, recbole.model.sequential_recommender;"
        "print(torch.is_anomaly_enabled())"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_ray_placeholder_fails_only_on_use(monkeypatch):
    placeholder = compat._ray_placeholder("no pkg_resources")
    try:
        placeholder.tune
    except ImportError as error:
        assert "no pkg_resources" in str(error)
    else:
        raise AssertionError("using the placeholder must raise")


def test_torch_stays_strict_outside_recbole_trainer(tmp_path):
    import recbole.trainer.trainer as trainer_module

    assert isinstance(trainer_module.torch, compat._TorchWithFullCheckpointLoad)
    assert trainer_module.torch.nn is torch.nn
    path = tmp_path / "obj.pth"
    torch.save({"config": Fraction(1, 3)}, path)  # an arbitrary non-tensor class
    with pytest.raises(pickle.UnpicklingError, match="Weights only load failed"):
        torch.load(path)
    assert trainer_module.torch.load(path)["config"] == Fraction(1, 3)


def test_trained_model_checkpoint_reloads_and_evaluates(tiny_data):
    """Trainer.evaluate(load_best_model=True) reads the checkpoint RecBole just saved."""
    result = run("UMI", "tiny", config_dict=tiny_config(tiny_data, "UMI", epochs=1), saved=True)
    assert set(result["test_result"]) == {"recall@5", "precision@5"}
    assert list((tiny_data.parent / "saved").glob("UMI-*.pth"))
