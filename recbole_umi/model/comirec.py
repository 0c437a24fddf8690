"""ComiRec (Cen et al., KDD'20) registered with RecBole: the adapters of
:class:`recbole_umi.towers.comirec.ComiRecTower`; ``harder_negatives: True`` gives ComiRec+HN."""

from __future__ import annotations

from recbole_umi.model.base import MatchingRecommender
from recbole_umi.settings import Setting
from recbole_umi.towers.comirec import ComiRecTower

__all__ = ["ComiRec", "ComiRecDR", "ComiRecSA"]


class ComiRec(MatchingRecommender):
    """ComiRec with the extractor chosen by ``comirec_variant`` (``DR`` or ``SA``)."""

    tower_class = ComiRecTower


class ComiRecDR(ComiRec):
    """ComiRec with dynamic routing (the paper's "ComiRec" row)."""

    setting_restrictions = {
        "comirec_variant": Setting(str, choices=("DR",), note="fixed for ComiRecDR; use --model=ComiRec to choose the variant by config")
    }


class ComiRecSA(ComiRec):
    """ComiRec with the self-attentive extractor."""

    setting_restrictions = {
        "comirec_variant": Setting(str, choices=("SA",), note="fixed for ComiRecSA; use --model=ComiRec to choose the variant by config")
    }
