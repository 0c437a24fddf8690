"""History windows gathered per batch give exactly the rows that were materialised before
(the reference below is the earlier code), on ml-100k at T = 50."""

import numpy as np
import pytest
import torch
from recbole.utils import init_seed

from recbole_umi.config import Config
from recbole_umi.data import create_dataset, data_preparation


def materialised(dataset, targets: np.ndarray, starts: np.ndarray, fields: list[str]) -> dict:
    """The earlier UserSplitDataset._rows: every row's T-long list of each field, stored."""
    max_length = dataset.max_item_list_len
    lengths = np.minimum(targets - starts, max_length)
    offsets = np.arange(max_length)
    positions = (targets - lengths)[:, None] + offsets[None, :]
    valid = torch.from_numpy(offsets[None, :] < lengths[:, None])
    positions = torch.from_numpy(np.where(valid.numpy(), positions, 0))
    rows = {dataset.item_list_length_field: torch.from_numpy(lengths.astype(np.int64))}
    for field in fields:
        values = dataset.inter_feat[field][positions]
        mask = valid.view(*valid.shape, *([1] * (values.dim() - 2)))
        rows[getattr(dataset, f"{field}_list_field")] = values * mask.to(values.dtype)
    return rows


@pytest.mark.parametrize("model, fields", [("UMI", ["item_id"]), ("SASRec", ["item_id", "rating", "timestamp"])])
def test_lazy_rows_equal_the_materialised_ones(tmp_path, monkeypatch, model, fields):
    monkeypatch.chdir(tmp_path)
    config = Config(model, "ml-100k", config_dict={"state": "ERROR", "MAX_ITEM_LIST_LENGTH": 50,
                                                    "train_neg_sample_args": None, "eval_protocol": "user_split",
                                                    "load_col": {"inter": ["user_id", "item_id", "rating", "timestamp"],
                                                                 "user": ["user_id", "age", "gender", "occupation"]}})
    init_seed(config["seed"], config["reproducibility"])
    dataset = create_dataset(config)
    loaders = data_preparation(config, dataset)
    for loader in loaders:
        split = loader.dataset
        targets = split.inter_feat["_history_target"].numpy()
        starts = split.inter_feat["_history_user_start"].numpy()
        expected = materialised(dataset, targets, starts, fields)
        got = split.__getitem__(np.arange(len(split)), join=False)
        list_fields = {f"{f}_list" for f in ["item_id", "rating", "timestamp"]}
        assert {k for k in got.interaction if k in list_fields} == {f"{f}_list" for f in fields}  # only those read
        for name, values in expected.items():
            assert torch.equal(got[name], values), name
        # the rows' own fields are the targets' rows of the sorted table
        assert torch.equal(got["item_id"], dataset.inter_feat["item_id"][torch.from_numpy(targets)])
        assert "_history_target" not in got
    # a training row stores 2 internal columns, no T-long lists
    assert not any(name.endswith("_list") for name in loaders[0].dataset.inter_feat.columns)
