"""Data handling: the paper's user-split evaluation protocol for RecBole."""

from recbole_umi import compat

compat.apply()  # before anything imports RecBole

from recbole_umi.data.protocol import (  # noqa: E402
    ProtocolConfigError,
    UserSplitDataset,
    UserSplitEvalDataLoader,
    create_dataset,
    data_preparation,
)

__all__ = [
    "ProtocolConfigError",
    "UserSplitDataset",
    "UserSplitEvalDataLoader",
    "create_dataset",
    "data_preparation",
]
