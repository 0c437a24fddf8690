"""The towers: plain torch user (and item) towers, their layers, losses and samplers.

Nothing here imports RecBole (``tests/test_architecture.py`` checks it): a tower is built
from its typed settings object (:mod:`recbole_umi.towers.settings`) and a small
:class:`~recbole_umi.towers.schema.DataSchema`, and takes a batch as a mapping from field
names to tensors. The registered RecBole models (:mod:`recbole_umi.model`) are thin adapters
around these; serving (:mod:`recbole_umi.recommend`) builds them straight from an export.
"""

from recbole_umi.towers.base import UserTower
from recbole_umi.towers.comirec import ComiRecTower
from recbole_umi.towers.losses import LossConfigError, MultiInterestLoss, NegativeSampler
from recbole_umi.towers.mind import MINDTower
from recbole_umi.towers.profile import ProfileConfigError, ProfileEncoder
from recbole_umi.towers.schema import DataSchema, ProfileField, profile_field
from recbole_umi.towers.single_interest import PopularityTower, ProfileDSSMTower, SASRecTower, YoutubeDNNTower
from recbole_umi.towers.umi import UMITower
from recbole_umi.towers.umisa import UMISATower

__all__ = [
    "TOWER_CLASSES",
    "UserTower",
    "UMITower",
    "UMISATower",
    "MINDTower",
    "ComiRecTower",
    "ProfileDSSMTower",
    "YoutubeDNNTower",
    "SASRecTower",
    "PopularityTower",
    "DataSchema",
    "ProfileField",
    "profile_field",
    "ProfileEncoder",
    "MultiInterestLoss",
    "NegativeSampler",
    "LossConfigError",
    "ProfileConfigError",
]

# The tower of each registered model name (recbole_umi.registry.PLUGIN_MODELS; a test checks
# that each adapter's tower_class is this one): serving builds a tower by its export's name.
TOWER_CLASSES: dict[str, type[UserTower]] = {
    "UMI": UMITower,
    "UMISA": UMISATower,
    "MIND": MINDTower,
    "ComiRec": ComiRecTower,
    "ComiRecDR": ComiRecTower,
    "ComiRecSA": ComiRecTower,
    "ProfileDSSM": ProfileDSSMTower,
    "YoutubeDNN": YoutubeDNNTower,
    "SASRecMatching": SASRecTower,
    "Popularity": PopularityTower,
}
