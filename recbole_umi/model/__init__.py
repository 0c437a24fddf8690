"""The plugin's models, their shared base class, layers, profile hook and losses."""

from recbole_umi import compat

compat.apply()  # before anything imports RecBole

from recbole_umi.model.base import ModelConfigError, MultiInterestRecommender  # noqa: E402
from recbole_umi.model.comirec import ComiRec, ComiRecDR, ComiRecSA  # noqa: E402
from recbole_umi.model.losses import LossConfigError, MultiInterestLoss  # noqa: E402
from recbole_umi.model.mind import MIND  # noqa: E402
from recbole_umi.model.popularity import Popularity  # noqa: E402
from recbole_umi.model.profile import ProfileConfigError, ProfileEmbedding  # noqa: E402
from recbole_umi.model.single_interest import ProfileDSSM, SASRecMatching, YoutubeDNN  # noqa: E402
from recbole_umi.model.umi import UMI  # noqa: E402

__all__ = [
    "MultiInterestRecommender",
    "UMI",
    "MIND",
    "ComiRec",
    "ComiRecDR",
    "ComiRecSA",
    "ProfileDSSM",
    "YoutubeDNN",
    "SASRecMatching",
    "Popularity",
    "MultiInterestLoss",
    "ProfileEmbedding",
    "ModelConfigError",
    "LossConfigError",
    "ProfileConfigError",
]
