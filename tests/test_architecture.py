"""The layers' import rules (docs/design.md, "Code structure"), checked statically."""

from __future__ import annotations

import ast
import os
import subprocess
import sys
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


def test_no_tower_module_imports_recbole():
    """Statically: nothing under recbole_umi/towers names RecBole or a module that imports it
    (the adapters, the config, compat)."""
    allowed = ("recbole_umi.towers", "recbole_umi.settings")
    for path in (PACKAGE / "towers").glob("*.py"):
        for name in imported_modules(path):
            assert not name.startswith("recbole.") and name != "recbole", f"{path.name} imports {name}"
            if name.startswith("recbole_umi"):
                assert name.startswith(allowed), f"{path.name} imports {name}, which is not a tower module"


def run_fresh(code: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300,
                          cwd=PACKAGE.parent, env={**os.environ, "PYTHONPATH": str(PACKAGE.parent)})


def test_the_towers_load_without_recbole():
    """In a fresh process: importing the towers (and building one) leaves RecBole unimported."""
    out = run_fresh(
        "import sys\n"
        "import recbole_umi.towers as towers\n"
        "from recbole_umi.towers.settings import YoutubeDNNSettings\n"
        "schema = towers.DataSchema(n_items=5, max_history_length=3, profile=(towers.ProfileField('g', 'token', 3, seen=(False, True, True)),))\n"
        "tower = towers.YoutubeDNNTower(YoutubeDNNSettings(embedding_size=4, n_interests=1, profile_embedding_size=2, mlp_hidden_size=8), schema)\n"
        "import torch\n"
        "print(tuple(tower({'item_id_list': torch.tensor([[1, 2, 0]]), 'item_length': torch.tensor([2]), 'g': torch.tensor([1])}).shape))\n"
        "print(sorted(name for name in sys.modules if name.split('.')[0] == 'recbole'))\n"
    )
    assert out.returncode == 0, out.stderr[-3000:]
    assert out.stdout.split("\n")[:2] == ["(1, 1, 4)", "[]"]
