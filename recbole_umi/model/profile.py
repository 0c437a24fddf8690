"""The data schema of a plugin model from RecBole's dataset: profile fields checked and described."""

from __future__ import annotations

from recbole.utils import FeatureType

from recbole_umi.towers.profile import ProfileConfigError
from recbole_umi.towers.schema import DataSchema, profile_field
from recbole_umi.towers.settings import ProfileSettings

__all__ = ["data_schema", "check_profile_fields", "ProfileConfigError"]


def data_schema(config, dataset, profile: ProfileSettings | None) -> DataSchema:
    """The :class:`~recbole_umi.towers.schema.DataSchema` of ``dataset`` (the training split
    a model is built on: its users decide the token values seen and the float buckets) for a
    tower with the ``profile`` settings (None: a tower without profile)."""
    fields = []
    if profile is not None:
        names = list(profile.profile_fields)
        check_profile_fields(dataset, names)
        training_users = dataset.inter_feat[dataset.uid_field].unique()
        for name in names:
            token = dataset.field2type[name] == FeatureType.TOKEN
            fields.append(profile_field(name, "token" if token else "float", dataset.user_feat[name], training_users,
                                        size=dataset.num(name) if token else None,
                                        n_float_buckets=profile.float_profile_buckets))
    return DataSchema.from_settings(config, dataset.num(config["ITEM_ID_FIELD"]), fields)


def check_profile_fields(dataset, fields: list[str]) -> None:
    """Fail at start-up, naming the field, if a configured profile field is unusable (no
    field at all: the tower's :class:`~recbole_umi.towers.profile.ProfileEncoder` refuses it)."""
    available = [] if dataset.user_feat is None else list(dataset.user_feat.columns)
    users = dataset.inter_feat[dataset.uid_field].unique()  # the users the model learns from
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
        values = dataset.user_feat[field][users]
        missing = values.isnan() if dataset.field2type[field] == FeatureType.FLOAT else values == 0
        if len(users) and missing.all():
            raise ProfileConfigError(
                "profile_fields", fields,
                f"the field {field!r} has no value for any of the {len(users)} training users (all missing "
                f"in {dataset.dataset_name}.user): every user would get the same embedding. Fill it in or "
                "leave it out of profile_fields",
            )
