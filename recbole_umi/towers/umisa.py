r"""UMISA's user tower: order-aware, user-aware multi-interest matching (this project's model,
docs/design.md "UMISA").

The runs of docs/results.md point at three things that matter on ml-1m: the order of the
history (SASRec's causal encoder holds where the order-free models lose), several interests,
and the training objective. UMI's user-aware routing has nothing order-aware to route and
collapses (routing overlap 0.97). UMISA puts the profile where UMI puts it, on top of
SASRec's contextual states instead of raw item embeddings:

1. **States**: SASRec's causal transformer encoder over the history (item and position
   embeddings; :class:`~recbole_umi.towers.transformer.CausalTransformerEncoder`), one state
   h_t per position, sharing the item table that scores the items.
2. **Profile-steered extraction** of the interests from the states (``profile_steering``):
   ``queries``: ComiRec-SA's attention heads with the profile in their hidden layer,
   ``A = softmax_T(W2 tanh(W1 h_t + U e_u + b1) + b2)``, so each head's choice of positions
   depends on who the user is; ``gate``: UGANet's weight of each state (Eq 2 with h_t for
   e_i), ``a_t = sigmoid(MLP([h_t ; e_u]))``, multiplies the states the heads read and pool
   (UMI's DAR on contextual states); ``none``: ComiRec-SA's heads alone. ``v_k = sum_t A_tk h'_t``.
3. **Recent interest** (``recent_interest``): one of the K interests is the state at the last
   position, SASRec's user vector, the best single vector these runs found.
4. **Refinement** with the profile (``refine_interests``), as UMI's IR (Eq 7-9:
   per-interest field weights; ``use_ir: False``, the same static profile for every
   interest), added to the interest: ``o_k = v_k + MLP([sum_c d_kc e_c ; v_k])``: the
   encoder's vectors stay in the sum and the profile moves them (UMI's refinement replaces
   the capsule); for a user without history (v = 0) the interests are the profile's alone.
   Without it ``o_k = v_k``; with ``profile_steering: none`` too, the tower reads no profile
   (K order-aware interests alone; K = 1 with the recent interest is SASRecMatching).

Scores are max over the K interests (Eq 1), trained with any of the shared objectives
(harder negatives included). Empty histories: the states are not read (v_k = 0), the
profile answers (with the refinement; without it every score is 0).
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from recbole_umi.towers.base import UserTower, xavier_init
from recbole_umi.towers.layers import MLP, SelfAttentiveExtractor, profile_refinement
from recbole_umi.towers.schema import DataSchema
from recbole_umi.towers.settings import UMISASettings
from recbole_umi.towers.transformer import CausalTransformerEncoder, last_state

__all__ = ["UMISATower"]


class UMISATower(UserTower):
    """Causal transformer states -> K interests extracted with the profile steering ->
    refined with the profile (module docstring; docs/design.md).

    Shapes: ``interests_and_routing(batch)`` -> ``B x K x d`` interests and ``B x T x K``
    weights of each history position in each interest (the extraction's attention, times
    the gate with ``gate``; the recent interest's column is 1 at the last position, so a
    ``routing_regularization`` keeps the heads off the last position too).
    """

    settings_class = UMISASettings
    causal = True

    def __init__(self, settings: UMISASettings, schema: DataSchema):
        super().__init__(settings, schema)
        d, k, n_fields = settings.embedding_size, settings.n_interests, len(schema.profile)
        hidden = settings.uganet_hidden_size
        self.profile_steering = settings.profile_steering
        self.recent_interest = settings.recent_interest
        self.refine_interests = settings.refine_interests
        self.use_ir = settings.use_ir and self.refine_interests  # the field weights are the refinement's
        n_heads = k - 1 if self.recent_interest else k  # 0 only without steering (UMISASettings)
        # the encoder and the item table (and the profile's tables where it is read) first, so that the
        # optional parts below do not change their draws
        self.encoder = CausalTransformerEncoder(settings, schema.n_items, schema.max_history_length)
        self.encoder.share_item_table(self.item_embedding)  # one table for the encoder's input and the scores
        profile_size = self.profile.output_size if self.profile is not None else 0
        context = profile_size if self.profile_steering == "queries" else None
        self.extractor = (SelfAttentiveExtractor(d, settings.attention_hidden_size, n_heads, context_size=context)
                          if n_heads > 0 else None)
        self.uganet = MLP(d + profile_size, hidden, 1, nn.Sigmoid()) if self.profile_steering == "gate" else None
        self.field_relevance = MLP(profile_size + d, hidden, n_fields, nn.Sigmoid()) if self.use_ir else None
        self.refinement = MLP(profile_size + d, settings.refine_hidden_size, d) if self.refine_interests else None
        for module in (self.profile, self.extractor, self.uganet, self.field_relevance, self.refinement):
            if module is not None:
                module.apply(xavier_init)

    @classmethod
    def reads_profile(cls, settings: UMISASettings) -> bool:
        """The profile is read where it steers the extraction or refines the interests."""
        return settings.profile_steering != "none" or settings.refine_interests

    @classmethod
    def answers_empty_history(cls, settings: UMISASettings) -> bool:
        """Without a history only the refinement gives interests (steering weighs states)."""
        return settings.refine_interests

    def user_profile(self, batch) -> tuple[torch.Tensor | None, torch.Tensor | None]:
        """The profile encoder's ``(B x d_u, B x C x d_f)``, or ``(None, None)`` for a tower
        that reads no profile."""
        return self.profile(batch) if self.profile is not None else (None, None)

    def refine(self, capsules: torch.Tensor, profile: torch.Tensor | None,
               per_field: torch.Tensor | None) -> torch.Tensor:
        """The interests from the extracted ``... x K x d`` capsules: refined with the
        profile, residually (``refine_interests``), or the capsules themselves."""
        if self.refinement is None:
            return capsules
        refined, _ = profile_refinement(capsules, profile, per_field, self.refinement, self.field_relevance)
        return capsules + refined

    def steered(self, states: torch.Tensor,
                profile: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor | None]:
        """What the heads read under ``profile_steering``: the states ``B x T x d`` (weighted
        by UGANet's gate with ``gate``), their context (the profile with ``queries``, else
        None) and the gate ``B x T x 1`` (None without ``gate``)."""
        if self.profile_steering == "gate":
            gate = self.uganet.forward_shared(states, profile)
            return states * gate, None, gate
        return states, profile if self.profile_steering == "queries" else None, None

    def extract(self, states: torch.Tensor, mask: torch.Tensor,
                profile: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The extracted interests ``B x K' x d`` and their attention ``B x T x K'`` from
        the states ``B x T x d`` (K' = K, or K - 1 beside the recent interest)."""
        pooled, context, gate = self.steered(states, profile)
        extracted, attention = self.extractor(pooled, mask, context)
        # with the gate, the weight of position t in interest k is A_tk a_t
        return extracted, attention if gate is None else attention * gate

    def prefix_interests(self, batch) -> torch.Tensor:
        """The interests after every prefix of the history in one pass, ``B x T x K x d``
        (index j: what :meth:`interests_and_routing` gives for the history cut after j; the
        states are causal, the heads pool positions up to j). Padded prefixes hold values
        nothing should read."""
        item_seq = batch[self.schema.history_field]
        mask = item_seq != 0
        states = self.encoder.states(item_seq)  # B x T x d
        profile, per_field = self.user_profile(batch)
        parts = [states.unsqueeze(2)] if self.recent_interest else []  # prefix j's last state is state j
        if self.extractor is not None:
            pooled, context, _ = self.steered(states, profile)
            parts.append(self.extractor.prefix_forward(pooled, mask, context))
        capsules = torch.cat(parts, dim=2)  # B x T x K x d
        if self.refinement is None:
            return capsules
        length = capsules.size(1)
        # every prefix of a user has the user's profile
        refined = self.refine(capsules.flatten(0, 1), profile.repeat_interleave(length, dim=0),
                              per_field.repeat_interleave(length, dim=0))
        return refined.view(capsules.shape)

    def interests_and_routing(self, batch) -> tuple[torch.Tensor, torch.Tensor]:
        item_seq = batch[self.schema.history_field]
        mask = item_seq != 0
        lengths = mask.sum(dim=1)
        has_history = (lengths > 0).to(self.item_embedding.weight.dtype).view(-1, 1, 1)
        states = self.encoder.states(item_seq)  # B x T x d
        profile, per_field = self.user_profile(batch)
        parts, weights = [], []
        if self.recent_interest:
            parts.append(last_state(states, lengths.clamp(min=1)).unsqueeze(1))  # B x 1 x d
            last = F.one_hot((lengths - 1).clamp(min=0), item_seq.size(1))
            weights.append((last * mask).to(states.dtype).unsqueeze(-1))  # B x T x 1
        if self.extractor is not None:
            extracted, attention = self.extract(states, mask, profile)
            parts.append(extracted)
            weights.append(attention * mask.unsqueeze(-1))
        capsules = torch.cat(parts, dim=1) * has_history  # B x K x d; a user without history: 0
        return self.refine(capsules, profile, per_field), torch.cat(weights, dim=-1)
