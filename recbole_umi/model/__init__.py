"""The plugin's models as RecBole sees them: thin adapters around the towers.

Each registered class (UMI, UMISA, MIND, ComiRec, ComiRecDR, ComiRecSA, ProfileDSSM, YoutubeDNN,
SASRecMatching, Popularity) is a RecBole ``SequentialRecommender`` that builds its tower
(:mod:`recbole_umi.towers`) from RecBole's config and dataset.
"""

from recbole_umi import compat

compat.apply()  # before anything imports RecBole

from recbole_umi.model.base import MatchingRecommender, ModelConfigError, MultiInterestRecommender  # noqa: E402
from recbole_umi.model.comirec import ComiRec, ComiRecDR, ComiRecSA  # noqa: E402
from recbole_umi.model.mind import MIND  # noqa: E402
from recbole_umi.model.popularity import Popularity  # noqa: E402
from recbole_umi.model.single_interest import ProfileDSSM, SASRecMatching, YoutubeDNN  # noqa: E402
from recbole_umi.model.umi import UMI  # noqa: E402
from recbole_umi.model.umisa import UMISA  # noqa: E402
from recbole_umi.towers.losses import LossConfigError  # noqa: E402
from recbole_umi.towers.profile import ProfileConfigError  # noqa: E402

__all__ = [
    "MatchingRecommender",
    "MultiInterestRecommender",
    "UMI",
    "UMISA",
    "MIND",
    "ComiRec",
    "ComiRecDR",
    "ComiRecSA",
    "ProfileDSSM",
    "YoutubeDNN",
    "SASRecMatching",
    "Popularity",
    "ModelConfigError",
    "LossConfigError",
    "ProfileConfigError",
]
