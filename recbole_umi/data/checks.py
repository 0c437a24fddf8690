"""What a dataset must be for a run to mean what it says: checked when RecBole loads it,
before anything trains (docs/reliability.md lists every case).

:class:`DataChecks` is a mixin of the plugin's dataset classes. Refused, with a
:class:`DataError` naming the file and the column or rows: an atomic file whose header names
a column twice or lacks a column ``load_col`` asks for, an ``.inter`` file without rows, a
sequential model (the user-split protocol, RecBole's sequential models) without the time
column loaded, a float field holding +-inf, a user listed twice in the ``.user`` file with
different values. Warned about, with numbers: users of the ``.inter`` file without a
``.user`` row (RecBole drops or keeps them silently), exact duplicate ``.user`` rows.
"""

from __future__ import annotations

import difflib
from pathlib import Path

import numpy as np
from recbole.data.dataset import SequentialDataset
from recbole.utils import FeatureSource, FeatureType

from recbole_umi.item_file import header_field_names
from recbole_umi.settings import SettingsError

__all__ = ["DataError", "DataChecks", "duplicated_fields"]


class DataError(SettingsError):
    """An atomic file the run cannot use as it is; names the file and what is wrong."""

    def __init__(self, path, problem: str):
        self.path = Path(path)
        self.key, self.value, self.requirement = "dataset", str(path), problem
        ValueError.__init__(self, f"{path}: {problem}")


def duplicated_fields(names: list[str]) -> list[str]:
    """The field names that a header's ``names`` list more than once."""
    return sorted({name for name in names if names.count(name) > 1})


# Rows named in an error before "and N more".
_SHOWN = 5


def _listed(values) -> str:
    values = [str(v) for v in values]
    more = f" and {len(values) - _SHOWN} more" if len(values) > _SHOWN else ""
    return ", ".join(values[:_SHOWN]) + more


class DataChecks:
    """Dataset mixin: the checks above, and a split without training samples refused.

    On users of the ``.inter`` file without a ``.user`` row: RecBole
    (``filter_inter_by_user_or_item: True``, the default of every dataset) drops them with
    all their interactions, without a word; with ``False`` it keeps them, their token
    profile fields set to the padding id 0 (unknown) and their float fields to the mean of
    the other users. Either way this is a warning with the count.
    """

    def _load_feat(self, filepath, source):
        names = header_field_names(filepath, self.config["field_separator"] or "\t", self.config["encoding"] or "utf-8")
        duplicated = duplicated_fields(names)
        if duplicated:
            raise DataError(filepath, f"its header names the column(s) {', '.join(map(repr, duplicated))} twice: "
                                      "each field must appear once")
        asked, _ = self._get_load_and_unload_col(source)
        absent = sorted(set(asked or ()) - set(names))
        if absent:  # RecBole loads the columns it finds and drops the others without a word
            close = {name: difflib.get_close_matches(name, names, n=1) for name in absent}
            listed = ", ".join(f"{name!r} (did you mean {found[0]!r}?)" if found else repr(name)
                               for name, found in close.items())
            profile = set(absent) & set(self.config["profile_fields"] or ()) if source == FeatureSource.USER else ()
            asker = "profile_fields names (and so load_col loads)" if profile else "load_col asks for"
            raise DataError(filepath, f"has no column {listed}, which {asker}; its columns are {names}")
        table = super()._load_feat(filepath, source)
        if source == FeatureSource.USER:  # before RecBole keeps the first row of each user, silently
            self._check_duplicate_users(table, filepath)
        return table

    def _data_processing(self):
        """The checks on the loaded tables (original ids, before RecBole filters and fills)."""
        inter_file = Path(self.dataset_path) / f"{self.dataset_name}.inter"
        if self.inter_feat is not None and len(self.inter_feat) == 0:
            raise DataError(inter_file, "has no interactions (only its header)")
        sequential = isinstance(self, SequentialDataset) and self.config["benchmark_filename"] is None
        if sequential and (self.time_field is None or self.time_field not in self.inter_feat):
            columns = list(self.inter_feat.columns) if self.inter_feat is not None else []
            header = header_field_names(inter_file, self.config["field_separator"] or "\t",
                                        self.config["encoding"] or "utf-8") if inter_file.is_file() else []
            who = ("the user-split protocol" if self.config["eval_protocol"] == "user_split"
                   else f"RecBole, for the sequential model {self.config['model']},")
            hint = ": the file has it, add it to load_col's inter list" if self.config["TIME_FIELD"] in header else ""
            raise DataError(inter_file, f"has no time column {self.config['TIME_FIELD']!r} (TIME_FIELD) loaded: {who} "
                                        f"orders each user's interactions by it; the columns loaded are {columns}{hint}")
        for table, suffix in ((self.inter_feat, "inter"), (self.user_feat, "user"), (self.item_feat, "item")):
            self._refuse_infinite_values(table, Path(self.dataset_path) / f"{self.dataset_name}.{suffix}")
        super()._data_processing()

    def _refuse_infinite_values(self, table, path) -> None:
        if table is None:
            return
        for field in table.columns:
            if self.field2type.get(field) != FeatureType.FLOAT:
                continue
            values = table[field].to_numpy(dtype=np.float64, na_value=np.nan)
            infinite = np.isinf(values)
            if infinite.any():
                key = next((k for k in (self.uid_field, self.iid_field) if k in table.columns), None)
                rows = table[key].to_numpy()[infinite] if key else np.flatnonzero(infinite) + 2
                named = f"the {key}s" if key else "the lines"
                raise DataError(path, f"its float column {field!r} holds +-inf for {int(infinite.sum())} row(s) "
                                      f"({named} {_listed(rows)}): only finite numbers, or an empty value for a "
                                      "missing one, can be used")

    def _check_duplicate_users(self, table, path) -> None:
        if table is None or self.uid_field not in table.columns:
            return
        repeated = table[self.uid_field].duplicated(keep=False)
        if not repeated.any():
            return
        rows = table[repeated]
        conflicting = rows.groupby(self.uid_field).nunique(dropna=False).gt(1).any(axis=1)
        if conflicting.any():
            raise DataError(path, f"lists {int(conflicting.sum())} user(s) more than once with different values "
                                  f"(users {_listed(conflicting[conflicting].index)}): each user needs one row")
        self.logger.warning(f"{path} lists {rows[self.uid_field].nunique()} user(s) more than once with the same "
                            "values; the first row of each is used")

    def build(self):
        """RecBole's split (``eval_args``), refused when it leaves nothing to train on
        (RecBole's loader would fail with ``num_samples=0``)."""
        from recbole_umi.data.protocol import ProtocolConfigError

        built = super().build()
        if len(built[0]) == 0:
            raise ProtocolConfigError(
                "eval_args", self.config["eval_args"],
                f"leaves no training samples on the dataset {self.dataset_name!r} (its {self.user_num - 1} users, "
                "after RecBole's filters): its users need more interactions than the evaluation takes from them",
            )
        return built

    def _filter_inter_by_user_or_item(self):
        if self.user_feat is not None and self.uid_field in self.user_feat:
            users = self.inter_feat[self.uid_field]
            missing = ~users.isin(self.user_feat[self.uid_field].values)
            if missing.any():
                counted = f"{users[missing].nunique()} users ({int(missing.sum())} interactions) of {self.dataset_name}.inter"
                if self.config["filter_inter_by_user_or_item"] is True:
                    fate = (
                        "are dropped with all their interactions (RecBole's filter_inter_by_user_or_item: True); "
                        "set filter_inter_by_user_or_item: False to keep them with unknown profile values"
                    )
                else:
                    fate = (
                        "are kept (filter_inter_by_user_or_item: False) with unknown profile values: token fields "
                        "get the padding id 0, float fields the mean of the other users"
                    )
                self.logger.warning(f"{counted} have no row in {self.dataset_name}.user and {fate}")
        super()._filter_inter_by_user_or_item()
