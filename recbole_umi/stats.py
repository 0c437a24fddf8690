"""Significance tests of one model against another, from each test user's metric in each run.

A model's test figure varies for two reasons: which users happen to be test users, and which
training seed made the model. :func:`two_level_test`, the default of ``compare``, counts
both; :func:`paired_test` (over users, each user averaged over the seeds) counts only the
first and :func:`seed_test` (over the seeds' means) only the second, so each alone is
anti-conservative when the other source is large. :func:`holm` corrects a family of
p-values. docs/design.md ("Significance") says why the two-level test is built as it is and
how it was validated.

Light on purpose: numpy and scipy, no torch, no RecBole.

Example::

    test = two_level_test(umi, mind)   # seeds x users arrays of HitRate@50, users aligned
    test["delta"], test["low"], test["high"], test["p"]
"""

from __future__ import annotations

import math
import warnings

import numpy as np

__all__ = ["TESTS", "LEVEL", "two_level_test", "two_level_mean", "paired_test", "seed_test", "holm"]

# The tests ``compare --significance`` offers, in words.
TESTS = {
    "two_level": "two-level test over test users and training seeds",
    "ttest": "paired t-test over the test users",
    "wilcoxon": "Wilcoxon signed-rank test over the test users",
}
LEVEL = 0.05


def _finite(test: str, *values: np.ndarray) -> None:
    """Refuses values that are not all finite: a NaN (a metric undefined for a user) would
    make the test's p-value NaN, which no comparison with the level rejects and which
    :func:`holm` would have to guess a rank for."""
    for side, array in zip(("first", "other"), values):
        if not np.isfinite(array).all():
            raise ValueError(f"{test}: the {side} side has {int((~np.isfinite(array)).sum())} value(s) that are not "
                             "finite (NaN or infinite): a metric undefined for some user?")


def _interaction_variance(values: np.ndarray) -> float:
    """The seed-by-user interaction's variance of one model's ``seeds x users`` values: the
    mean square of the residuals after the seed and the user means are taken out (a two-way
    layout with one value per cell); 0 with one seed."""
    n_seeds, n_users = values.shape
    if n_seeds < 2:
        return 0.0
    residual = values - values.mean(axis=1, keepdims=True) - values.mean(axis=0, keepdims=True) + values.mean()
    return float((residual**2).sum() / ((n_seeds - 1) * (n_users - 1)))


def _satterthwaite_df(variance: float, mean_squares: dict[str, tuple[float, int]],
                      terms: list[tuple[str, float]], fallback: float) -> float:
    """Satterthwaite's degrees of freedom of ``variance = sum(coefficient * mean square)``:
    ``variance^2 / sum((c * MS)^2 / d)``, where ``c`` is a mean square's net coefficient over
    ``terms`` (a mean square named twice is one mean square, not two independent ones) and
    ``d`` its degrees of freedom in ``mean_squares`` (name -> (MS, d)). ``fallback`` where no
    term is left (every mean square in the sum is 0, which only rounding allows beside a
    positive variance)."""
    coefficients: dict[str, float] = {}
    for name, coefficient in terms:
        coefficients[name] = coefficients.get(name, 0.0) + coefficient
    spread = sum((coefficient * mean_squares[name][0]) ** 2 / mean_squares[name][1]
                 for name, coefficient in coefficients.items() if mean_squares[name][1] > 0)
    return variance**2 / spread if spread > 0 else float(fallback)


def two_level_test(first, other, paired_seeds: bool = False) -> dict | None:
    """The difference of two models' mean metric, with an interval and a p-value that count
    the spread between test users and between training seeds.

    Each model's value for user u in seed s is taken as ``mu + seed effect + user effect +
    interaction`` (crossed random effects; the users are the same for both models, the
    seeds are independent trainings). The variance of the difference of the two grand means
    is estimated from mean squares (method of moments):

    - seeds: ``S_A^2 / n_A + S_B^2 / n_B``, the variances of each model's seed means (with
      ``paired_seeds``, a seed's two runs starting alike: ``S_D^2 / n`` of the seeds'
      differences);
    - users: ``S_d^2 / U``, the variance of each user's seed-averaged difference;
    - the interaction, which both of these contain, is estimated from each model's
      residuals (``I_A``, ``I_B``): each part above has its share (``I_A / U`` per seed
      mean, ``I_A / n_A`` per user difference) taken out, a part that would go below 0 is
      cut to 0, and ``I_A / (n_A U) + I_B / (n_B U)`` is added once.

    The interval and p-value use Student's t with Satterthwaite's degrees of freedom for
    that signed sum of mean squares: ``V^2 / sum((c_i MS_i)^2 / d_i)`` over the mean squares
    ``MS_i`` in it, each with its net coefficient ``c_i`` (an interaction mean square that
    enters two parts is one mean square) and its degrees of freedom ``d_i``: ``n - 1`` for
    a model's seed means (or the seeds' differences), ``U - 1`` for the users' differences,
    ``(n - 1)(U - 1)`` for a model's interaction. A part cut to 0 brings none of its terms
    (neither its mean square nor the interaction it took out). Few seeds give few degrees of
    freedom, so a wide interval.

    Args:
        first, other: ``seeds x users`` arrays (a list of per-user lists per seed), the users
            in the same order; ``paired_seeds`` needs the same seeds in the same order.

    Returns:
        ``{"delta", "low", "high", "p", "se", "df", "seed_share"}``: first minus other, its
        95% interval, the two-sided p-value, the standard error, the degrees of freedom and
        the share of the variance that comes from the seeds. None when a side has fewer than
        two seeds (the seeds' spread cannot be measured).
    """
    from scipy import stats

    first, other = np.atleast_2d(np.asarray(first, dtype=float)), np.atleast_2d(np.asarray(other, dtype=float))
    if first.shape[1] != other.shape[1] or first.shape[1] < 2:
        raise ValueError(f"two_level_test needs the same test users (at least 2) on both sides, got {first.shape} "
                         f"and {other.shape} (seeds x users)")
    _finite("two_level_test", first, other)
    n_a, n_b, n_users = first.shape[0], other.shape[0], first.shape[1]
    if min(n_a, n_b) < 2:
        return None
    if paired_seeds and n_a != n_b:
        raise ValueError(f"paired seeds need as many seeds on both sides, got {n_a} and {n_b}")
    delta = float(first.mean() - other.mean())
    interaction_a, interaction_b = _interaction_variance(first), _interaction_variance(other)
    interaction = interaction_a / (n_a * n_users) + interaction_b / (n_b * n_users)  # counted once
    user_differences = first.mean(axis=0) - other.mean(axis=0)
    users_ms = float(user_differences.var(ddof=1))
    # Every mean square of the variance with its degrees of freedom, and the signed terms
    # (mean square's name, coefficient) of each part, for Satterthwaite's degrees of freedom.
    mean_squares = {"interaction A": (interaction_a, (n_a - 1) * (n_users - 1)),
                    "interaction B": (interaction_b, (n_b - 1) * (n_users - 1)),
                    "users": (users_ms, n_users - 1)}
    terms = [("interaction A", 1 / (n_a * n_users)), ("interaction B", 1 / (n_b * n_users))]
    # each part without its interaction share (never below 0), the interaction added once
    users_part = max(0.0, users_ms - interaction_a / n_a - interaction_b / n_b) / n_users
    if users_part > 0:
        terms += [("users", 1 / n_users), ("interaction A", -1 / (n_a * n_users)),
                  ("interaction B", -1 / (n_b * n_users))]
    if paired_seeds:
        seeds_ms = float((first.mean(axis=1) - other.mean(axis=1)).var(ddof=1))
        mean_squares["seeds"] = (seeds_ms, n_a - 1)
        seeds_part = max(0.0, seeds_ms - (interaction_a + interaction_b) / n_users) / n_a
        if seeds_part > 0:
            terms += [("seeds", 1 / n_a), ("interaction A", -1 / (n_users * n_a)),
                      ("interaction B", -1 / (n_users * n_a))]
    else:
        seeds_ms_a, seeds_ms_b = float(first.mean(axis=1).var(ddof=1)), float(other.mean(axis=1).var(ddof=1))
        mean_squares.update({"seeds A": (seeds_ms_a, n_a - 1), "seeds B": (seeds_ms_b, n_b - 1)})
        seeds_part_a = max(0.0, seeds_ms_a - interaction_a / n_users) / n_a
        seeds_part_b = max(0.0, seeds_ms_b - interaction_b / n_users) / n_b
        seeds_part = seeds_part_a + seeds_part_b
        if seeds_part_a > 0:
            terms += [("seeds A", 1 / n_a), ("interaction A", -1 / (n_users * n_a))]
        if seeds_part_b > 0:
            terms += [("seeds B", 1 / n_b), ("interaction B", -1 / (n_users * n_b))]
    variance = seeds_part + users_part + interaction
    if variance == 0.0:  # every run gives every user the same value on both sides
        return {"delta": delta, "low": delta, "high": delta, "p": 1.0 if delta == 0 else 0.0, "se": 0.0,
                "df": float("inf"), "seed_share": 0.0}
    df = _satterthwaite_df(variance, mean_squares, terms, fallback=min(n_a, n_b) - 1)
    se = variance**0.5
    half = float(stats.t.ppf(0.975, df)) * se
    p = float(2 * stats.t.sf(abs(delta) / se, df))
    return {"delta": delta, "low": delta - half, "high": delta + half, "p": p, "se": se, "df": float(df),
            "seed_share": seeds_part / variance}


def two_level_mean(values) -> dict | None:
    """One model's mean metric with the 95% interval that counts the test users and the
    training seeds, as :func:`two_level_test` counts them for a difference (it is that test
    against a model scoring 0 for every user in every seed, which adds no variance).

    Args:
        values: ``seeds x users``.

    Returns:
        ``{"mean", "low", "high", "se", "df"}``; None with fewer than two seeds.
    """
    values = np.atleast_2d(np.asarray(values, dtype=float))
    test = two_level_test(values, np.zeros((2, values.shape[1])))
    if test is None:
        return None
    return {"mean": test["delta"], "low": test["low"], "high": test["high"], "se": test["se"], "df": test["df"]}


def paired_test(first, other, test: str = "ttest") -> dict:
    """The paired comparison of two models over the same users.

    Args:
        first, other: per-user values of one metric, the same users in the same order.
        test: ``ttest`` (scipy's ``ttest_rel``) or ``wilcoxon`` (``wilcoxon``).

    Returns:
        ``{"delta", "low", "high", "p"}``: the mean of ``first - other``, its 95%
        t-interval, and the two-sided p-value of the test (1.0 where every difference is 0).
    """
    from scipy import stats

    first, other = np.asarray(first, dtype=float), np.asarray(other, dtype=float)
    if first.shape != other.shape or first.size < 2:
        raise ValueError(f"paired_test needs two equally long arrays of at least 2 users, got {first.shape} and {other.shape}")
    _finite("paired_test", first, other)
    if test not in ("ttest", "wilcoxon"):
        raise ValueError(f"test must be 'ttest' or 'wilcoxon', got {test!r}")
    difference = first - other
    mean, sem = difference.mean(), stats.sem(difference)
    half = stats.t.ppf(0.975, difference.size - 1) * sem
    if not difference.any():
        p = 1.0
    elif test == "ttest":
        p = float(stats.ttest_rel(first, other).pvalue)
    else:
        p = float(stats.wilcoxon(first, other).pvalue)
    return {"delta": float(mean), "low": float(mean - half), "high": float(mean + half), "p": p}


def seed_test(first_means, other_means, paired: bool = False) -> float | None:
    """A t-test over the seeds of the runs' means (each run's metric averaged over its test
    users): Welch's (unequal variances) for independent trainings, or paired (``paired``: a
    seed's two runs start from the same weights and batches, e.g. a model with clean and
    with noisy profiles; the means in the same seed order). The two-sided p-value; None with
    fewer than 2 seeds on a side or no spread to test against."""
    from scipy import stats

    first_means, other_means = np.asarray(first_means, dtype=float), np.asarray(other_means, dtype=float)
    if min(first_means.size, other_means.size) < 2:
        return None
    spread = np.ptp(first_means - other_means) if paired else max(np.ptp(first_means), np.ptp(other_means))
    if spread == 0:
        return None
    with warnings.catch_warnings():  # of a side without spread: Welch's test takes the other side's
        warnings.filterwarnings("ignore", message="Precision loss occurred", category=RuntimeWarning)
        if paired:
            return float(stats.ttest_rel(first_means, other_means).pvalue)
        return float(stats.ttest_ind(first_means, other_means, equal_var=False).pvalue)


def holm(p_values: list[float]) -> list[float]:
    """Holm's step-down adjustment of p-values for testing them all at once (in the given
    order): the i-th smallest is multiplied by ``m - i + 1`` (i from 1), then made no
    smaller than the one before it, and capped at 1. An adjusted p below the level rejects
    with the family-wise error rate held at that level. A NaN p-value is refused (it has no
    rank: sorted anywhere it would make the p-values after it 1)."""
    if any(math.isnan(p) for p in p_values):
        raise ValueError(f"holm: a p-value is NaN in {list(p_values)}")
    order = sorted(range(len(p_values)), key=lambda i: p_values[i])
    adjusted = [0.0] * len(p_values)
    running = 0.0
    for rank, index in enumerate(order):
        running = max(running, min(1.0, (len(p_values) - rank) * p_values[index]))
        adjusted[index] = running
    return adjusted
