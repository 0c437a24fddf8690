"""Per-user metrics from RecBole's own evaluation, for paired significance tests.

RecBole's evaluator averages every top-k metric over users. :class:`PerUserEvaluator`
wraps it and keeps, from the evaluation it last ran, each user's value of every top-k
metric (RecBole's metric classes compute them; the mean over users is RecBole's figure),
so that two models can be compared user by user without retraining.
"""

from __future__ import annotations

from recbole_umi import compat

compat.apply()  # before anything imports RecBole

import numpy as np  # noqa: E402
from recbole.evaluator.base_metric import TopkMetric  # noqa: E402
from recbole.evaluator.register import metrics_dict  # noqa: E402

__all__ = ["PerUserEvaluator", "per_user_topk", "evaluated_users"]


def per_user_topk(struct, config) -> dict[str, np.ndarray]:
    """``{"recall@50": values, ...}``: every configured top-k metric at every cut-off, one
    value per evaluated user (in evaluation order), from RecBole's collected ``struct``."""
    values = {}
    for name in config["metrics"]:
        metric_class = metrics_dict[name.lower()]
        if not issubclass(metric_class, TopkMetric):
            continue
        metric = metric_class(config)
        pos_index, pos_len = metric.used_info(struct)
        wants_len = metric_class.metric_info.__code__.co_argcount == 3  # (self, pos_index, pos_len)
        per_user = metric.metric_info(pos_index, pos_len) if wants_len else metric.metric_info(pos_index)
        for k in config["topk"]:
            values[f"{name.lower()}@{k}"] = per_user[:, k - 1]
    return values


def evaluated_users(eval_data) -> list[str]:
    """The original ids of the users a full-sort loader evaluates, in evaluation order."""
    dataset = eval_data._dataset
    ids = dataset.inter_feat[dataset.uid_field] if eval_data.is_sequential else eval_data.uid_list
    return [str(token) for token in dataset.id2token(dataset.uid_field, ids.numpy())]


class PerUserEvaluator:
    """RecBole's ``Evaluator`` that also keeps the per-user values of its last evaluation
    (``last``, see :func:`per_user_topk`); everything else is the wrapped evaluator's."""

    def __init__(self, evaluator, config):
        self.evaluator = evaluator
        self.config = config
        self.last: dict[str, np.ndarray] | None = None

    def evaluate(self, struct):
        self.last = per_user_topk(struct, self.config)
        return self.evaluator.evaluate(struct)

    def __getattr__(self, name):
        return getattr(self.evaluator, name)
