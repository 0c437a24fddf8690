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
    types, each choice's old values in their order and of their types inside the new list
    (values added at its ends or between), every range reaching at least as far (quniform:
    the same q)."""
    problems = []
    if set(wider) != set(narrower):
        problems.append(f"other names ({', '.join(wider)} against {', '.join(narrower)})")
    for name in [n for n in narrower if n in wider]:
        (kind, values), (old_kind, old_values) = wider[name], narrower[name]
        if kind != old_kind:
            problems.append(f"{name} is {kind}, was {old_kind}")
        elif kind == "choice":
            if not _in_order_within(old_values, values):
                problems.append(f"{name} {values} does not hold {old_values} in their order")
        elif values[0] > old_values[0] or values[1] < old_values[1] or values[2:] != old_values[2:]:
            problems.append(f"{name} {kind} {values} does not hold {old_values}")
    return problems


def _in_order_within(old: list, new: list) -> bool:
    """Whether ``old``'s values appear in ``new`` in the same order, each of the same type
    (``True`` is not ``1``, ``32`` not ``32.0``)."""
    remaining = iter(new)
    return all(any(type(value) is type(candidate) and value == candidate for candidate in remaining)
               for value in old)


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


def widened(space: dict, ends: dict[str, str], limits: dict[str, tuple] | None = None) -> dict:
    """``space`` widened past each ``{name: "low" | "high"}`` end: a choice of increasing
    numbers gains one value beyond that end, continuing its last step (evenly spaced
    values continue by their difference, others by the ratio of the two values at that
    end, or their difference where one is 0; whole numbers stay whole); a range moves that
    end out by a quarter of its width (of its logarithm for loguniform). ``limits`` gives a
    name's lowest and highest allowed values (``(0.0, 0.9)`` for a dropout; None: no limit),
    in the setting's own scale also for loguniform: a value beyond them is not added, a
    range stops at them."""
    out = {name: (kind, list(values)) for name, (kind, values) in space.items()}
    for name, end in ends.items():
        kind, values = out[name]
        low_limit, high_limit = (limits or {}).get(name, (None, None))
        low_limit = -math.inf if low_limit is None else low_limit
        high_limit = math.inf if high_limit is None else high_limit
        if kind == "loguniform":
            low_limit = math.log(low_limit) if low_limit > 0 else -math.inf
            high_limit = math.log(high_limit) if 0 < high_limit < math.inf else math.inf
        if kind == "choice":
            a, b = (values[0], values[1]) if end == "low" else (values[-1], values[-2])
            differences = [y - x for x, y in zip(values, values[1:])]
            even = len(values) >= 3 and all(math.isclose(d, differences[0]) for d in differences)
            beyond = a + (a - b) if even or a == 0 or b == 0 else a * a / b
            beyond = int(round(beyond)) if all(isinstance(v, int) for v in values) else round(beyond, 10)
            if not low_limit <= beyond <= high_limit or beyond in values:
                continue
            values.insert(0, beyond) if end == "low" else values.append(beyond)
        else:
            step = (values[1] - values[0]) / 4
            if end == "low":
                values[0] = max(round(values[0] - step, 4), low_limit)
            else:
                values[1] = min(round(values[1] + step, 4), high_limit)
    return out


def _value_text(value) -> str:
    """A choice's value as both yaml (this module) and Python (RecBole's ``eval``) read it
    back: ``True``, ``"gelu"``, ``64``, ``1.0e-05`` (yaml reads ``1e-05`` as a string)."""
    if isinstance(value, float):
        text = repr(value)
        return text.replace("e", ".0e", 1) if "e" in text and "." not in text else text
    return json.dumps(value) if isinstance(value, str) else str(value)


def params_file_text(space: dict) -> str:
    """``space`` as a params file that :func:`read_params_file` reads back to the same
    values (floats as ``repr`` writes them). RecBole's own reader, which splits a line on
    single spaces and ``eval``s a choice, reads these lines too where no string holds a
    space, but not the ``#`` comments this module allows."""
    lines = []
    for name, (kind, values) in space.items():
        text = ("[" + ",".join(_value_text(v) for v in values) + "]" if kind == "choice"
                else ",".join(repr(float(v)) for v in values))
        lines.append(f"{name} {kind} {text}")
    return "\n".join(lines) + "\n"
