r"""MIND's user tower.

Reference:
    Chao Li et al. "Multi-Interest Network with Dynamic Routing for Recommendation at
    Tmall." In CIKM 2019.

As decided in ``docs/design.md``: one shared bilinear map for all interests, routing logits
from N(0, sigma^2) that accumulate (``b += u . v``) over 3 iterations with a softmax over the
interests, the profile concatenated to every capsule, then an MLP. The training readout is
label-aware attention with power ``readout_power`` (``inf``: the positive's best interest,
Eq 10); ``harder_negatives: True`` gives the paper's MIND+HN. ``dynamic_interests: True``
gives a user with n items in its history (the last T: the model's input) the MIND paper's
K'_u = max(1, min(K, floor(log2 n))) interests (Algorithm 1 fixes K'_u before routing): the
routing runs over its first K'_u capsules alone (the others' logits masked, so they draw no
item's weight), and its other interests are copies of its first, so that no score (Eq 1,
harder negatives, retrieval, which merges an item found twice) counts them; a finite
``readout_power`` would count a copy twice and is refused with it.
"""

from __future__ import annotations

import torch

from recbole_umi.towers.base import UserTower, xavier_init
from recbole_umi.towers.layers import MLP, RoutingLogits, dynamic_routing, mask_logits
from recbole_umi.towers.ops import mapped_lookup
from recbole_umi.towers.schema import DataSchema
from recbole_umi.settings import SettingsError
from recbole_umi.towers.settings import MINDSettings

__all__ = ["MINDTower"]


class MINDTower(UserTower):
    """Behaviour-to-interest routing with a shared map, profile concatenated to each capsule."""

    settings_class = MINDSettings

    def __init__(self, settings: MINDSettings, schema: DataSchema):
        super().__init__(settings, schema)
        d = settings.embedding_size
        self.routing_iterations = settings.routing_iterations
        self.readout_power = settings.readout_power
        self.shared_map = torch.nn.Linear(d, d, bias=False)
        self.routing_logits = RoutingLogits(schema.max_history_length, settings.n_interests, settings.routing_init_std)
        self.interest_mlp = MLP(d + self.profile.output_size, settings.mlp_hidden_size, d)
        self.dynamic_interests = settings.dynamic_interests
        if self.dynamic_interests and self.readout_power != float("inf"):
            raise SettingsError("readout_power", self.readout_power,
                                "must be inf with dynamic_interests: a finite power would weigh a copied interest twice")
        self.apply(xavier_init)

    def interest_counts(self, mask: torch.Tensor) -> torch.Tensor:
        """K'_u of each user: ``max(1, min(K, floor(log2 n_u)))`` for its ``n_u`` history items,
        counted in integers (the powers of two ``2 .. 2^K`` that ``n_u`` reaches).

        Shapes: ``mask: B x T`` -> ``B``."""
        powers = 2 ** torch.arange(1, self.n_interests + 1, device=mask.device)
        return (mask.sum(dim=1, keepdim=True) >= powers).sum(dim=1).clamp(min=1)

    def interests_and_routing(self, batch) -> tuple[torch.Tensor, torch.Tensor]:
        item_seq = batch[self.schema.history_field]
        mask = item_seq != 0
        batch_size, length = item_seq.shape
        votes = mapped_lookup(self.item_embedding, item_seq, self.shared_map.weight)  # B x T x d: S e_i
        votes = votes.unsqueeze(2).expand(-1, -1, self.n_interests, -1)
        initial = self.routing_logits(batch_size, length)  # B x T x K
        if self.dynamic_interests:  # routed over the user's K'_u capsules: the others get no item's weight
            kept = torch.arange(self.n_interests, device=mask.device) < self.interest_counts(mask).unsqueeze(1)
            initial = mask_logits(initial, kept.unsqueeze(1))  # their capsules stay 0, their logits at the floor
        capsules, routing = dynamic_routing(votes, mask, initial, self.routing_iterations, accumulate=True)
        profile, _ = self.profile(batch)
        interests = self.interest_mlp.forward_shared(capsules, profile)
        if self.dynamic_interests:  # a user's interests past its K'_u copy its first: they win no score
            interests = torch.where(kept.unsqueeze(-1), interests, interests[:, :1])
        return interests, routing
