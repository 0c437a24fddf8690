"""The paper's metric names for RecBole's results (light: no torch, no RecBole).

Under the paper's protocol (``eval_protocol: user_split``) RecBole's ``recall@N`` is the
paper's HitRate@N (Eq 15) and ``precision@N`` its Precision@N (Eq 16).
"""

from __future__ import annotations

import re

__all__ = ["paper_metric_names"]

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
    return dict(sorted(renamed.items(), key=lambda kv: (kv[0].split("@")[0] != "HitRate", int(kv[0].split("@")[1]))))
