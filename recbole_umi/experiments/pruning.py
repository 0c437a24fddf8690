"""The median stopping rule that prunes a search's trials: after its v-th validation, a trial
stops when its best validation score so far is worse than the median of the best scores the
search's reference trials had reached by their v-th validation.

A stricter variant of the median stopping rule of Golovin et al. ("Google Vizier: A Service
for Black-Box Optimization", KDD 2017, section 3.2.2), which compares a trial's best so far
with the median of the other trials' running averages (the mean of their first v scores,
lower on a rising curve): here with the median of their bests by v, and any amount below it
stops. The reference trials are the finished trials that were not stopped by the rule, each
with its validation curve, so the rule grows stricter as a search finds better trials; a
reference trial that ended before v validations (early stopping, the epoch budget) counts
with its final best. Nothing stops before ``after`` validations, or while fewer than
``min_trials`` reference trials exist; a tie with the median goes on (to ``TIE`` of it: the
median of two scores is computed in floating point). It favours settings that learn fast
early (a low learning rate's trial is behind at its first validations). Every model of a
comparison gets the same rule (same ``after`` and ``min_trials``): equal budgets.

Example::

    rule = MedianStoppingRule([[0.20, 0.25, 0.26], [0.22, 0.24]], after=2, min_trials=2, bigger=True)
    rule([0.10, 0.12])   # True: 0.12 is below the median (0.245) of 0.25 and 0.24
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence

__all__ = ["MedianStoppingRule", "TIE"]

# A score this close to the median is a tie (the scores have 4 decimals; the median of two of
# them, 0.2922 and 0.3078, is 0.30000000000000004 in floating point).
TIE = 1e-9


class MedianStoppingRule:
    """``rule(scores) -> bool``: whether a trial whose validation scores so far are
    ``scores`` (in order, one per validation) should stop.

    Args:
        reference_curves: the validation scores of each reference trial, in order.
        after: validations a trial always gets (at least 1).
        min_trials: reference trials needed before anything stops (at least 1).
        bigger: whether a bigger score is better (RecBole's ``valid_metric_bigger``).
    """

    def __init__(self, reference_curves: Sequence[Sequence[float]], after: int, min_trials: int, bigger: bool):
        if after < 1 or min_trials < 1:
            raise ValueError(f"after and min_trials must be at least 1, got {after} and {min_trials}")
        self.curves = [list(curve) for curve in reference_curves if len(curve) > 0]
        self.after = after
        self.min_trials = min_trials
        self.sign = 1.0 if bigger else -1.0

    def _best(self, scores: Sequence[float]) -> float:
        return max(self.sign * score for score in scores)

    def median_at(self, validations: int) -> float | None:
        """The median of the reference trials' best scores by their ``validations``-th
        validation (signed: bigger is better); None with too few reference trials."""
        if len(self.curves) < self.min_trials:
            return None
        return statistics.median(self._best(curve[:validations]) for curve in self.curves)

    def __call__(self, scores: Sequence[float]) -> bool:
        if len(scores) < self.after:
            return False
        median = self.median_at(len(scores))
        return median is not None and self._best(scores) < median - TIE
