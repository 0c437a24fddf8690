"""Checkpoints that hold only plain data: saving, loading and resuming without running code.

RecBole 1.2.1 pickles its whole ``Config`` object into every checkpoint, and reading such a
file back needs ``torch.load(weights_only=False)``, which runs whatever a pickled
``__reduce__`` in the file says. The checkpoints written here hold tensors and plain Python
values only (dict, list, tuple, str, int, float, bool, None), which torch's weights-only
unpickler reads without running anything; every read is weights-only.

A checkpoint is a ``torch.save``'d dict:

- ``format`` (:data:`FORMAT`), ``version`` (:data:`VERSION`), ``kind`` (``"best"`` or
  ``"last"``), ``model``, ``dataset``, ``recbole_umi_version``, ``torch_version``, ``code``
  (:func:`recbole_umi.provenance.code_version` of the process that wrote the file: the code
  that trained up to this epoch, the resuming code for a resumed run's later epochs; None in a
  converted file and absent from files written before 2026-12-06; :func:`load` returns it in
  ``info["code"]``);
- ``config``: the resolved config as YAML/JSON-safe values (enums by name, no
  ``torch.device``, no keys that only say where the training machine kept things or how it
  ran: ``checkpoint_dir``, ``gpu_id``, ``device``, ...); ``data_path`` is kept, absolute, as
  the default place to find the data again. :func:`checkpoint_config` rebuilds the same
  ``Config`` from it;
- ``ids``: for every token field of the dataset (user, item, profile token fields), its
  tokens in id order, so that the data a checkpoint is used with are checked to be the data
  it was trained on (ids are positions in the embedding tables);
- ``state_dict``, ``other_parameter``: the model, under RecBole's names, so that RecBole's
  own ``Trainer.evaluate(model_file=...)`` reads these files too;
- for resuming: ``epoch``, ``cur_step`` (epochs without improvement), ``best_valid_score``,
  ``best_valid_result``, ``optimizer``, ``rng`` (torch, CUDA, numpy and Python ``random``
  states and every ``torch.Generator`` of the training and validation loaders, e.g.
  ``TrainDataLoader.generator``, ``OnePerUserTrainDataLoader.target_generator``) and
  ``best_file`` (the name of the run's best checkpoint, in the same folder);
- ``digest``: SHA-256 of everything else. torch's zip reader checks no checksum: a flipped
  byte inside a tensor loads silently as another weight (measured: about half of all
  single-byte flips of a small file), so :func:`read_checkpoint` checks this one.

Why ``torch.save`` and not safetensors + a JSON header: the optimizer state and the random
states are nested dicts and lists of tensors and numbers that safetensors cannot hold
without a second, hand-made format beside it, and safetensors is not a dependency; a dict
of tensors and plain values written by ``torch.save`` loads with ``weights_only=True``.

Files: a trainer from :func:`get_trainer` (RecBole's trainer for the model, with
:class:`SafeCheckpointTrainer` mixed in; plugin and RecBole models alike) writes the best
epoch where RecBole does, ``<checkpoint_dir>/<model>-<time>.pth``, and the end of every
epoch to ``<model>-<time>-last.pth`` beside it (:func:`last_checkpoint_path`). Both hold the
full training state of their epoch; resuming from the ``-last`` file continues exactly where
the run stopped and keeps writing the same two files.

Entry points: :func:`load` (config, model in eval mode, the same data split),
:func:`evaluate_checkpoint` (the CLI's ``--evaluate``), ``run(..., resume=PATH)`` (the CLI's
``--resume``), and :func:`convert_recbole_checkpoint` for RecBole-format files one trusts
and has loaded oneself. Every problem with a file is a :class:`CheckpointError` naming it.

This module is the public API; the code lives in :mod:`recbole_umi.checkpoints`, one
concern a module: ``format`` (the file, its digest, weights-only reading, refusals),
``content`` (config, ids, random states, model state), ``trainer`` (saving and resuming),
``loading`` (:func:`load`, :func:`evaluate_checkpoint`, :func:`checkpoint_config`) and
``recbole_format`` (the conversion of a loaded RecBole checkpoint).
"""

from __future__ import annotations

from recbole_umi import compat

compat.apply()  # before anything imports RecBole

from recbole_umi.checkpoints.content import (  # noqa: E402
    check_dataset_ids,
    dataset_ids,
    plain_config,
    rebuild_settings,
    restore_rng_state,
    rng_state,
)
from recbole_umi.checkpoints.format import (  # noqa: E402
    FORMAT,
    VERSION,
    CheckpointError,
    last_checkpoint_path,
    read_checkpoint,
    write_checkpoint,
)
from recbole_umi.checkpoints.loading import LoadedCheckpoint, checkpoint_config, evaluate_checkpoint, load  # noqa: E402
from recbole_umi.checkpoints.recbole_format import convert_recbole_checkpoint  # noqa: E402
from recbole_umi.checkpoints.trainer import SafeCheckpointTrainer, get_trainer, safe_trainer  # noqa: E402

__all__ = [
    "CheckpointError",
    "FORMAT",
    "VERSION",
    "LoadedCheckpoint",
    "SafeCheckpointTrainer",
    "get_trainer",
    "safe_trainer",
    "last_checkpoint_path",
    "write_checkpoint",
    "read_checkpoint",
    "plain_config",
    "rebuild_settings",
    "checkpoint_config",
    "dataset_ids",
    "check_dataset_ids",
    "rng_state",
    "restore_rng_state",
    "load",
    "evaluate_checkpoint",
    "convert_recbole_checkpoint",
]
