"""services.py, the composition root below delivery/, imports only the bottom rooms (import-linter
checks the packages; a single module is beyond it)."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
HIGHER = {"bot", "handlers", "jobs", "delivery"}


def test_services_imports_no_higher_room():
    tree = ast.parse((ROOT / "services.py").read_text())
    imported = {
        alias.name.split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names
    }
    imported |= {
        node.module.split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) and node.module
    }
    assert imported & HIGHER == set()
