"""User-profile encoder: the profile every profile tower builds on (paper, section 3.2)."""

from __future__ import annotations

import torch
import torch.nn as nn

from recbole_umi.settings import SettingsError
from recbole_umi.towers.schema import ProfileField

__all__ = ["ProfileEncoder", "ProfileConfigError"]


class ProfileConfigError(SettingsError):
    """The configured profile fields do not fit the data."""


class ProfileEncoder(nn.Module):
    """Embeds C user-profile fields, one table per field.

    Token fields are embedded directly (0 being padding / unknown). A token value that no
    training user holds maps to the unknown row 0 too, not to a row training never touched;
    which values were seen is a buffer saved with the model (``seen_<field>``), so a
    reloaded model maps the same. Float fields are first cut into the schema's quantile
    buckets (``bucket_edges_<field>``, buffers too), then embedded like tokens.

    Args:
        fields: the schema's profile fields (C >= 1).
        embedding_size: d_f, the size of each field's embedding.

    Shapes: ``forward(batch)`` returns ``(profile, per_field)`` with profile ``B x (C * d_f)``
    (the concatenation e_u) and per_field ``B x C x d_f``.
    """

    def __init__(self, fields: tuple[ProfileField, ...], embedding_size: int):
        super().__init__()
        if not fields:
            raise ProfileConfigError("profile_fields", [], "must name at least one field: this model uses the profile")
        self.fields = [field.name for field in fields]
        self.embedding_size = embedding_size
        self.tables = nn.ModuleList()
        self.float_fields: list[str] = []
        for field in fields:
            if field.kind == "token":
                self.register_buffer(f"seen_{field.name}", torch.tensor(field.seen, dtype=torch.bool))
            else:
                self.register_buffer(f"bucket_edges_{field.name}", torch.tensor(field.bucket_edges, dtype=torch.float32))
                self.float_fields.append(field.name)
            self.tables.append(nn.Embedding(field.size, embedding_size, padding_idx=0))

    @property
    def output_size(self) -> int:
        """d_u = C * d_f."""
        return len(self.fields) * self.embedding_size

    def field_ids(self, batch) -> list[torch.Tensor]:
        """The id of each field for each user in the batch: C tensors of shape B."""
        ids = []
        for field in self.fields:
            value = batch[field]
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
        encoder was built with (from the same training users)."""
        super()._load_from_state_dict(state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys, error_msgs)
        for field in self.fields:
            key = f"{prefix}seen_{field}"
            if key in missing_keys and field not in self.float_fields:
                missing_keys.remove(key)

    def forward(self, batch) -> tuple[torch.Tensor, torch.Tensor]:
        per_field = torch.stack([table(ids) for table, ids in zip(self.tables, self.field_ids(batch))], dim=1)
        return per_field.flatten(1), per_field
