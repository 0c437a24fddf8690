"""What a checkpoint records, and putting it back: the config as plain data and the settings
a new config is built from, the dataset's ids and their check, every random state a
training epoch draws from, the model's weights and other parameters.

Imports torch and numpy, not RecBole.
"""

from __future__ import annotations

import copy
import os
import random
from logging import getLogger
from pathlib import Path

import numpy as np
import torch

from recbole_umi.checkpoints.format import CheckpointError, error_summary
from recbole_umi.plain import plain_data
from recbole_umi.settings import migrate_saved_settings

__all__ = ["plain_config", "rebuild_settings", "dataset_ids", "check_dataset_ids", "interactions_digest",
           "check_interactions", "rng_state", "restore_rng_state",
           "encode_other_parameter", "decode_other_parameter", "load_model_state"]

# Config keys that say where the training machine kept things or how it ran: not saved, a
# rebuilt config takes them from the caller or the defaults. (`local_rank` would even start
# distributed training when fed back.)
_NOT_SAVED = {
    "checkpoint_dir", "gpu_id", "use_gpu", "device", "local_rank", "single_spec", "nproc",
    "world_size", "offset", "ip", "port",
}
# Keys RecBole derives while building a Config (from the model class, the metrics, the eval
# mode): saved for the record, never fed back, since RecBole would misread its own outputs.
_DERIVED = {
    "model", "dataset", "MODEL_TYPE", "MODEL_INPUT_TYPE", "eval_type", "valid_metric_bigger",
    "valid_neg_sample_args", "test_neg_sample_args",
}


def plain_config(config) -> dict:
    """The resolved settings of ``config`` (plugin or RecBole ``Config``) as plain data,
    without the keys of :data:`_NOT_SAVED`; ``data_path`` made absolute."""
    plain = {}
    for key, value in config.final_config_dict.items():
        if key in _NOT_SAVED:
            continue
        try:
            plain[str(key)] = plain_data(value, where=f"config key {key!r}")
        except TypeError as error:
            getLogger().warning(f"checkpoint: {error}; not saved")
    if isinstance(plain.get("data_path"), str):
        plain["data_path"] = os.path.abspath(plain["data_path"])
    return plain


def rebuild_settings(saved_config: dict) -> dict:
    """The saved settings as input for a new Config: without what RecBole derives, and with
    the two values RecBole rewrites while building put back in their input form."""
    # _NOT_SAVED too: a crafted file must not bring back local_rank, paths of pickles, ...
    settings = {
        key: copy.deepcopy(value) for key, value in saved_config.items() if key not in _DERIVED | _NOT_SAVED
    }
    settings = migrate_saved_settings(saved_config.get("model"), settings)  # keys a model reads under a new name
    negatives = settings.get("train_neg_sample_args")
    if isinstance(negatives, dict) and negatives.get("distribution") == "none":
        settings["train_neg_sample_args"] = None  # RecBole's spelling of "no negative sampling"
    if isinstance(settings.get("data_path"), str):  # RecBole appends the dataset's name
        settings["data_path"] = os.path.dirname(settings["data_path"].rstrip("/\\"))
        packaged = Path(settings["data_path"]).parts[-2:] == ("recbole", "dataset_example")
        if saved_config.get("dataset") == "ml-100k" and packaged:  # RecBole's copy on the machine it trained on:
            del settings["data_path"]  # this machine's RecBole has its own
    return settings


def dataset_ids(dataset) -> dict[str, list[str]]:
    """Every token field's tokens in id order (index 0 is RecBole's ``[PAD]``)."""
    return {str(field): [str(token) for token in tokens] for field, tokens in dataset.field2id_token.items()}


def interactions_digest(dataset) -> str:
    """SHA-256 of a loaded dataset's interactions as the model sees them: each one's user id,
    item id and (where there is one) time, in the table's order, after RecBole's filters and
    id mapping. The same ids with other interactions (a changed file, another filter) give
    another digest."""
    import hashlib

    import numpy as np

    table = dataset.inter_feat
    digest = hashlib.sha256()
    for field in (dataset.uid_field, dataset.iid_field, dataset.time_field):
        if field is None or field not in table:
            continue
        column = table[field]
        values = column.to_numpy() if hasattr(column, "to_numpy") else column.numpy()
        digest.update(field.encode() + b"\0" + np.ascontiguousarray(values, dtype=np.float64).tobytes())
    return digest.hexdigest()


def check_interactions(saved: str | None, current: str | None, path, refuse: bool) -> None:
    """The interactions a checkpoint was trained on against those loaded now: a
    :class:`CheckpointError` (``refuse``: resuming, which must repeat the run) or a warning
    (evaluating the model on other data is allowed, but not silently). Checkpoints written
    before the digest was kept (``saved`` None) pass."""
    if saved is None or current is None or saved == current:
        return
    problem = ("the interactions differ from those the model was trained on, under the same ids (a changed "
               ".inter file, other filters)")
    if refuse:
        raise CheckpointError(path, f"{problem}: a resumed run would not repeat the interrupted one; point data_path "
                                    "to the dataset it was trained on")
    getLogger().warning(f"checkpoint {path}: {problem}; the metrics are those of the model on these data")


def check_dataset_ids(saved: dict | None, dataset, path) -> None:
    """:class:`CheckpointError` unless ``dataset`` maps every saved token field's tokens to
    the same ids as the data the checkpoint was trained on."""
    if saved is None:
        getLogger().warning(
            f"checkpoint {path} records no id mappings (converted from RecBole's format): "
            "nothing checks that these are the data it was trained on"
        )
        return
    current = dataset_ids(dataset)
    for field, tokens in saved.items():
        here = current.get(field)
        if here == tokens:
            continue
        if here is None:
            detail = f"the field {field!r} is not in them"
        elif len(here) != len(tokens):
            detail = f"{field} has {len(here)} ids here, {len(tokens)} in the checkpoint"
        else:
            index = next(i for i, (a, b) in enumerate(zip(here, tokens)) if a != b)
            detail = f"{field} {index} is the token {here[index]!r} here, {tokens[index]!r} in the checkpoint"
        raise CheckpointError(
            path, f"the data differ from those the model was trained on ({detail}); "
            "point data_path to the dataset it was trained on"
        )


def _loader_generators(loader) -> dict[str, torch.Generator]:
    """Every ``torch.Generator`` a data loader keeps as an attribute (``generator``, which
    shuffles; ``target_generator``, which draws one-per-user targets; ...)."""
    return {name: value for name, value in vars(loader).items() if isinstance(value, torch.Generator)}


def rng_state(loaders: dict) -> dict:
    """Every random state a training epoch draws from: torch (and CUDA), numpy, Python's
    ``random`` and the generators of ``loaders`` (``{"train": loader, ...}``)."""
    _, keys, position, has_gauss, gauss = np.random.get_state()
    version, internal, gauss_next = random.getstate()
    return {
        "torch": torch.get_rng_state(),
        "cuda": list(torch.cuda.get_rng_state_all()) if torch.cuda.is_available() else [],
        "numpy": {"keys": keys.tolist(), "pos": int(position), "has_gauss": int(has_gauss), "gauss": float(gauss)},
        "python": {"version": version, "internal": list(internal), "gauss_next": gauss_next},
        "loaders": {
            name: {attr: generator.get_state() for attr, generator in _loader_generators(loader).items()}
            for name, loader in loaders.items()
            if loader is not None
        },
    }


def restore_rng_state(state: dict, loaders: dict) -> None:
    """Set every random state :func:`rng_state` recorded; generators of ``loaders`` that were
    not recorded (other loader classes) are left as they are, with a warning."""
    torch.set_rng_state(state["torch"])
    if state["cuda"] and torch.cuda.is_available() and len(state["cuda"]) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all(state["cuda"])
    numpy_state = state["numpy"]
    np.random.set_state(
        ("MT19937", np.array(numpy_state["keys"], dtype=np.uint32), numpy_state["pos"], numpy_state["has_gauss"], numpy_state["gauss"])
    )
    python_state = state["python"]
    random.setstate((python_state["version"], tuple(python_state["internal"]), python_state["gauss_next"]))
    for name, loader in loaders.items():
        if loader is None:
            continue
        saved = state["loaders"].get(name, {})
        for attr, generator in _loader_generators(loader).items():
            if attr in saved:
                generator.set_state(saved[attr])
            else:
                getLogger().warning(f"resume: the {name} loader's {attr} was not saved and starts afresh")


def encode_other_parameter(values: dict | None) -> dict | None:
    """A model's ``other_parameter()`` (RecBole: tensors, numpy arrays, scipy sparse
    matrices) as plain data."""
    if values is None:
        return None
    encoded = {}
    for name, value in values.items():
        if isinstance(value, np.ndarray):
            encoded[name] = {"numpy": torch.from_numpy(np.ascontiguousarray(value))}
        elif hasattr(value, "tocoo") and hasattr(value, "format"):  # a scipy.sparse matrix
            coo = value.tocoo()
            encoded[name] = {
                "scipy_sparse": value.format, "shape": list(coo.shape), "data": torch.from_numpy(coo.data),
                "row": torch.from_numpy(coo.row.astype(np.int64)), "col": torch.from_numpy(coo.col.astype(np.int64)),
            }
        else:
            encoded[name] = plain_data(value, tensors=True, where=f"the model's other parameter {name!r}")
    return encoded


def decode_other_parameter(encoded: dict | None) -> dict | None:
    """What :func:`encode_other_parameter` encoded, as the model's ``other_parameter()`` had it."""
    if encoded is None:
        return None
    decoded = {}
    for name, value in encoded.items():
        if isinstance(value, dict) and "numpy" in value:
            value = value["numpy"].numpy()
        elif isinstance(value, dict) and "scipy_sparse" in value:
            import scipy.sparse as sparse

            matrix = sparse.coo_matrix((value["data"].numpy(), (value["row"].numpy(), value["col"].numpy())), shape=tuple(value["shape"]))
            value = matrix.asformat(value["scipy_sparse"])
        decoded[name] = value
    return decoded


def load_model_state(model: torch.nn.Module, checkpoint: dict, path) -> None:
    """Give ``model`` the checkpoint's weights and other parameters; :class:`CheckpointError`
    (naming ``path``) when they do not fit it."""
    try:
        model.load_state_dict(checkpoint["state_dict"])
    except RuntimeError as error:
        raise CheckpointError(
            path, f"its weights do not fit the {type(model).__name__} built from its config ({error_summary(error, 2)})"
        ) from None
    model.load_other_parameter(decode_other_parameter(checkpoint["other_parameter"]))
