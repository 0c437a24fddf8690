"""Where the package's YAML folders are, installed or checked out (light: the standard library
only, for the command line's ``--help``)."""

from __future__ import annotations

from pathlib import Path

__all__ = ["resource_dir"]

_PACKAGE_DIR = Path(__file__).resolve().parent


def resource_dir(name: str) -> Path:
    """Folder ``name`` (``properties`` or ``dataset_configs``) of the installed package.

    A wheel carries it inside ``recbole_umi/``; a source checkout (and ``pip install -e``)
    keeps it beside the package, at the repository root.
    """
    for candidate in (_PACKAGE_DIR / name, _PACKAGE_DIR.parent / name):
        if candidate.is_dir():
            return candidate
    raise FileNotFoundError(f"recbole-umi is installed without its {name}/ folder")
