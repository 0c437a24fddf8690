"""Known answers: every model, trained end to end, finds the item group each user lives in.

In the style of the ``implicit`` library's checkerboard tests: a synthetic dataset whose
right answer is known. The 32 items form 4 groups of 8; each user interacts with all 8
items of one group, in random order, and nothing else. Under the paper's user-split
protocol (``eval_protocol: user_split``) a held-out user's first 7 items are the history
and the 8th is the one target, so recall@8 (the paper's HitRate@8) is

- 1.0 for a model that ranks the user's group first (the ideal);
- about 8 / 32 = 0.25 for random scores, for popularity (every item is about as popular
  as any other, see ``test_popularity_cannot_pass``) and for a model that ignores what
  tells it the group.

The group is in the history (every history item belongs to it) and in the profile: the
``gender`` token is ``g0``..``g3``. History models get only ``age`` (random, so a
useless float field: it still goes through the bucketing) as their profile, so they must
read the history; ProfileDSSM, which sees only the profile, gets ``age`` and ``gender``
and must pick the field that matters. Each model runs through ``recbole_umi.run`` with
its default loss; UMI also runs under the other two objectives, so the three losses
(sampled softmax, sampled softmax + harder negatives, full softmax) are each trained once.
"""

from collections import Counter

import numpy as np
import pytest
import torch

from recbole_umi.quick_start import run
from tests.conftest import TINY_SETTINGS, write_atomic

N_GROUPS, GROUP_SIZE, N_USERS = 4, 8, 400  # 40 test users (10%)
N_ITEMS = N_GROUPS * GROUP_SIZE
IDEAL = 1.0
CHANCE = GROUP_SIZE / N_ITEMS  # 0.25: random scores; with 40 test users its std is ~0.07
# Two thirds of the way from chance to the ideal: 0.75, ~7 std above chance.
THRESHOLD = CHANCE + (IDEAL - CHANCE) * 2 / 3

LOSSES = {
    "sampled": {"loss_type": "sampled_softmax", "harder_negatives": False},
    "sampled+HN": {"loss_type": "sampled_softmax", "harder_negatives": True},
    "full": {"loss_type": "full_softmax", "harder_negatives": False},
}
# id -> (model, config overrides). Test recall@8 measured with seeds 2020 / 2021 / 2022 /
# 2023 (this file's data and settings, one torch thread); the test runs seed 2020.
CASES = {
    "UMI": ("UMI", {}),  # default loss: sampled + HN; 1.0 / 1.0 / 1.0 / 1.0
    "UMI-sampled": ("UMI", LOSSES["sampled"]),  # 1.0 / 1.0 / 1.0 / 1.0
    "UMI-full": ("UMI", LOSSES["full"]),  # 1.0 / 1.0 / 1.0 / 0.975
    "UMISA": ("UMISA", {}),  # 1.0 / 1.0 / 0.525 / 1.0
    "UMISA-gate": ("UMISA", {"profile_steering": "gate"}),  # 1.0 / 1.0 / 1.0 / 1.0
    "MIND": ("MIND", {}),  # 1.0 / 1.0 / 0.975 / 1.0
    "ComiRecDR": ("ComiRecDR", {}),  # 1.0 / 0.925 / 1.0 / 1.0
    "ComiRecSA": ("ComiRecSA", {}),  # 1.0 / 1.0 / 1.0 / 1.0
    "YoutubeDNN": ("YoutubeDNN", {}),  # 1.0 / 1.0 / 1.0 / 1.0
    "ProfileDSSM": ("ProfileDSSM", {"profile_fields": ["age", "gender"]}),  # 1.0 / 1.0 / 1.0 / 1.0
    "SASRec": ("SASRec", {}),  # RecBole's own model and loss (CE); 1.0 / 1.0 / 1.0 / 1.0
    "SASRecMatching": ("SASRecMatching", {}),  # the same encoder, the plugin's sampled softmax
}
# Broken on purpose (scores replaced by random ones, the history items all replaced by
# item 1, ProfileDSSM's profile ids all set to 1) the same runs scored 0.15 - 0.325.


def group_sequences(seed=0):
    """Every user's 8 group items in random order; profile (random age, group token)."""
    rng = np.random.default_rng(seed)
    sequences, profiles = {}, {}
    for user in range(1, N_USERS + 1):
        group = int(rng.integers(N_GROUPS))
        sequences[user] = [int(item) for item in group * GROUP_SIZE + 1 + rng.permutation(GROUP_SIZE)]
        profiles[user] = (float(rng.integers(18, 60)), f"g{group}")
    return sequences, profiles


@pytest.fixture(scope="module", autouse=True)
def one_torch_thread():
    """These models are tiny: a second intra-op thread buys nothing, and on a shared
    2-core machine threads spinning against other work made a run up to 5x slower.
    One thread also makes the measured values below independent of the core count."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def groups_data(tmp_path_factory):
    sequences, profiles = group_sequences()
    return write_atomic(tmp_path_factory.mktemp("groups") / "data", "groups", sequences, profiles)


def test_popularity_cannot_pass():
    """The threshold is far above what ranking by popularity reaches on this data."""
    sequences, _ = group_sequences()
    counts = Counter(item for items in sequences.values() for item in items[:-1])
    top = {item for item, _ in counts.most_common(GROUP_SIZE)}
    popularity = np.mean([items[-1] in top for items in sequences.values()])
    assert abs(popularity - CHANCE) < 0.1, popularity  # measured: 0.24
    assert popularity < THRESHOLD - 0.3


@pytest.mark.parametrize("case", list(CASES))
def test_model_finds_the_users_group(case, groups_data, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # RecBole writes log/ into the working directory
    model, overrides = CASES[case]
    config = {
        **TINY_SETTINGS,
        "data_path": str(groups_data),
        "checkpoint_dir": str(tmp_path / "saved"),
        "eval_protocol": "user_split",
        "train_neg_sample_args": None,
        "topk": [GROUP_SIZE],
        "valid_metric": f"Recall@{GROUP_SIZE}",
        "profile_fields": ["age"],  # noise: the history must tell the group
        "seed": 2020,
        "epochs": 6,
        "learning_rate": 0.02,
        "train_batch_size": 128,
        **overrides,
    }
    result = run(model, "groups", config_dict=config, saved=False)
    recall = result["test_result"][f"recall@{GROUP_SIZE}"]
    assert recall >= THRESHOLD, f"{case}: recall@{GROUP_SIZE} {recall:.3f}, threshold {THRESHOLD}, chance {CHANCE}"
