"""Using a checkpoint: the Config it was trained with (:func:`checkpoint_config`, also for
``run(resume=...)``), the model ready to score on the same split (:func:`load`,
``recbole_umi.load``) and its test as a run tests it (:func:`evaluate_checkpoint`, the
CLI's ``--evaluate``). Every file is read weights-only (:mod:`recbole_umi.checkpoint`).
"""

from __future__ import annotations

from recbole_umi import compat

compat.apply()  # before anything imports RecBole

import copy  # noqa: E402
from dataclasses import dataclass  # noqa: E402
from logging import getLogger  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

import torch  # noqa: E402
from recbole.utils import set_color  # noqa: E402

from recbole_umi.checkpoints.content import (  # noqa: E402
    check_dataset_ids,
    check_interactions,
    load_model_state,
    rebuild_settings,
)
from recbole_umi.checkpoints.format import CheckpointError, read_checkpoint  # noqa: E402
from recbole_umi.checkpoints.trainer import get_trainer  # noqa: E402
from recbole_umi.config import Config  # noqa: E402
from recbole_umi.evaluation import attach_item_categories, interest_diagnostics  # noqa: E402
from recbole_umi.pipeline import build  # noqa: E402
from recbole_umi.run_log import init_run_logger  # noqa: E402

__all__ = ["checkpoint_config", "LoadedCheckpoint", "load", "evaluate_checkpoint"]


class _CheckpointConfig(Config):
    """The plugin's Config with a checkpoint's settings as the lowest user layer: above
    every default, below config files, ``config_dict`` and the command line."""

    def __init__(self, saved_settings: dict, *args, **kwargs):
        self._saved_settings = saved_settings
        self._given_files: dict = {}
        super().__init__(*args, **kwargs)

    def _load_config_files(self, file_list):
        self._given_files = super()._load_config_files(file_list)
        return {**copy.deepcopy(self._saved_settings), **self._given_files}

    def _given_settings(self) -> dict:
        # not the saved ones: RecBole kept any key of a dict setting (eval_args), read or not
        return {**self._given_files, **self.variable_config_dict, **self.cmd_config_dict}


def _config_from(checkpoint: dict, path, model=None, dataset=None, config_file_list=None, config_dict=None, cmd_args=None):
    for what, given in (("model", model), ("dataset", dataset)):
        given = getattr(given, "__name__", given)
        if given is not None and given != checkpoint[what]:
            raise CheckpointError(path, f"holds a {what} {checkpoint[what]!r}, not {given!r}")
    return _CheckpointConfig(
        rebuild_settings(checkpoint["config"]), checkpoint["model"], checkpoint["dataset"],
        config_file_list, config_dict, cmd_args,
    )


def checkpoint_config(path, model=None, dataset=None, config_file_list=None, config_dict=None, cmd_args=None):
    """The Config a checkpoint was trained with, rebuilt from its saved settings.

    ``config_file_list``, ``config_dict`` and ``cmd_args`` override those settings, in that
    order (e.g. ``data_path``, or a larger ``epochs`` for resuming); ``model`` and
    ``dataset``, if given, must be the checkpoint's.
    """
    return _config_from(read_checkpoint(path), path, model, dataset, config_file_list, config_dict, cmd_args)


@dataclass
class LoadedCheckpoint:
    """What :func:`load` returns.

    Attributes:
        config: the Config the model was trained with (with the caller's overrides).
        model: the model with the saved weights, in eval mode, on ``config["device"]``.
        dataset: the dataset, with the ids the model was trained on (checked).
        train_data, valid_data, test_data: the loaders of the same split as in training.
        info: ``path``, ``kind``, ``epoch``, ``best_valid_score``, ``best_valid_result`` and
            ``code``, the code that wrote the file (None where the file does not say).
    """

    config: Any
    model: torch.nn.Module
    dataset: Any
    train_data: Any
    valid_data: Any
    test_data: Any
    info: dict


def load(path, data_path=None, config_file_list=None, config_dict=None, cmd_args=None, model=None, dataset=None) -> LoadedCheckpoint:
    """A saved model ready to score users, rebuilt from its checkpoint without running code.

    The config is rebuilt from the saved settings, the dataset from its files (its ids are
    checked against the saved ones: :class:`CheckpointError` if the data differ) and split as
    in training, the model built from the config and given the saved weights. Seeds are set
    as ``run`` sets them, so the process's random state changes.

    Args:
        path: a checkpoint written by a plugin trainer (best or ``-last``).
        data_path: the folder holding ``<dataset>/``, as ``--data_path`` in a run; default:
            where the data were in training.
        config_file_list, config_dict, cmd_args: override saved settings (evaluation
            settings such as ``topk``; settings that change the model make loading fail).
        model, dataset: if given, must be the checkpoint's.

    Example::

        loaded = recbole_umi.load("saved/UMI-Jan-01-2025_00-00-00.pth")
        interests = loaded.model(next(iter(loaded.test_data))[0])     # B x K x d
    """
    path = Path(path)
    checkpoint = read_checkpoint(path)
    overrides = dict(config_dict or {})
    if data_path is not None:
        overrides["data_path"] = str(data_path)
    config = _config_from(checkpoint, path, model, dataset, config_file_list, overrides, cmd_args)
    # as run builds: the same split and loaders
    dataset_, train_data, valid_data, test_data, model_ = build(
        config, check_dataset=lambda dataset, digest: (
            check_dataset_ids(checkpoint["ids"], dataset, path),
            check_interactions(checkpoint.get("interactions"), digest, path, refuse=False))
    )
    load_model_state(model_, checkpoint, path)
    model_.eval()
    info = {"path": str(path), **{key: checkpoint[key] for key in ("kind", "epoch", "best_valid_score", "best_valid_result")},
            "code": checkpoint.get("code")}  # None: a file written before checkpoints recorded their code
    return LoadedCheckpoint(config, model_, dataset_, train_data, valid_data, test_data, info)


def evaluate_checkpoint(path, data_path=None, config_file_list=None, config_dict=None, cmd_args=None, model=None, dataset=None) -> dict:
    """Test a saved model as a run tests its best epoch (the CLI's ``--evaluate``).

    Arguments as :func:`load`. Returns ``{"best_valid_result", "test_result",
    "interest_diagnostics", "checkpoint", "eval_protocol"}``: the validation result recorded
    in the checkpoint, the test result computed now by RecBole's evaluator, the interest
    diagnostics on the test users (:func:`recbole_umi.evaluation.interest_diagnostics`, as a
    run records them), ``LoadedCheckpoint.info`` and the protocol.
    """
    loaded = load(path, data_path, config_file_list, config_dict, cmd_args, model, dataset)
    config = loaded.config
    init_run_logger(config)
    trainer = get_trainer(config["MODEL_TYPE"], config["model"])(config, loaded.model)
    attach_item_categories(trainer.eval_collector, config, loaded.dataset)
    trainer.eval_collector.data_collect(loaded.train_data)  # as fit does, for popularity-based metrics
    test_result = trainer.evaluate(loaded.test_data, load_best_model=False, show_progress=config["show_progress"])
    getLogger().info(set_color("test result", "yellow") + f": {test_result}")
    return {
        "best_valid_result": loaded.info["best_valid_result"],
        "test_result": test_result,
        "interest_diagnostics": interest_diagnostics(loaded.model, loaded.test_data),
        "checkpoint": loaded.info,
        "eval_protocol": config["eval_protocol"],
    }
