"""recbole_umi.stats: the two-level test by hand and on simulated data, and the one-level tests."""

import numpy as np
import pytest
from scipy import stats

from recbole_umi.stats import holm, paired_test, seed_test, two_level_mean, two_level_test


def test_two_level_test_by_hand_seed_spread_only():
    # first: seed means 2 and 4 (variance 2), users 1-2-3 shifted alike, no interaction;
    # other: the same values in both seeds. delta 3 - 1 = 2; every user's difference is 2
    # (no user spread), so the variance is the seeds' 2 / 2 = 1 and one degree of freedom.
    test = two_level_test([[1, 2, 3], [3, 4, 5]], [[0, 1, 2], [0, 1, 2]])
    assert test["delta"] == pytest.approx(2.0)
    assert test["se"] == pytest.approx(1.0) and test["df"] == pytest.approx(1.0)
    assert (test["low"], test["high"]) == pytest.approx((2 - 12.7062, 2 + 12.7062), abs=1e-3)
    assert test["p"] == pytest.approx(2 * stats.t.sf(2.0, 1)) and test["p"] == pytest.approx(0.2952, abs=1e-4)
    assert test["seed_share"] == pytest.approx(1.0)


def test_two_level_test_by_hand_interaction_counted_once():
    # first: seed means 2 and 2, residuals -0.5 / 0.5 / 0.5 / -0.5: interaction variance 1 / 1;
    # other: all 0. The users' differences 1.5, 2.5 (mean square 0.5) are all interaction
    # (0.5 - 1 / 2 = 0 left), the seeds' means do not move (0 - 1 / 2 -> 0): the variance is
    # the interaction once, 1 / (2 seeds * 2 users) = 0.25, with the interaction's (2-1)(2-1) = 1 df.
    test = two_level_test([[1, 3], [2, 2]], [[0, 0], [0, 0]])
    assert test["delta"] == pytest.approx(2.0) and test["se"] == pytest.approx(0.5)
    assert test["df"] == pytest.approx(1.0) and test["p"] == pytest.approx(2 * stats.t.sf(4.0, 1))


def test_two_level_test_by_hand_paired_seeds():
    # seed 1: means 2 against 1, seed 2: 4 against 2: differences 1 and 2 (variance 0.5, over 2
    # seeds 0.25); every user's seed-averaged difference is 1.5; no interaction. Unpaired, the
    # seeds' variances 2 and 0.5 would give 2 / 2 + 0.5 / 2 = 1.25.
    first, other = [[1, 2, 3], [3, 4, 5]], [[0, 1, 2], [1, 2, 3]]
    paired = two_level_test(first, other, paired_seeds=True)
    assert paired["delta"] == pytest.approx(1.5) and paired["se"] == pytest.approx(0.5)
    assert paired["p"] == pytest.approx(2 * stats.t.sf(3.0, 1))
    assert two_level_test(first, other)["se"] == pytest.approx(1.25**0.5)
    with pytest.raises(ValueError, match="as many seeds"):
        two_level_test(first, other[:1] + other + other, paired_seeds=True)


def test_two_level_test_by_hand_with_interaction_in_every_part():
    # first (2 seeds): seed means 2, 6 (S_A = 8), residuals 0 -1 1 / 0 1 -1 (I_A = 4 / (1 * 2) = 2);
    # other (3 seeds): seed means 1, 1, 4 (S_B = 3), residuals 0 -1 1 / 0 1 -1 / 0 0 0
    # (I_B = 4 / (2 * 2) = 1); the users' differences 0, 3, 3 (S_d = 3). No part is cut to 0:
    # seeds (8 - 2/3) / 2 + (3 - 1/3) / 3, users (3 - 2/2 - 1/3) / 3, interaction 2/6 + 1/9.
    s_a, s_b, s_d, i_a, i_b, n_a, n_b, users = 8, 3, 3, 2, 1, 2, 3, 3
    variance = ((s_a - i_a / users) / n_a + (s_b - i_b / users) / n_b + (s_d - i_a / n_a - i_b / n_b) / users
                + i_a / (n_a * users) + i_b / (n_b * users))
    assert variance == pytest.approx(50 / 9)
    # the same sum by mean square: S_A / 2 + S_B / 3 + S_d / 3 - I_A / 6 - I_B / 9 (each interaction
    # taken out twice and added once), with 1, 2, 2, 2 and 4 degrees of freedom
    terms = [(s_a / n_a, 1), (s_b / n_b, 2), (s_d / users, 2), (-i_a / (n_a * users), 2), (-i_b / (n_b * users), 4)]
    assert sum(term for term, _ in terms) == pytest.approx(variance)
    df = variance**2 / sum(term**2 / dof for term, dof in terms)
    assert df == pytest.approx(1.8093, abs=1e-4)  # the positive mean squares alone said 36 / 17 = 2.118
    test = two_level_test([[0, 2, 4], [4, 8, 6]], [[1, 0, 2], [1, 2, 0], [4, 4, 4]])
    assert test["delta"] == pytest.approx(2.0) and test["se"] == pytest.approx(variance**0.5)
    assert test["df"] == pytest.approx(df) and test["p"] == pytest.approx(2 * stats.t.sf(2.0 / variance**0.5, df))
    assert test["seed_share"] == pytest.approx((22 / 6 + 8 / 9) / variance)


def test_two_level_test_by_hand_paired_seeds_with_interaction_and_a_part_cut_to_0():
    # first as above (I_A = 2); other: residuals 0 -1 1 / 0 1 -1 (I_B = 2). Seeds' differences
    # 1 and 3 (S_D = 2), users' differences 0, 3, 3 (S_d = 3): seeds (2 - 4/3) / 2, users
    # (3 - 1 - 1) / 3, interaction 2/6 + 2/6; by mean square S_D / 2 + S_d / 3 - I_A / 3 - I_B / 3.
    first = [[0, 2, 4], [4, 8, 6]]
    variance = 2 / 2 + 3 / 3 - 2 / 6 - 2 / 6
    df = variance**2 / (1**2 / 1 + 1**2 / 2 + (2 / 6) ** 2 / 2 + (2 / 6) ** 2 / 2)
    test = two_level_test(first, [[1, 0, 2], [3, 4, 2]], paired_seeds=True)
    assert test["se"] == pytest.approx(variance**0.5) and test["df"] == pytest.approx(df)
    assert test["p"] == pytest.approx(2 * stats.t.sf(2.0 / variance**0.5, df))
    # other's seeds both 1 below first's: S_D = 0, the seeds' part is cut to 0 and brings neither
    # S_D nor the interaction it took out; users' differences -1, 2, 2 (S_d = 3): variance
    # (3 - 1 - 1) / 3 + 2/3 = 1, which by mean square is S_d / 3 alone, 2 degrees of freedom.
    cut = two_level_test(first, [[1, 0, 2], [5, 6, 4]], paired_seeds=True)
    assert cut["se"] == pytest.approx(1.0) and cut["df"] == pytest.approx(2.0) and cut["seed_share"] == 0.0


def test_two_level_test_only_the_interaction_left():
    # every seed mean and user mean alike (all raw mean squares 0 but the interaction's, 1): both
    # parts are cut to 0, the variance is the interaction, 1 / (2 * 2), with its (2-1)(2-1) = 1 df.
    # (It divided by zero when the degrees of freedom came from the seeds' and users' mean squares.)
    test = two_level_test([[1, 0], [0, 1]], [[0, 0], [0, 0]])
    assert test["se"] == pytest.approx(0.5) and test["df"] == pytest.approx(1.0)
    assert test["p"] == pytest.approx(2 * stats.t.sf(1.0, 1))
    # no term left in Satterthwaite's sum (only rounding allows it beside a positive variance):
    # the fallback, not a division by zero
    from recbole_umi.stats import _satterthwaite_df

    assert _satterthwaite_df(1e-30, {"users": (0.0, 5)}, [("users", 0.5)], fallback=1) == 1.0


def test_two_level_mean_by_hand():
    # seed means 2 and 4 (mean square 2), user means 2, 3, 4 (mean square 1), no interaction:
    # variance 2 / 2 + 1 / 3 = 4 / 3; Satterthwaite: (4/3)^2 / (1^2 / 1 + (1/3)^2 / 2) = 1.6842
    mean = two_level_mean([[1, 2, 3], [3, 4, 5]])
    df = (4 / 3) ** 2 / (1 + (1 / 3) ** 2 / 2)
    assert mean["mean"] == pytest.approx(3.0) and mean["se"] == pytest.approx((4 / 3) ** 0.5)
    assert mean["df"] == pytest.approx(df)
    assert mean["high"] == pytest.approx(3 + stats.t.ppf(0.975, df) * (4 / 3) ** 0.5)
    assert two_level_mean([[1, 2, 3]]) is None


def test_two_level_test_limits():
    assert two_level_test([[0.1, 0.2]], [[0.1, 0.3], [0.2, 0.2]]) is None  # one seed: its spread is unknown
    same = two_level_test([[0.2, 0.4], [0.2, 0.4]], [[0.2, 0.4], [0.2, 0.4]])
    assert same["delta"] == 0 and same["p"] == 1.0
    with pytest.raises(ValueError, match="same test users"):
        two_level_test([[0.1, 0.2], [0.1, 0.2]], [[0.1, 0.2, 0.3], [0.1, 0.2, 0.3]])


def _simulated(rng, n_first, n_other, n_users, seed_sd, user_sd, noise_sd, delta=0.0):
    """seeds x users values of two models: a user effect they share, a per-user difference,
    a seed effect per training and per-cell noise (a user's metric moving between seeds)."""
    base = rng.normal(30, 20, n_users)
    difference = rng.normal(delta, user_sd, n_users)
    first = base + difference / 2 + rng.normal(0, seed_sd, (n_first, 1)) + rng.normal(0, noise_sd, (n_first, n_users))
    other = base - difference / 2 + rng.normal(0, seed_sd, (n_other, 1)) + rng.normal(0, noise_sd, (n_other, n_users))
    return first, other


@pytest.mark.parametrize("n_seeds", [3, 5])
def test_two_level_test_holds_its_level_where_the_test_over_users_does_not(n_seeds):
    # A/A on simulated data: no true difference, a seed effect of 1.5 points (an ml-1m-sized
    # spread between training seeds) beside large user and noise spreads. The two-level test
    # rejects at about its nominal 5%; the paired test over users, blind to the seeds, far more.
    rng = np.random.default_rng(7)
    reps = 400
    two_level = users_only = 0
    for _ in range(reps):
        first, other = _simulated(rng, n_seeds, n_seeds, 600, seed_sd=1.5, user_sd=10, noise_sd=10)
        two_level += two_level_test(first, other)["p"] < 0.05
        users_only += paired_test(first.mean(axis=0), other.mean(axis=0))["p"] < 0.05
    assert 0.02 <= two_level / reps <= 0.085
    assert users_only / reps > 0.3


def test_two_level_test_holds_its_level_at_two_seeds():
    # A/A at 2 seeds a side, where the degrees of freedom matter most: counting the interaction
    # the variance subtracts, 5.4% of these 1000 are rejected (about 6.0% over 20,000 pairs:
    # Satterthwaite's t stays a little generous with 1 df per side); the positive mean squares
    # alone gave more degrees of freedom and rejected 6.9% of these (7.2% of the 20,000).
    rng = np.random.default_rng(7)
    reps = 1000
    rejected = sum(two_level_test(*_simulated(rng, 2, 2, 600, seed_sd=1.5, user_sd=10, noise_sd=10))["p"] < 0.05
                   for _ in range(reps))
    assert 0.035 <= rejected / reps <= 0.065


def test_two_level_test_finds_a_large_difference():
    rng = np.random.default_rng(3)
    first, other = _simulated(rng, 5, 5, 600, seed_sd=0.5, user_sd=10, noise_sd=10, delta=4.0)
    test = two_level_test(first, other)
    assert test["p"] < 1e-3 and test["low"] > 0


def test_paired_test_against_hand_computed_values_and_scipy():
    first = [0.2, 0.5, 0.1, 0.9, 0.4]
    other = [0.1, 0.5, 0.0, 0.6, 0.5]
    # differences 0.1, 0, 0.1, 0.3, -0.1: mean 0.08, sd sqrt(0.088 / 4), sem sd / sqrt(5)
    sem = (0.088 / 4) ** 0.5 / 5**0.5
    t = paired_test(first, other, "ttest")
    assert t["delta"] == pytest.approx(0.08)
    assert (t["low"], t["high"]) == pytest.approx((0.08 - 2.776445 * sem, 0.08 + 2.776445 * sem), abs=1e-6)
    assert t["p"] == pytest.approx(stats.ttest_rel(first, other).pvalue)
    assert t["p"] == pytest.approx(2 * stats.t.sf(0.08 / sem, 4))  # t = 1.206, 4 degrees of freedom
    w = paired_test(first, other, "wilcoxon")
    assert w["p"] == pytest.approx(stats.wilcoxon(first, other).pvalue)
    assert paired_test([0.3, 0.4], [0.3, 0.4])["p"] == 1.0  # no difference at all
    with pytest.raises(ValueError, match="equally long"):
        paired_test([0.1, 0.2], [0.1])


def test_seed_test_against_scipy_and_its_limits():
    # seed means 0.2, 0.3, 0.4 (variance 0.01) against 0.5, 0.7 (variance 0.02)
    p = seed_test([0.2, 0.3, 0.4], [0.5, 0.7])
    assert p == pytest.approx(stats.ttest_ind([0.2, 0.3, 0.4], [0.5, 0.7], equal_var=False).pvalue)
    # by hand: t = (0.3 - 0.6) / sqrt(0.01 / 3 + 0.02 / 2) = -2.598, and Welch-Satterthwaite's
    # df = (0.01 / 3 + 0.02 / 2) ** 2 / ((0.01 / 3) ** 2 / 2 + (0.02 / 2) ** 2 / 1) = 1.684
    assert p == pytest.approx(2 * stats.t.sf(0.3 / (0.01 / 3 + 0.02 / 2) ** 0.5, 1.684), abs=1e-3)
    assert seed_test([0.2, 0.3, 0.4], [0.5]) is None  # one seed: no spread to test against
    assert seed_test([0.2, 0.2], [0.2, 0.2]) is None
    # paired by seed: differences -0.05, 0, -0.1: mean -0.05, sd 0.05, t = -0.05 / (0.05 / sqrt 3), df 2
    p = seed_test([0.2, 0.3, 0.4], [0.25, 0.3, 0.5], paired=True)
    assert p == pytest.approx(stats.ttest_rel([0.2, 0.3, 0.4], [0.25, 0.3, 0.5]).pvalue)
    assert p == pytest.approx(2 * stats.t.sf(3**0.5, 2))


def test_holm_adjustment_by_hand():
    # sorted 0.01, 0.02, 0.03, 0.5 times 4, 3, 2, 1: 0.04, 0.06, 0.06, 0.5, in the given order
    assert holm([0.03, 0.5, 0.01, 0.02]) == pytest.approx([0.06, 0.5, 0.04, 0.06])
    # never below an earlier one: 0.012 * 2 = 0.024 is raised to 0.01 * 3 = 0.03; capped at 1
    assert holm([0.012, 0.5, 0.01]) == pytest.approx([0.03, 0.5, 0.03])
    assert holm([0.6, 0.7]) == pytest.approx([1.0, 1.0])


def test_a_nan_is_refused_not_ranked():
    # sorted anywhere, a NaN would make every p-value after it 1 (min(1, nan) is 1)
    with pytest.raises(ValueError, match="a p-value is NaN"):
        holm([float("nan"), 0.001, 0.002])
    nan_user = [[0.1, float("nan"), 0.3], [0.2, 0.2, 0.3]]
    with pytest.raises(ValueError, match="two_level_test: the first side has 1 value"):
        two_level_test(nan_user, [[0.1, 0.2, 0.3], [0.1, 0.2, 0.4]])
    with pytest.raises(ValueError, match="paired_test: the other side has 1 value"):
        paired_test([0.1, 0.2, 0.3], [0.1, float("inf"), 0.3])


def test_history_buckets_at_the_quantiles():
    from recbole_umi.experiments.tables import history_buckets

    assert history_buckets(list(range(1, 101)), 4) == [(1, 25), (26, 50), (51, 75), (76, 100)]
    # repeated lengths: fewer buckets, every length in one
    assert history_buckets([1, 1, 1, 2, 3, 5, 8, 13, 21, 34], 4) == [(1, 1), (2, 3), (4, 8), (9, 34)]
    assert history_buckets([5] * 10, 3) == [(5, 5)]


def test_paired_test_refuses_an_unknown_test_even_without_a_difference():
    with pytest.raises(ValueError, match="test must be 'ttest' or 'wilcoxon', got 'welch'"):
        paired_test([0.1, 0.2, 0.3], [0.1, 0.2, 0.3], test="welch")  # every difference 0
