"""What a tower needs to know about the data: a small schema, independent of RecBole.

A :class:`DataSchema` holds the item count, the longest history T, the names of the batch
fields a tower reads (the history list, its length, the profile fields) and, per profile
field, its kind and embedding size: a token field's vocabulary size and which values
training users hold (``seen``; a value only held-out users have maps to the unknown row
0), a float field's quantile bucket edges over the training users. :func:`profile_field`
makes one field's entry from the users' values, the same way for a RecBole dataset (the
adapters) and for an export (serving).

A batch is any mapping from those field names to tensors: RecBole's ``Interaction`` or a
plain dict.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch

__all__ = ["ProfileField", "DataSchema", "profile_field"]


@dataclass(frozen=True)
class ProfileField:
    """One user-profile field.

    Args:
        name: the batch field (and the ``.user`` column), e.g. ``"gender"``.
        kind: ``"token"`` (ids, 0 = padding / unknown) or ``"float"`` (bucketised).
        size: rows of its embedding table: the vocabulary size with the padding id, or
            ``len(bucket_edges) + 2`` (bucket ids 1 .. len + 1; 0 stays the padding row).
        seen: token fields: for each id, whether a training user holds it (id 0 never).
        bucket_edges: float fields: the inner quantile edges over the training users.
    """

    name: str
    kind: Literal["token", "float"]
    size: int
    seen: tuple[bool, ...] | None = None
    bucket_edges: tuple[float, ...] | None = None

    def __post_init__(self):
        if self.kind == "token" and (self.seen is None or len(self.seen) != self.size):
            raise ValueError(f"profile field {self.name!r}: a token field needs one seen flag per id ({self.size})")
        if self.kind == "float" and (self.bucket_edges is None or len(self.bucket_edges) + 2 != self.size):
            raise ValueError(f"profile field {self.name!r}: a float field has len(bucket_edges) + 2 rows")
        if self.kind not in ("token", "float"):
            raise ValueError(f"profile field {self.name!r}: kind must be 'token' or 'float', got {self.kind!r}")


@dataclass(frozen=True)
class DataSchema:
    """The data a tower is built for.

    Args:
        n_items: item ids 0 .. n_items - 1, 0 the padding item.
        max_history_length: T, the history positions a batch holds.
        history_field: the batch field of the item history, ``B x T`` ids, left-aligned and
            padded with 0 (RecBole's ``item_id_list``).
        history_length_field: the batch field of the history lengths, ``B``.
        profile: the profile fields, in the order their embeddings are concatenated.
    """

    n_items: int
    max_history_length: int
    history_field: str = "item_id_list"
    history_length_field: str = "item_length"
    profile: tuple[ProfileField, ...] = ()

    @property
    def profile_fields(self) -> tuple[str, ...]:
        return tuple(field.name for field in self.profile)

    @classmethod
    def from_settings(cls, settings, n_items: int, profile: tuple[ProfileField, ...] = ()) -> DataSchema:
        """The schema a run's settings give (``ITEM_ID_FIELD``, ``LIST_SUFFIX``,
        ``ITEM_LIST_LENGTH_FIELD``, ``MAX_ITEM_LIST_LENGTH``; RecBole's Config or a saved
        settings dict) for ``n_items`` items and the ``profile`` fields."""
        return cls(
            n_items=n_items,
            max_history_length=settings["MAX_ITEM_LIST_LENGTH"],
            history_field=settings["ITEM_ID_FIELD"] + settings["LIST_SUFFIX"],
            history_length_field=settings["ITEM_LIST_LENGTH_FIELD"],
            profile=tuple(profile),
        )


def profile_field(name: str, kind: str, values: torch.Tensor, training_users: torch.Tensor, size: int | None = None,
                  n_float_buckets: int = 10) -> ProfileField:
    """The schema entry of a profile field from every user's value.

    Args:
        values: one value per user id (token ids, or floats for a float field).
        training_users: the ids of the users the model learns from; they alone decide which
            token values are seen and where the float buckets lie (held-out users do not).
        size: a token field's vocabulary size (with the padding id 0).
        n_float_buckets: quantile buckets of a float field.
    """
    users = torch.as_tensor(training_users).long()
    values = torch.as_tensor(values)
    if kind == "token":
        seen = torch.zeros(size, dtype=torch.bool)
        seen[values[users].long()] = True
        seen[0] = False  # 0 is the unknown value itself
        return ProfileField(name, "token", size, seen=tuple(seen.tolist()))
    quantiles = torch.linspace(0, 1, n_float_buckets + 1)[1:-1]
    edges = torch.quantile(values[users].float(), quantiles).unique()
    return ProfileField(name, "float", len(edges) + 2, bucket_edges=tuple(edges.tolist()))
