"""The steps every run shares, in one place: seeds, dataset, the protocol's loaders, model.

:func:`recbole_umi.run` and :func:`recbole_umi.load` build through :func:`build`, so that a
reloaded model sees the same split and the same loaders as the run that trained it.
"""

from __future__ import annotations

from recbole_umi import compat

compat.apply()  # before anything imports RecBole

from recbole.utils import init_seed  # noqa: E402

from recbole_umi.data import create_dataset, data_preparation  # noqa: E402
from recbole_umi.registry import get_model  # noqa: E402

__all__ = ["build"]


def build(config, check_dataset=None):
    """The dataset, its train / validation / test loaders and a new model for ``config``.

    Args:
        config: a :class:`recbole_umi.Config`.
        check_dataset: called with the loaded dataset before the loaders are built (e.g. to
            compare its ids with a checkpoint's).

    Returns:
        ``(dataset, train_data, valid_data, test_data, model)``, the model on
        ``config["device"]``.
    """
    init_seed(config["seed"], config["reproducibility"])  # the split and the loaders' draws
    dataset = create_dataset(config)
    if check_dataset is not None:
        check_dataset(dataset)
    train_data, valid_data, test_data = data_preparation(config, dataset)
    init_seed(config["seed"] + config["local_rank"], config["reproducibility"])  # the model's initial weights
    model = get_model(config["model"])(config, train_data.dataset).to(config["device"])
    return dataset, train_data, valid_data, test_data, model
