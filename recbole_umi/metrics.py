"""The paper's metric names for RecBole's results, and its diversity metric (light: numpy
only, no torch, no RecBole).

Under the paper's protocol (``eval_protocol: user_split``) RecBole's ``recall@N`` is the
paper's HitRate@N (Eq 15) and ``precision@N`` its Precision@N (Eq 16). Under any other
protocol (RecBole's leave-one-out, say) they are not, and keep RecBole's names
(:func:`metric_columns`).

:func:`category_coverage` is the share of all item categories a user's list covers (the
paper's online diversity metric): RecBole's evaluator reports it as ``CategoryCoverage``
(:mod:`recbole_umi.evaluation`) and ``scripts/diversity.py`` for re-ranked lists.
"""

from __future__ import annotations

import re

import numpy as np

__all__ = ["paper_metric_names", "metric_columns", "metric_column", "recbole_metric_name", "category_coverage"]

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


def metric_column(metric: str, protocol: str | None) -> str:
    """One RecBole metric's name (any case: ``Recall@50``) as :func:`metric_columns` names its
    column under ``protocol`` (``HitRate@50`` under ``user_split``); the name as given where
    it is none of the paper's metrics (``MRR@10``)."""
    return next(iter(metric_columns({metric.lower(): 0.0}, protocol)), metric)


def recbole_metric_name(column: str) -> str:
    """RecBole's name of a column of :func:`metric_columns`: ``HitRate@50`` -> ``recall@50``."""
    name, n = column.split("@")
    recbole = {paper: recbole for recbole, paper in _PAPER_NAMES.items()}.get(name, name)
    return f"{recbole}@{n}"


def category_coverage(item_ids, categories) -> np.ndarray:
    """Per user, the share of all categories that the user's listed items cover (an item may
    have several; an empty slot, id -1, covers none).

    Args:
        item_ids: ``users x N`` item ids.
        categories: ``n_items x C`` multi-hot (bool or 0/1) categories of every item id.

    Returns:
        ``users`` shares in [0, 1].
    """
    categories = np.asarray(categories).astype(bool)
    item_ids = np.asarray(item_ids)
    listed = item_ids >= 0
    covered = (categories[np.where(listed, item_ids, 0)] & listed[..., None]).any(axis=1)  # users x C
    return covered.sum(axis=1) / categories.shape[1]
