"""Typed settings of the towers and the objective: one frozen dataclass per model.

Each field is the config key of the same name, and :mod:`recbole_umi.settings` is the one
place its type and range are written (:data:`recbole_umi.settings.SETTINGS`): a settings
object checks every field against that entry, and against the narrower range a class gives
in ``restrictions``, when it is made. Errors are :class:`recbole_umi.settings.SettingsError`
naming the key, the value and what is allowed. The defaults live in ``properties/model/*.yaml``
(a test checks that every field of a model's settings has one there).

A key means one thing for the model that reads it: UMI's UGANet / Eq 7 width is
``uganet_hidden_size``, ComiRec-SA's attention width ``attention_hidden_size``.

Example::

    settings = UMISettings.from_config({"embedding_size": 32, "n_interests": 3, ...})
    settings = UMISettings(embedding_size=32, n_interests=0, ...)   # SettingsError: 'n_interests' = 0
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

from recbole_umi.settings import (
    COMIREC_MAPS,
    COMIREC_VARIANTS,
    HIDDEN_ACTIVATIONS,
    LOSS_TYPES,
    NEGATIVE_SAMPLERS,
    PROFILE_STEERINGS,
    SETTINGS,
    Setting,
    SettingsError,
    setting,
)

__all__ = [
    "Settings",
    "TowerSettings",
    "ProfileTowerSettings",
    "UMISettings",
    "MINDSettings",
    "ComiRecSettings",
    "SingleInterestSettings",
    "YoutubeDNNSettings",
    "ProfileDSSMSettings",
    "CausalEncoderSettings",
    "SASRecSettings",
    "UMISASettings",
    "PopularitySettings",
    "ObjectiveSettings",
    "ProfileSettings",
]


@dataclass(frozen=True)
class Settings:
    """Base of the settings objects: every field is checked against ``SETTINGS[field]`` and
    ``restrictions`` when the object is made; lists become tuples."""

    # narrower ranges than recbole_umi.settings gives, by key (a single-interest model's K)
    restrictions: ClassVar[dict[str, Setting]] = {}

    def __post_init__(self):
        for key in self.keys():
            value = SETTINGS[key].check(key, getattr(self, key))
            if key in self.restrictions:
                value = self.restrictions[key].check(key, value)
            object.__setattr__(self, key, tuple(value) if isinstance(value, list) else value)

    @classmethod
    def keys(cls) -> tuple[str, ...]:
        """The config keys this object holds."""
        return tuple(field.name for field in dataclasses.fields(cls))

    @classmethod
    def from_config(cls, config: Any):
        """The settings from ``config``: anything with ``key in config`` and ``config[key]``
        (RecBole's Config, a dict of saved settings). A missing or empty key is a
        :class:`~recbole_umi.settings.SettingsError`."""
        return cls(**{key: setting(config, key) for key in cls.keys()})


@dataclass(frozen=True)
class TowerSettings(Settings):
    """What every user tower reads: d and K."""

    embedding_size: int
    n_interests: int


@dataclass(frozen=True)
class ProfileTowerSettings(TowerSettings):
    """A tower that embeds the user profile: d_f, each field's embedding size."""

    profile_embedding_size: int


@dataclass(frozen=True)
class UMISettings(ProfileTowerSettings):
    """UMI (docs/design.md): UGANet and Eq 7 width d_h, Eq 9 width, routing, ablations."""

    uganet_hidden_size: int
    refine_hidden_size: int
    routing_iterations: int
    routing_init_std: float
    use_dar: bool
    use_ir: bool


@dataclass(frozen=True)
class MINDSettings(ProfileTowerSettings):
    """MIND: routing, the MLP over [capsule ; profile], the label-aware readout's power p."""

    routing_iterations: int
    routing_init_std: float
    mlp_hidden_size: int
    readout_power: float
    dynamic_interests: bool


@dataclass(frozen=True)
class ComiRecSettings(TowerSettings):
    """ComiRec: the extractor, DR's iterations, SA's attention width."""

    comirec_variant: Literal[COMIREC_VARIANTS]
    routing_iterations: int
    attention_hidden_size: int
    comirec_maps: Literal[COMIREC_MAPS]
    position_embedding: bool


@dataclass(frozen=True)
class SingleInterestSettings(TowerSettings):
    """A tower with one interest (K = 1)."""

    restrictions: ClassVar[dict[str, Setting]] = {
        "n_interests": Setting(int, low=1, high=1, note="this is a single-interest model"),
    }


@dataclass(frozen=True)
class YoutubeDNNSettings(SingleInterestSettings):
    """YouTube DNN: d_f and the user MLP's width."""

    profile_embedding_size: int
    mlp_hidden_size: int


@dataclass(frozen=True)
class ProfileDSSMSettings(SingleInterestSettings):
    """ProfileDSSM: d_f and the width of both towers' MLPs."""

    profile_embedding_size: int
    mlp_hidden_size: int


@dataclass(frozen=True)
class PopularitySettings(SingleInterestSettings):
    """Popularity reads nothing of its own (d and K only, as every tower)."""


@dataclass(frozen=True)
class CausalEncoderSettings(Settings):
    """SASRec's causal transformer encoder (:mod:`recbole_umi.towers.transformer`), with
    RecBole's SASRec settings; its hidden size is d (``embedding_size``)."""

    embedding_size: int
    n_layers: int
    n_heads: int
    inner_size: int
    hidden_dropout_prob: float
    attn_dropout_prob: float
    hidden_act: Literal[HIDDEN_ACTIVATIONS]
    layer_norm_eps: float
    initializer_range: float


@dataclass(frozen=True)
class SASRecSettings(SingleInterestSettings, CausalEncoderSettings):
    """SASRecMatching: the causal encoder's output at the last position is the user (K = 1)."""


@dataclass(frozen=True)
class UMISASettings(ProfileTowerSettings, CausalEncoderSettings):
    """UMISA (docs/design.md): the causal encoder, the profile-steered extraction of the
    interests from its states (width ``attention_hidden_size``; UGANet's width
    ``uganet_hidden_size`` for the gate and Eq 7), the refinement (Eq 9 width; ``use_ir``
    only with ``refine_interests``), the recent interest."""

    attention_hidden_size: int
    uganet_hidden_size: int
    refine_hidden_size: int
    profile_steering: Literal[PROFILE_STEERINGS]
    use_ir: bool
    recent_interest: bool
    refine_interests: bool

    def __post_init__(self):
        super().__post_init__()
        if not self.refine_interests and not self.use_ir:
            # UMISA-IR would be UMISA (a variant must differ from its model)
            raise SettingsError("use_ir", False, "must be True (its default) with refine_interests False: the field "
                                "weights are part of the refinement, which refine_interests False drops")
        if self.n_interests == 1 and self.recent_interest and self.profile_steering != "none":
            raise SettingsError("profile_steering", self.profile_steering,
                                "must be 'none': with n_interests 1 and recent_interest True no head extracts an "
                                "interest for the profile to steer")


@dataclass(frozen=True)
class ObjectiveSettings(Settings):
    """The training objective every model shares (:mod:`recbole_umi.towers.losses`) and the
    routing regularisation (docs/design.md)."""

    loss_type: Literal[LOSS_TYPES]
    harder_negatives: bool
    n_negatives: int
    negative_sampler: Literal[NEGATIVE_SAMPLERS]
    shared_negatives: bool
    logq_correction: bool
    softmax_temperature: float
    routing_regularization: float


@dataclass(frozen=True)
class ProfileSettings(Settings):
    """Which user fields a profile tower embeds and how many quantile buckets a float field
    is cut into (read where the data schema is made from the training data)."""

    profile_fields: tuple[str, ...]
    float_profile_buckets: int
