"""Checkpoints in RecBole's own format, converted once into this package's format.

RecBole's trainer pickles its whole ``Config`` into every checkpoint (so did recbole-umi
before it had a format of its own), with pickle protocol 4, which weights-only loading cannot
read at all. Reading such a file runs whatever the pickle says, and recbole-umi never does:
the user loads a file they trust themselves (``torch.load(path, weights_only=False)``, their
decision, in their code) and :func:`convert_recbole_checkpoint` writes what it holds as a safe
checkpoint.
"""

from __future__ import annotations

from recbole_umi import compat

compat.apply()  # the file's pickle imports RecBole's classes while it is read

from pathlib import Path  # noqa: E402

import torch  # noqa: E402

from recbole_umi import __version__  # noqa: E402
from recbole_umi.checkpoints.content import encode_other_parameter, plain_config  # noqa: E402
from recbole_umi.checkpoints.format import CheckpointError, write_checkpoint  # noqa: E402

__all__ = ["convert_recbole_checkpoint"]

_ENTRIES = ("config", "epoch", "cur_step", "best_valid_score", "state_dict", "optimizer")


def convert_recbole_checkpoint(old: dict, dst, source=None) -> Path:
    """Write a checkpoint in RecBole's own format, already loaded, as a safe one.

    ``old`` is what ``torch.load(path, weights_only=False)`` returned for a RecBole checkpoint
    you trust: that call runs any code the file was made to run, so only you make it, on a file
    you wrote yourself or got from a source you trust (recbole-umi reads every file
    weights-only). ``dst`` then holds plain data only and loads anywhere without trust;
    ``source`` (the old file's name) is recorded in it as ``converted_from``.

    RecBole's checkpoints record neither the dataset's ids (so :func:`recbole_umi.load` cannot
    check the data, and says so) nor random states or the best validation result (so resuming
    from ``dst`` continues training but does not repeat an uninterrupted run exactly).

    The weights keep their names. Files recbole-umi wrote in RecBole's format before its
    towers (UMI's and MIND's ``eval_routing_logits``, ablations with their switched-off
    networks) convert, but loading them fails with a :class:`CheckpointError` naming the
    weights that do not fit: no such file is kept anywhere, so their renaming was dropped.
    """
    dst = Path(dst)
    if isinstance(old, (str, Path)):
        raise CheckpointError(Path(old), "convert_recbole_checkpoint takes the loaded checkpoint, not its path: "
                                         "torch.load(path, map_location='cpu', weights_only=False) it yourself if you "
                                         "trust the file")
    missing = [key for key in _ENTRIES if not isinstance(old, dict) or key not in old]
    if missing:
        raise CheckpointError(source or dst, f"is not a loaded RecBole checkpoint: {', '.join(missing)} missing (pass "
                                             "what torch.load(path, weights_only=False) returned for the file)")
    config = old["config"]
    write_checkpoint(dst, {
        "kind": "best",
        "recbole_umi_version": __version__,
        "torch_version": str(torch.__version__),
        "code": None,  # the code that trained these weights is not known
        "model": config["model"],
        "dataset": config["dataset"],
        "config": plain_config(config),
        "ids": None,
        "epoch": old["epoch"],
        "cur_step": old["cur_step"],
        "best_valid_score": float(old["best_valid_score"]),
        "best_valid_result": None,
        "state_dict": old["state_dict"],
        "other_parameter": encode_other_parameter(old.get("other_parameter")),
        "optimizer": old["optimizer"],
        "rng": None,
        "best_file": dst.name,
        "converted_from": None if source is None else str(source),
    })
    return dst
