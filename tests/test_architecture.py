"""The layers' import rules (docs/design.md, "Code structure"), checked statically."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "recbole_umi"


def imported_modules(path: Path) -> set[str]:
    """Every module ``path`` imports, at any depth of its code (lazy imports too)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found |= {f"{node.module}.{alias.name}" for alias in node.names}
    return found


def test_the_data_layer_imports_no_model():
    """The protocol learns which history lists to build from the model class the config was
    built for (its ``history_fields``), not by asking the registry or the models."""
    for path in (PACKAGE / "data").glob("*.py"):
        bad = {name for name in imported_modules(path)
               if name.startswith(("recbole_umi.model", "recbole_umi.registry", "recbole_umi.towers"))}
        assert not bad, f"{path.name} imports {sorted(bad)}"
