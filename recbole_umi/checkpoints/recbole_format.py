"""Checkpoints in RecBole's own format, converted once into this package's format.

RecBole's trainer pickles its whole ``Config`` into every checkpoint (so did recbole-umi
before it had a format of its own). Reading such a file runs whatever the pickle says, so
:func:`convert_trusted_recbole_checkpoint` is the one place recbole-umi reads a file with
``torch.load(weights_only=False)``, and only on a file the user names and trusts.
"""

from __future__ import annotations

from recbole_umi import compat

compat.apply()  # the file's pickle imports RecBole's classes while it is read

from pathlib import Path  # noqa: E402

import torch  # noqa: E402

from recbole_umi import __version__  # noqa: E402
from recbole_umi.checkpoints.content import encode_other_parameter, plain_config  # noqa: E402
from recbole_umi.checkpoints.format import CheckpointError, write_checkpoint  # noqa: E402

__all__ = ["convert_trusted_recbole_checkpoint"]


def convert_trusted_recbole_checkpoint(src, dst) -> Path:
    """Rewrite a checkpoint in RecBole's own format (a pickled Config) as a safe one.

    TRUSTS ``src``: it is read with ``torch.load(weights_only=False)``, which runs any code the
    file was made to run. Use it only on a file you wrote yourself or got from a source you
    trust; it is the one place recbole-umi reads a file that way, and only the file named
    here. ``dst`` then holds plain data only and loads anywhere without trust.

    RecBole's checkpoints record neither the dataset's ids (so :func:`recbole_umi.load` cannot
    check the data, and says so) nor random states or the best validation result (so resuming
    from ``dst`` continues training but does not repeat an uninterrupted run exactly).

    The weights keep their names. Files recbole-umi wrote in RecBole's format before its
    towers (UMI's and MIND's ``eval_routing_logits``, ablations with their switched-off
    networks) convert, but loading them fails with a :class:`CheckpointError` naming the
    weights that do not fit: no such file is kept anywhere, so their renaming was dropped.
    """
    src, dst = Path(src), Path(dst)
    if not src.is_file():
        raise CheckpointError(src, "no such file")
    old = torch.load(src, map_location="cpu", weights_only=False)  # trusted: see the docstring
    config = old["config"]
    write_checkpoint(dst, {
        "kind": "best",
        "recbole_umi_version": __version__,
        "torch_version": str(torch.__version__),
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
        "converted_from": str(src),
    })
    return dst
