"""The user-split protocol's arithmetic on plain arrays: which users go where, where a held-out
user's history ends, and index ranges (numpy only; the synthetic benchmark's ideal HitRates
use the same split)."""

from __future__ import annotations

import numpy as np

__all__ = ["history_cut", "concat_ranges", "canonical_order", "split_users", "window_targets"]


def history_cut(length: np.ndarray, history_share: float) -> np.ndarray:
    """How many of a user's ``length`` items are history: ``floor(share * length)``,
    kept within ``[1, length - 1]``. The product is nudged up by 1e-9 first: in floating
    point 0.7 * 90 is 62.99..., whose floor would lose an item (0.9, the default, is never
    affected for lengths up to 5000)."""
    return np.clip(np.floor(history_share * length + 1e-9).astype(np.int64), 1, length - 1)


def concat_ranges(starts: np.ndarray, ends: np.ndarray) -> np.ndarray:
    """``concatenate([arange(a, b) for a, b in zip(starts, ends)])``, vectorised."""
    lengths = ends - starts
    offsets = np.arange(lengths.sum()) - np.repeat(np.cumsum(lengths) - lengths, lengths)
    return np.repeat(starts, lengths) + offsets


def canonical_order(tokens) -> np.ndarray:
    """The positions of ``tokens`` (original user ids, strings) in a fixed order: numeric
    order when every token is a decimal number (ml-1m's "1" < "2" < "10"), else string
    order. It depends on the set of tokens only, never on the order they came in."""
    tokens = np.asarray(tokens, dtype=str)
    if tokens.size and np.char.isdigit(tokens).all():
        # numbers of any length, without int64 overflow: shorter first, then digit by digit
        return np.lexsort((tokens, np.char.str_len(np.char.lstrip(tokens, "0"))))
    return np.argsort(tokens, kind="stable")


def split_users(tokens, ratios: list[float], seed: int) -> list[np.ndarray]:
    """Positions into ``tokens`` (one original user id each) in train, valid and test, by
    ``ratios``: the users in :func:`canonical_order` are shuffled with ``seed`` and cut, so
    the split depends on the user ids and the seed only."""
    order = canonical_order(tokens)[np.random.default_rng(seed).permutation(len(tokens))]
    n_users = len(order)
    total = sum(ratios)
    n_train = int(round(n_users * ratios[0] / total))
    n_valid = int(round(n_users * ratios[1] / total))
    return [np.sort(part) for part in (order[:n_train], order[n_train : n_train + n_valid], order[n_train + n_valid :])]


def window_targets(first_targets: np.ndarray, ends: np.ndarray, stride: int) -> tuple[np.ndarray, np.ndarray]:
    """The training rows of ``train_sampling: windows``: for each user, whose target
    positions are ``first_targets[u] .. ends[u] - 1``, the last target and every ``stride``-th
    one before it (``ends[u] - 1``, ``ends[u] - 1 - stride``, ...). A row for target e holds
    the up to T items before e as its history, and a causal encoder predicts from each
    history position the item after it; the loss takes its last ``min(stride, history
    length)`` positions, the targets ``max(e - stride, start) + 1 .. e``, so the rows of a
    user cover each of its targets once (its first item, never a target, starts the first
    row). With ``stride`` = T the rows do not overlap and every position counts; with
    ``stride`` = 1 each row is one target with its last T items, as ``all_positions``.
    Returns the target positions, each user's in ascending order, and each user's row count.

    Example: a user at positions 10 .. 17 (targets 11 .. 17), stride 3 and T = 3: rows end
    at 11, 14, 17, with histories [10], [11, 12, 13], [14, 15, 16]. With T = 5 the histories
    are [10], [10, 11, 12, 13] and [12, 13, 14, 15, 16], of which the last three positions
    count (they predict 12 .. 14 and 15 .. 17): each target sees at least 3 items before it.
    """
    counts = -(-(ends - first_targets) // stride)  # ceil; 0 for a user without targets
    user = np.repeat(np.arange(len(counts)), counts)
    # each row's index within its user's rows, 0 = the first
    back = np.arange(int(counts.sum())) - np.repeat(np.cumsum(counts) - counts, counts)
    targets = ends[user] - 1 - stride * (counts[user] - 1 - back)
    return targets.astype(np.int64), counts.astype(np.int64)

