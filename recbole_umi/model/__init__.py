"""The plugin's models, their shared base class, layers, profile hook and losses."""

from recbole_umi.model.base import ModelConfigError, MultiInterestRecommender
from recbole_umi.model.comirec import ComiRec, ComiRecDR, ComiRecSA
from recbole_umi.model.losses import LossConfigError, MultiInterestLoss
from recbole_umi.model.mind import MIND
from recbole_umi.model.profile import ProfileConfigError, ProfileEmbedding
from recbole_umi.model.single_interest import ProfileDSSM, YoutubeDNN
from recbole_umi.model.umi import UMI

__all__ = [
    "MultiInterestRecommender",
    "UMI",
    "MIND",
    "ComiRec",
    "ComiRecDR",
    "ComiRecSA",
    "ProfileDSSM",
    "YoutubeDNN",
    "MultiInterestLoss",
    "ProfileEmbedding",
    "ModelConfigError",
    "LossConfigError",
    "ProfileConfigError",
]
