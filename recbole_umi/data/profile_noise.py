"""Noisy user profiles, for the paper's noise-immunity test (Table 5).

``profile_noise: s`` replaces, in each profile field, the values of a share ``s`` of the
users (drawn with ``profile_noise_seed``) by another valid value of that field: a token
field takes another of its tokens, a float field the value of another user whose value
differs. It is done once, on the loaded dataset, so training and evaluation see the same
noisy profiles, as the paper's noisy profile fields would be.
"""

from __future__ import annotations

from logging import getLogger

import numpy as np
from recbole.utils import FeatureType

__all__ = ["corrupt_profiles"]


def corrupt_profiles(dataset, fields: list[str], share: float, seed: int) -> dict[str, np.ndarray]:
    """Replace ``share`` of each field's user values in ``dataset.user_feat`` (a DataFrame,
    row 0 the padding user); returns ``{field: the user ids (rows) changed}``.

    Exactly ``round(share * n)`` of the ``n`` users get another value in each field (a field
    with a single distinct value has no other value to take: none change there); every
    other value, and every other column, stays as it was.
    """
    features = dataset.user_feat
    rng = np.random.default_rng(seed)
    users = np.arange(1, len(features))
    changed = {}
    for field in fields:
        values = features[field].to_numpy().copy()
        if dataset.field2type[field] == FeatureType.TOKEN:
            candidates = np.arange(1, dataset.num(field))  # token ids; 0 is padding / unknown
        else:
            candidates = np.unique(values[users])
        if len(candidates) < 2:
            changed[field] = np.array([], dtype=np.int64)
            continue
        rows = np.sort(rng.choice(users, size=int(round(share * len(users))), replace=False))
        for row in rows:
            others = candidates[candidates != values[row]]
            values[row] = others[rng.integers(len(others))]
        features[field] = values
        changed[field] = rows
    replaced = ", ".join(f"{field} {len(rows)}" for field, rows in changed.items())
    getLogger().warning(f"profile_noise {share}: values of the {len(users)} users replaced, by field: {replaced} "
                        f"(a field with fewer than 2 values keeps them; seed {seed})")
    return changed
