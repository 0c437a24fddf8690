"""RecBole's params-file format, read and checked for ``python -m recbole_umi.tune``: one
searched setting a line, ``learning_rate loguniform -8,-4``, ``n_interests choice [2,3,4]``,
``softmax_temperature uniform 0.5,1.5`` or ``quniform low,high,q``; ``#`` comments and blank
lines allowed. Also where a chosen value sits on the edge of its space, and that space
widened past it (a search that chose an edge resumes in the widened space: ``tune``).
Light: yaml and the standard library.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import yaml

__all__ = ["SPACE_TYPES", "ParamsFileError", "read_params_file", "space_ends", "hyperopt_vals", "widening_problems",
           "edges", "widened", "params_file_text"]

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


def widening_problems(wider: dict, narrower: dict) -> list[str]:
    """Why ``wider`` does not hold every value of ``narrower`` (both ``{name: (type,
    values)}``, as read or as stored in JSON); empty where it does: the same names and
    types, every choice kept, every range reaching at least as far (quniform: the same q)."""
    problems = []
    if list(wider) != list(narrower):
        problems.append(f"other names ({', '.join(wider)} against {', '.join(narrower)})")
    for name in [n for n in narrower if n in wider]:
        (kind, values), (old_kind, old_values) = wider[name], narrower[name]
        if kind != old_kind:
            problems.append(f"{name} is {kind}, was {old_kind}")
        elif kind == "choice":
            lost = [v for v in old_values if v not in values]
            if lost:
                problems.append(f"{name} leaves out {lost}")
        elif values[0] > old_values[0] or values[1] < old_values[1] or values[2:] != old_values[2:]:
            problems.append(f"{name} {kind} {values} does not hold {old_values}")
    return problems


def _ordered_numbers(values: list) -> bool:
    return (len(values) >= 2 and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values)
            and list(values) == sorted(set(values)))


def edges(space: dict, params: dict, margin: float = 0.1, skip=()) -> dict[str, str]:
    """``{name: "low" | "high"}`` for each searched value of ``params`` on the edge of its
    space: a choice of increasing numbers at its first or last value; a range within
    ``margin`` of its width (of its logarithm for loguniform) from an end. Choices of
    strings, booleans or unordered numbers have no edge; names in ``skip`` are left out."""
    found = {}
    for name, (kind, values) in space.items():
        if name in skip:
            continue
        value = params[name]
        if kind == "choice":
            if _ordered_numbers(values) and value in (values[0], values[-1]):
                found[name] = "low" if value == values[0] else "high"
            continue
        low, high = values[0], values[1]
        position = ((math.log(value) if kind == "loguniform" else value) - low) / (high - low)
        if position < margin:
            found[name] = "low"
        elif position > 1 - margin:
            found[name] = "high"
    return found


def widened(space: dict, ends: dict[str, str], floor: dict[str, float] | None = None) -> dict:
    """``space`` widened past each ``{name: "low" | "high"}`` end: a choice of increasing
    numbers gains one value beyond that end, continuing its last step (a constant difference
    continues by it, else by the ratio of the two values at that end; whole numbers stay
    whole); a range moves that end out by a quarter of its width (of its logarithm for
    loguniform). ``floor`` gives a name's lowest allowed value (a ``uniform`` dropout's 0); a
    value below it is not added, a range stops at it."""
    floor = floor or {}
    out = {name: (kind, list(values)) for name, (kind, values) in space.items()}
    for name, end in ends.items():
        kind, values = out[name]
        bound = floor.get(name, -math.inf)
        if kind == "choice":
            a, b = (values[0], values[1]) if end == "low" else (values[-1], values[-2])
            steps = {y - x for x, y in zip(values, values[1:])}
            beyond = a + (a - b) if len(steps) == 1 and len(values) >= 3 else a * a / b
            if all(isinstance(v, int) for v in values):
                beyond = int(round(beyond))
            if beyond < bound or beyond in values:
                continue
            values.insert(0, beyond) if end == "low" else values.append(beyond)
        else:
            step = (values[1] - values[0]) / 4
            if end == "low":
                values[0] = max(round(values[0] - step, 4), bound)
            else:
                values[1] = round(values[1] + step, 4)
    return out


def params_file_text(space: dict, comments: dict[str, str] | None = None) -> str:
    """``space`` as a params file this module (and RecBole's HyperTuning, which splits a
    line on single spaces) reads back: no spaces inside a value."""
    comments = comments or {}
    lines = []
    for name, (kind, values) in space.items():
        text = (json.dumps(values, separators=(",", ":")) if kind == "choice"
                else ",".join(f"{v:.6g}" for v in values))
        line = f"{name} {kind} {text}"
        lines.append(f"{line:<59} # {comments[name]}" if name in comments else line)
    return "\n".join(lines) + "\n"
