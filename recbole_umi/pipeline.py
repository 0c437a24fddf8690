"""The steps every run shares, in one place: seeds, dataset, the protocol's loaders, model.

:func:`recbole_umi.run` and :func:`recbole_umi.load` build through :func:`build`, so that a
reloaded model sees the same split and the same loaders as the run that trained it.
"""

from __future__ import annotations

from recbole_umi import compat

compat.apply()  # before anything imports RecBole

import os  # noqa: E402

import torch  # noqa: E402
from recbole.utils import init_seed  # noqa: E402

from recbole_umi.checkpoints.content import interactions_digest  # noqa: E402
from recbole_umi.data import create_dataset, data_preparation  # noqa: E402
from recbole_umi.model import MatchingRecommender  # noqa: E402
from recbole_umi.model.base import compile_step  # noqa: E402
from recbole_umi.registry import get_model  # noqa: E402
from recbole_umi.settings import SettingsError  # noqa: E402

__all__ = ["build", "check_tensor_sizes", "physical_memory"]


def physical_memory() -> int:
    """The machine's memory in bytes (0 where the system does not say)."""
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return 0


def device_memory(config) -> int:
    """The memory the model's tensors live in: the GPU's where ``config["device"]`` is one,
    else the machine's."""
    device = torch.device(config["device"]) if "device" in config and config["device"] is not None else None
    if device is not None and device.type == "cuda" and torch.cuda.is_available():
        return torch.cuda.get_device_properties(device).total_memory
    return physical_memory()


def check_tensor_sizes(config, n_items: int, n_train_rows: int, n_eval_rows: int, memory: int | None = None) -> None:
    """Refuse, before the model is built, settings whose largest tensors cannot fit in the
    machine's memory (a :class:`SettingsError` naming the setting, the size and the memory):
    the item table with Adam's two moments, the evaluation's ``B x K x n_items`` scores, the
    full softmax's ``B x n_items`` logits and the sampled softmax's ``B x (1 + n) x d``
    candidates (with ``shared_negatives``: the ``n x d`` shared ones and the ``B x K x (1 + n)``
    logits), each about three times over, for the gradients and the temporaries. The memory
    is the GPU's where the model trains on one. Plugin models only: RecBole's read other
    settings."""
    memory = device_memory(config) if memory is None else memory
    if not memory or "embedding_size" not in config or config["embedding_size"] is None:
        return
    d, k = config["embedding_size"], config["n_interests"] or 1
    train_rows = min(config["train_batch_size"], max(n_train_rows, 1))
    eval_rows = min(config["eval_batch_size"], max(n_eval_rows, 1))
    n = config["n_negatives"] or 0
    terms = [  # (bytes, the setting that makes it large, what)
        (3 * 4 * n_items * d, "embedding_size", f"the item table ({n_items} items x d = {d}) and Adam's moments"),
        (3 * 4 * eval_rows * k * n_items, "n_interests" if k > eval_rows else "eval_batch_size",
         f"the evaluation's scores ({eval_rows} users x K = {k} x {n_items} items)"),
        (3 * 4 * train_rows * n_items, "train_batch_size", f"the full softmax ({train_rows} rows x {n_items} items)")
        if config["loss_type"] == "full_softmax" else
        (3 * 4 * (n * d + train_rows * k * (1 + n)), "n_negatives",
         f"the shared negatives ({n} x d = {d}) and their logits ({train_rows} rows x K = {k} x {1 + n})")
        if config["shared_negatives"] else
        (3 * 4 * train_rows * (1 + n) * (d + k), max({"n_negatives": 1 + n, "embedding_size": d, "n_interests": k}.items(),
                                                    key=lambda factor: factor[1])[0],
         f"the sampled candidates ({train_rows} rows x {1 + n} x (d + K = {d + k}))"),
    ]
    size, key, what = max(terms, key=lambda term: term[0])
    if size > memory:
        raise SettingsError(key, config[key], f"needs about {size / 2**30:,.1f} GiB for {what}, more than this "
                                              f"machine's {memory / 2**30:.1f} GiB: make it smaller")


def build(config, check_dataset=None):
    """The dataset, its train / validation / test loaders and a new model for ``config``.

    Args:
        config: a :class:`recbole_umi.Config`.
        check_dataset: called with the loaded dataset and the digest of its interactions
            (:func:`recbole_umi.checkpoints.content.interactions_digest`) before the loaders
            are built (e.g. to compare them with a checkpoint's).

    Returns:
        ``(dataset, train_data, valid_data, test_data, model)``, the model on
        ``config["device"]``.
    """
    init_seed(config["seed"], config["reproducibility"])  # the split and the loaders' draws
    dataset = create_dataset(config)
    digest = interactions_digest(dataset)  # before the split reorders the table
    if check_dataset is not None:
        check_dataset(dataset, digest)
    train_data, valid_data, test_data = data_preparation(config, dataset)
    if issubclass(get_model(config["model"]), MatchingRecommender):
        check_tensor_sizes(config, dataset.item_num, len(train_data._dataset), len(test_data._dataset))
    for loader in (train_data, valid_data, test_data):
        loader._dataset.interactions_digest = digest  # what checkpoints record and check
    init_seed(config["seed"] + config["local_rank"], config["reproducibility"])  # the model's initial weights
    model = get_model(config["model"])(config, train_data.dataset).to(config["device"])
    compile_step(model, config)  # RecBole's own models (the plugin's compile their own loss)
    return dataset, train_data, valid_data, test_data, model
