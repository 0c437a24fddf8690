"""Shared fixtures: tiny synthetic datasets written per test, and model builders."""

from __future__ import annotations

import os
from pathlib import Path

if os.environ.get("PYTEST_XDIST_WORKER"):  # a worker per core (setup.cfg): one torch thread each,
    os.environ.setdefault("OMP_NUM_THREADS", "1")  # for it and the processes its tests start

import numpy as np
import pytest
import yaml

from recbole_umi import compat

compat.apply()  # before anything imports RecBole

from recbole.data import create_dataset, data_preparation
from recbole.utils import init_seed

from recbole_umi.config import Config
from recbole_umi.registry import get_model

REPO_ROOT = Path(__file__).resolve().parent.parent
SHARED_DATA = REPO_ROOT.parent / "shared" / "data"

# Quiet, fast settings for every test run on a tiny dataset.
TINY_SETTINGS = {
    "state": "ERROR",
    "show_progress": False,
    "epochs": 2,
    "eval_batch_size": 256,
    "train_batch_size": 64,
    "MAX_ITEM_LIST_LENGTH": 5,
    "embedding_size": 8,
    "topk": [5],
    "metrics": ["Recall", "Precision"],
    "valid_metric": "Recall@5",
    "load_col": {"inter": ["user_id", "item_id", "timestamp"], "user": ["user_id", "age", "gender"]},
    "profile_fields": ["age", "gender"],
    "reproducibility": True,
}


def write_config(path: Path, **overrides) -> Path:
    """A YAML config file of ``TINY_SETTINGS`` with ``overrides`` (for command-line tests)."""
    path.write_text(yaml.safe_dump({**TINY_SETTINGS, **overrides}))
    return path


def write_atomic(folder: Path, name: str, sequences: dict[int, list[int]], profiles: dict[int, tuple] | None):
    """Write ``<folder>/<name>/<name>.inter`` (and ``.user`` if ``profiles``) in RecBole's format.

    ``sequences`` maps a user id to its items in order; ``profiles`` maps a user id to
    ``(age, gender)`` with age a float and gender a token.
    """
    target = folder / name
    target.mkdir(parents=True, exist_ok=True)
    lines = ["user_id:token\titem_id:token\ttimestamp:float"]
    for user, items in sequences.items():
        lines += [f"{user}\t{item}\t{position}" for position, item in enumerate(items)]
    (target / f"{name}.inter").write_text("\n".join(lines) + "\n")
    if profiles is not None:
        rows = ["user_id:token\tage:float\tgender:token"]
        rows += [f"{user}\t{age}\t{gender}" for user, (age, gender) in profiles.items()]
        (target / f"{name}.user").write_text("\n".join(rows) + "\n")
    return folder


def random_sequences(n_users=60, n_items=40, length=12, seed=0):
    rng = np.random.default_rng(seed)
    sequences = {u: list(rng.choice(np.arange(1, n_items + 1), size=length, replace=False)) for u in range(1, n_users + 1)}
    profiles = {u: (float(rng.integers(18, 60)), "MF"[int(rng.integers(0, 2))]) for u in sequences}
    return sequences, profiles


@pytest.fixture
def torch_threads():
    """``torch.set_num_threads`` for a test, torch's threads restored after it."""
    import torch

    before = torch.get_num_threads()
    yield torch.set_num_threads
    torch.set_num_threads(before)


@pytest.fixture
def tiny_data(tmp_path, monkeypatch) -> Path:
    """A random 60-user, 40-item dataset named ``tiny`` with age (float) and gender (token)."""
    monkeypatch.chdir(tmp_path)  # RecBole writes log/ and saved/ into the working directory
    sequences, profiles = random_sequences()
    return write_atomic(tmp_path / "data", "tiny", sequences, profiles)


def cut_training(monkeypatch, when, stop=None) -> list[int]:
    """Make training stop with a KeyboardInterrupt (a session that ends) at the start of
    the first epoch ``epoch_idx`` for which ``when(epoch_idx)`` holds, or with what
    ``stop()`` raises there; returns the list the cut epoch is appended to.
    ``monkeypatch.undo()`` or the test's end lifts it."""
    from recbole_umi.checkpoint import SafeCheckpointTrainer

    real_train_epoch = SafeCheckpointTrainer._train_epoch
    cut: list[int] = []

    def train_epoch(self, train_data, epoch_idx, *rest, **kwargs):
        if not cut and when(epoch_idx):
            cut.append(epoch_idx)
            if stop is not None:
                stop()
            raise KeyboardInterrupt
        return real_train_epoch(self, train_data, epoch_idx, *rest, **kwargs)

    monkeypatch.setattr(SafeCheckpointTrainer, "_train_epoch", train_epoch)
    return cut


def tiny_config(data_path: Path, **overrides) -> dict:
    """``TINY_SETTINGS`` for a dataset under ``data_path`` (checkpoints beside it), with ``overrides``."""
    return {**TINY_SETTINGS, "data_path": str(data_path), "checkpoint_dir": str(data_path.parent / "saved"), **overrides}


def build(data_path: Path, model: str, dataset: str = "tiny", **overrides):
    """Config, train loader and a freshly built model, as ``run`` builds them."""
    config = Config(model, dataset, config_dict=tiny_config(data_path, **overrides))
    init_seed(config["seed"], config["reproducibility"])
    data = create_dataset(config)
    train_data, valid_data, test_data = data_preparation(config, data)
    model_ = get_model(model)(config, train_data.dataset)
    return config, train_data, valid_data, model_
