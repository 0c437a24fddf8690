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


def _offline_download(monkeypatch, tmp_path):
    """RecBole's download path with the network replaced by a local zip of a tiny dataset
    (files named ``tinydl-src.*``, as RecBole's zips use another name than the dataset)."""
    import shutil
    import zipfile

    from recbole.data.dataset import dataset as dataset_module

    from tests.conftest import random_sequences, write_atomic

    sequences, profiles = random_sequences(n_users=20, n_items=15, length=6)
    source = write_atomic(tmp_path / "source", "tinydl-src", sequences, profiles) / "tinydl-src"
    archive = tmp_path / "tinydl-src.zip"
    with zipfile.ZipFile(archive, "w") as handle:
        for file in source.iterdir():
            handle.write(file, file.name)

    def local_download(url, folder):
        return shutil.copy(archive, folder)

    monkeypatch.setattr(dataset_module.Dataset, "_get_download_url", lambda self, *a, **k: "file://tinydl-src.zip")
    monkeypatch.setattr(dataset_module, "decide_download", lambda url: True)
    monkeypatch.setattr(dataset_module, "download_url", local_download)
    monkeypatch.chdir(tmp_path)
    settings = tiny_config(tmp_path / "data", "UMI", dataset="tinydl")
    return sum(len(items) for items in sequences.values()), settings


def test_dataset_download_finishes_without_a_process_group(monkeypatch, tmp_path):
    from recbole.data import create_dataset

    from recbole_umi.config import Config

    n_interactions, settings = _offline_download(monkeypatch, tmp_path)
    dataset = create_dataset(Config("UMI", "tinydl", config_dict=settings))
    assert dataset.inter_num == n_interactions
    assert (tmp_path / "data" / "tinydl" / "tinydl.inter").exists()


def test_dataset_download_fails_without_the_fix(monkeypatch, tmp_path):
    """The check above can fail: with RecBole's own torch the download ends in an error."""
    from recbole.data import create_dataset
    from recbole.data.dataset import dataset as dataset_module

    from recbole_umi.config import Config

    _, settings = _offline_download(monkeypatch, tmp_path)
    monkeypatch.setattr(dataset_module, "torch", torch)
    with pytest.raises((RuntimeError, ValueError), match="process group"):
        create_dataset(Config("UMI", "tinydl", config_dict=settings))
