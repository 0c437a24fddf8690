"""recbole_umi.plain: the one conversion to plain data (configs, results, checkpoints)."""

from __future__ import annotations

import json
import subprocess
import sys
from collections import OrderedDict
from enum import Enum
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from recbole_umi.plain import plain_data

REPO_ROOT = Path(__file__).resolve().parent.parent


class Kind(Enum):
    SEQUENTIAL = 2


def test_yaml_and_json_data_round_trip():
    value = {"lr": np.float32(0.5), "k": np.int64(3), "on": np.bool_(True), "kind": Kind.SEQUENTIAL,
             "device": torch.device("cpu"), "pair": (1, 2), 7: [np.float64(0.25), None, "x"]}
    plain = plain_data(value)
    assert plain == {"lr": 0.5, "k": 3, "on": True, "kind": "SEQUENTIAL", "device": "cpu", "pair": [1, 2],
                     "7": [0.25, None, "x"]}
    assert [type(plain[key]) for key in ("lr", "k", "on")] == [float, int, bool]
    assert yaml.safe_load(yaml.safe_dump(plain)) == plain and json.loads(json.dumps(plain)) == plain
    with pytest.raises(TypeError, match=r"config\['w'\]: a tensor"):
        plain_data({"w": torch.zeros(2)}, where="config")


def test_checkpoint_data_keep_tensors_tuples_and_state_dict_metadata():
    state = torch.nn.Linear(2, 1).state_dict()
    plain = plain_data({"state_dict": state, "betas": (0.9, 0.999), "step": {0: np.int64(4)}}, tensors=True)
    assert isinstance(plain["state_dict"], OrderedDict) and plain["state_dict"]._metadata == state._metadata
    assert torch.equal(plain["state_dict"]["weight"], state["weight"])
    assert plain["betas"] == (0.9, 0.999) and plain["step"] == {0: 4} and type(plain["step"][0]) is int
    with pytest.raises(TypeError, match=r"checkpoint: key \(1, 2\) \(tuple\) is neither str nor int"):
        plain_data({(1, 2): 0}, tensors=True, where="checkpoint")
    with pytest.raises(TypeError, match=r"checkpoint\['x'\]: set is not plain data"):
        plain_data({"x": {1}}, tensors=True, where="checkpoint")


def test_the_module_is_light():
    code = "import sys, recbole_umi.plain; print(sorted({'torch', 'numpy', 'recbole'} & set(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, cwd=REPO_ROOT)
    assert out.returncode == 0 and out.stdout.strip() == "[]", out.stderr[-1500:]
