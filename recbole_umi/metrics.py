"""The paper's metric names for RecBole's results (light: no torch, no RecBole).

Under the paper's protocol (``eval_protocol: user_split``) RecBole's ``recall@N`` is the
paper's HitRate@N (Eq 15) and ``precision@N`` its Precision@N (Eq 16). Under any other
protocol (RecBole's leave-one-out, say) they are not, and keep RecBole's names
(:func:`metric_columns`).
"""

from __future__ import annotations

import re

__all__ = ["paper_metric_names", "metric_columns", "recbole_metric_name"]

_PAPER_NAMES = {"recall": "HitRate", "precision": "Precision"}


def paper_metric_names(result: dict) -> dict:
    """``{"recall@50": x, "precision@50": y, ...}`` -> ``{"HitRate@50": x, "Precision@50": y}``:
    the paper's metrics under the paper's names, HitRate first, then by N (others, e.g.
    RecBole's ``hit@N``, dropped)."""
    renamed = {}
    for key, value in result.items():
        match = re.fullmatch(r"(\w+)@(\d+)", key)
        if match and match.group(1) in _PAPER_NAMES:
            renamed[f"{_PAPER_NAMES[match.group(1)]}@{match.group(2)}"] = float(value)
    return dict(sorted(renamed.items(), key=_by_n))


def _by_n(item) -> tuple:
    """Sort key of ``(column, value)``: HitRate (recall) before the others, then by N."""
    name, n = item[0].split("@")
    return name not in ("HitRate", "recall"), int(n)


def metric_columns(result: dict, protocol: str) -> dict:
    """The paper's metrics of ``result``, named as the protocol allows: the paper's names
    under ``user_split`` (:func:`paper_metric_names`), RecBole's ``recall@N`` and
    ``precision@N`` under any other protocol, where recall@N is not the paper's HitRate."""
    if protocol == "user_split":
        return paper_metric_names(result)
    kept = {key: float(value) for key, value in result.items() if re.fullmatch(rf"({'|'.join(_PAPER_NAMES)})@\d+", key)}
    return dict(sorted(kept.items(), key=_by_n))


def recbole_metric_name(column: str) -> str:
    """RecBole's name of a column of :func:`metric_columns`: ``HitRate@50`` -> ``recall@50``."""
    name, n = column.split("@")
    recbole = {paper: recbole for recbole, paper in _PAPER_NAMES.items()}.get(name, name)
    return f"{recbole}@{n}"
