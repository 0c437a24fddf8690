"""Data handling: the paper's user-split evaluation protocol for RecBole (protocol.py: the
dataset and its rows; loaders.py: the loaders; split.py: the split's arithmetic; checks.py:
data refused or warned about; profile_noise.py: Table 5's noise)."""

from recbole_umi import compat

compat.apply()  # before anything imports RecBole

from recbole_umi.data.loaders import (  # noqa: E402
    UserSplitEvalDataLoader,
    data_preparation,
    eval_loaders,
    history_curve_loaders,
)
from recbole_umi.data.protocol import ProtocolConfigError, UserSplitDataset, create_dataset  # noqa: E402

__all__ = [
    "ProtocolConfigError",
    "UserSplitDataset",
    "UserSplitEvalDataLoader",
    "create_dataset",
    "data_preparation",
    "eval_loaders",
    "history_curve_loaders",
]
