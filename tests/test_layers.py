"""Imports run one way: curation_market → indexer → curation → rewards (issue 11).

Read from the source with ``ast`` (imports inside functions count too), so a shortcut back
up the layers fails here instead of hiding in a function body.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
LAYERS = ["curation_market", "indexer", "curation", "rewards"]  # each may import the later


def imported_packages(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


@pytest.mark.parametrize("layer", LAYERS)
def test_no_layer_imports_one_above_it(layer: str) -> None:
    above = set(LAYERS[:LAYERS.index(layer)])
    offenders = {str(p.relative_to(ROOT)): sorted(imported_packages(p) & above)
                 for p in (ROOT / layer).rglob("*.py")}
    assert {k: v for k, v in offenders.items() if v} == {}
