"""Facts read straight from a dataset's atomic files: the field names of a header, and the
``.item`` file's titles and categories.

Read directly, not through RecBole, so that they need not be in ``load_col`` (the models
never see them). Light: numpy only.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

__all__ = ["TITLE_FIELDS", "header_field_names", "item_file_columns", "by_item_id", "item_categories"]

# Item-file columns taken for titles when none is named, in this order.
TITLE_FIELDS = ("movie_title", "title", "name")


def header_field_names(path, separator: str, encoding: str = "utf-8") -> list[str]:
    """The field names of the atomic file ``path``'s header, in order (``user_id`` of
    ``user_id:token``; a Windows line end is no part of the last)."""
    with open(path, encoding=encoding, errors="replace") as handle:
        header = handle.readline().rstrip("\n").rstrip("\r")
    return [column.split(":")[0] for column in header.split(separator) if column]


def item_file_columns(config) -> dict[str, list[str]] | None:
    """The ``.item`` atomic file's columns by name, each a list of raw strings (one per
    row); None when the dataset has no ``.item`` file."""
    path = Path(config["data_path"]) / f"{config['dataset']}.item"
    if not path.is_file():
        return None
    separator = config["field_separator"] or "\t"
    lines = path.read_text(encoding=config["encoding"] or "utf-8").splitlines()
    names = [column.split(":")[0] for column in lines[0].split(separator)]
    rows = [line.split(separator) for line in lines[1:] if line]
    return {name: [row[i] if i < len(row) else "" for row in rows] for i, name in enumerate(names)}


def by_item_id(columns, config, item_tokens: list[str], field: str) -> list[str]:
    """The ``.item`` file's ``field`` value of every item id ('' for ids it lacks)."""
    values = dict(zip(columns[config["ITEM_ID_FIELD"]], columns[field]))
    return [values.get(token, "") for token in item_tokens]


def item_categories(columns, config, item_tokens: list[str], field: str) -> tuple[list[str], np.ndarray]:
    """The categories named in the ``.item`` file's ``field`` (a token or token_seq
    column; ``columns`` from :func:`item_file_columns`), sorted, and every item id's
    ``n_items x C`` multi-hot row (none for the padding item and items the file lacks)."""
    separator = config["seq_separator"] or " "
    per_item = [value.split(separator) if value else [] for value in by_item_id(columns, config, item_tokens, field)]
    names = sorted({c for values in per_item for c in values})
    column = {c: i for i, c in enumerate(names)}
    multi_hot = np.zeros((len(item_tokens), len(names)), dtype=bool)
    for item, values in enumerate(per_item):
        multi_hot[item, [column[c] for c in values]] = True
    return names, multi_hot
