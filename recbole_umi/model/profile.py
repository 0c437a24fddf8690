"""User-profile embedding: the profile hook every plugin model builds on."""

from __future__ import annotations

import torch
import torch.nn as nn
from recbole.utils import FeatureType

from recbole_umi.settings import SettingsError

__all__ = ["ProfileEmbedding", "ProfileConfigError"]


class ProfileConfigError(SettingsError):
    """The configured profile fields do not fit the dataset."""


class ProfileEmbedding(nn.Module):
    """Embeds C user-profile fields, one table per field.

    Token fields are embedded directly (RecBole maps tokens to ids, 0 being padding /
    unknown). A token value that no user in ``dataset`` has (the training split the model
    is built on: a value only held-out users have) maps to the unknown row 0 too, not to
    a row that training never touched; which values were seen is a buffer saved with the
    model (``seen_<field>``), so a reloaded model maps the same. Float fields are first
    bucketised into ``n_float_buckets`` quantile buckets of the values of the users in
    ``dataset`` (so held-out users do not shape the buckets), then embedded like tokens
    (paper, section 3.2). RecBole has already filled missing float values with the field's
    mean; a field with no value at all among those users is refused.

    Args:
        dataset: a loaded RecBole dataset with user features.
        fields: profile field names, e.g. ``["age", "gender", "occupation"]``; C >= 1.
        embedding_size: d_f, the size of each field's embedding.
        n_float_buckets: buckets for float fields.

    Shapes: ``forward(interaction)`` returns ``(profile, per_field)`` with profile
    ``B x (C * d_f)`` (the concatenation e_u) and per_field ``B x C x d_f``.
    """

    def __init__(self, dataset, fields: list[str], embedding_size: int, n_float_buckets: int = 10):
        super().__init__()
        self.fields = list(fields)
        self.embedding_size = embedding_size
        check_profile_fields(dataset, self.fields)
        self.tables = nn.ModuleList()
        self.float_fields: list[str] = []
        training_users = dataset.inter_feat[dataset.uid_field].unique()
        for field in self.fields:
            if dataset.field2type[field] == FeatureType.TOKEN:
                num_embeddings = dataset.num(field)
                seen = torch.zeros(num_embeddings, dtype=torch.bool)
                seen[dataset.user_feat[field][training_users].long()] = True
                seen[0] = False  # 0 is the unknown value itself
                self.register_buffer(f"seen_{field}", seen)
            else:
                values = dataset.user_feat[field][training_users].float()
                quantiles = torch.linspace(0, 1, n_float_buckets + 1)[1:-1]
                edges = torch.quantile(values, quantiles).unique()
                self.register_buffer(f"bucket_edges_{field}", edges)
                self.float_fields.append(field)
                num_embeddings = len(edges) + 2  # bucket ids 1..len+1; 0 stays the padding row
            self.tables.append(nn.Embedding(num_embeddings, embedding_size, padding_idx=0))

    @property
    def output_size(self) -> int:
        """d_u = C * d_f."""
        return len(self.fields) * self.embedding_size

    def field_ids(self, interaction) -> list[torch.Tensor]:
        """The id of each field for each user in the batch: C tensors of shape B."""
        ids = []
        for field in self.fields:
            value = interaction[field]
            if field in self.float_fields:
                value = value.float().reshape(-1)
                value = torch.bucketize(value, getattr(self, f"bucket_edges_{field}")) + 1
            else:  # values no training user has: the unknown row 0
                value = value.long().reshape(-1)
                value = torch.where(getattr(self, f"seen_{field}")[value], value, torch.zeros_like(value))
            ids.append(value.long().reshape(-1))
        return ids

    def _load_from_state_dict(self, state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys, error_msgs):
        """Models saved before ``seen_<field>`` existed load too: they keep the mask this
        model computed from the training users it was built on (the same users)."""
        super()._load_from_state_dict(state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys, error_msgs)
        for field in self.fields:
            key = f"{prefix}seen_{field}"
            if key in missing_keys and field not in self.float_fields:
                missing_keys.remove(key)

    def forward(self, interaction) -> tuple[torch.Tensor, torch.Tensor]:
        per_field = torch.stack(
            [table(ids) for table, ids in zip(self.tables, self.field_ids(interaction))], dim=1
        )
        return per_field.flatten(1), per_field


def check_profile_fields(dataset, fields: list[str]) -> None:
    """Fail at start-up, naming the field, if a configured profile field is unusable."""
    if not fields:
        raise ProfileConfigError("profile_fields", fields, "must name at least one field: this model uses the profile")
    available = [] if dataset.user_feat is None else list(dataset.user_feat.columns)
    for field in fields:
        if field not in available:
            where = (
                f"the dataset {dataset.dataset_name!r} has no user features loaded "
                f"(no {dataset.dataset_name}.user file, or load_col lacks 'user')"
                if dataset.user_feat is None
                else f"the loaded user features are {sorted(available)}"
            )
            raise ProfileConfigError(
                "profile_fields", fields,
                f"the field {field!r} is not available: {where}. Set profile_fields to "
                f"fields of the .user file and list them in load_col['user'].",
            )
        if dataset.field2type[field] not in (FeatureType.TOKEN, FeatureType.FLOAT):
            raise ProfileConfigError(
                "profile_fields", fields,
                f"the field {field!r} has type {dataset.field2type[field].value}; "
                "only token and float fields can be profile fields",
            )
        if field in (dataset.config["numerical_features"] or []):
            raise ProfileConfigError(
                "profile_fields", fields,
                f"the field {field!r} is in numerical_features, which RecBole stores as "
                "(value, 1) pairs; profile float fields are bucketised instead: remove it there",
            )
        users = dataset.inter_feat[dataset.uid_field].unique()  # the users the model learns from
        values = dataset.user_feat[field][users]
        missing = values.isnan() if dataset.field2type[field] == FeatureType.FLOAT else values == 0
        if len(users) and missing.all():
            raise ProfileConfigError(
                "profile_fields", fields,
                f"the field {field!r} has no value for any of the {len(users)} training users (all missing "
                f"in {dataset.dataset_name}.user): every user would get the same embedding. Fill it in or "
                "leave it out of profile_fields",
            )
