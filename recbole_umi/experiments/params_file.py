"""RecBole's params-file format, read and checked for ``python -m recbole_umi.tune``: one
searched setting a line, ``learning_rate loguniform -8,-4``, ``n_interests choice [2,3,4]``,
``softmax_temperature uniform 0.5,1.5`` or ``quniform low,high,q``; ``#`` comments and blank
lines allowed. Light: yaml and the standard library.
"""

from __future__ import annotations

import math
from pathlib import Path

import yaml

__all__ = ["SPACE_TYPES", "ParamsFileError", "read_params_file", "space_ends", "hyperopt_vals"]

SPACE_TYPES = ("choice", "uniform", "quniform", "loguniform")


class ParamsFileError(ValueError):
    """A params file line that RecBole's HyperTuning would misread or that names no setting."""


def read_params_file(path) -> dict[str, tuple[str, object]]:
    """``{name: (type, values)}`` of a RecBole params file: a ``choice``'s list, the
    numbers of the other types. Blank lines and ``#`` comments are skipped."""
    space = {}
    for number, line in enumerate(Path(path).read_text().splitlines(), 1):
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        parts = line.split(None, 2)  # the values as written: spaces inside a choice's strings stay
        if len(parts) < 3 or parts[1] not in SPACE_TYPES:
            raise ParamsFileError(f"{path}:{number}: expected 'name {'|'.join(SPACE_TYPES)} values', got {line!r}")
        name, kind, text = parts
        try:
            values = yaml.safe_load(text) if kind == "choice" else [float(v) for v in text.split(",")]
        except (yaml.YAMLError, ValueError) as error:
            raise ParamsFileError(f"{path}:{number}: cannot read the values {text!r} ({error})") from None
        expected = {"uniform": 2, "loguniform": 2, "quniform": 3}.get(kind)
        if kind == "choice" and not (isinstance(values, list) and values):
            raise ParamsFileError(f"{path}:{number}: a choice needs a non-empty list like [1,2,3], got {text!r}")
        if expected and len(values) != expected:
            raise ParamsFileError(f"{path}:{number}: {kind} needs {expected} comma-separated numbers, got {text!r}")
        if expected and not all(math.isfinite(v) for v in values):
            raise ParamsFileError(f"{path}:{number}: {kind} needs finite numbers, got {text!r}")
        if expected and not values[0] < values[1]:
            raise ParamsFileError(f"{path}:{number}: {kind} needs low < high, got {text!r}")
        if kind == "quniform" and not values[2] > 0:
            raise ParamsFileError(f"{path}:{number}: quniform's step q must be above 0, got {text!r}")
        if name in space:
            raise ParamsFileError(f"{path}:{number}: {name} is searched twice")
        space[name] = (kind, values)
    if not space:
        raise ParamsFileError(f"{path} names no setting to search")
    return space


def space_ends(kind: str, values: list[float]) -> tuple[float, float]:
    """The smallest and largest values hyperopt can hand out for a ``uniform``,
    ``quniform`` or ``loguniform`` space, as floats (3.0 is no integer setting): quniform
    gives ``round(x / q) * q``, which may fall outside [low, high]."""
    if kind == "loguniform":
        return math.exp(values[0]), math.exp(values[1])
    if kind == "quniform":
        low, high, q = values
        return float(round(low / q) * q), float(round(high / q) * q)
    return float(values[0]), float(values[1])


def hyperopt_vals(space: dict, params: dict) -> dict:
    """hyperopt's internal record of a trial's values: a choice's index, else the value."""
    vals = {}
    for name, (kind, values) in space.items():
        vals[name] = [values.index(params[name]) if kind == "choice" else params[name]]
    return vals
