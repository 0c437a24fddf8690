"""Data handling: the paper's user-split evaluation protocol for RecBole."""

from recbole_umi.data.protocol import (
    EVAL_PROTOCOLS,
    ProtocolConfigError,
    UserSplitDataset,
    UserSplitEvalDataLoader,
    create_dataset,
    data_preparation,
    paper_metric_names,
)

__all__ = [
    "EVAL_PROTOCOLS",
    "ProtocolConfigError",
    "UserSplitDataset",
    "UserSplitEvalDataLoader",
    "create_dataset",
    "data_preparation",
    "paper_metric_names",
]
