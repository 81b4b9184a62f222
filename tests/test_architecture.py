"""Imports flow one way: domain → maths → models → policy → live → analysis → edges (io, demo,
distributed, service, cli)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

import margin_engine

LAYER = {"errors": 0, "domain": 1, "maths": 2, "models": 3, "policy": 4, "live": 5,
         "analysis": 6, "io": 7, "demo": 7, "distributed": 8, "service": 8, "cli": 9}
PACKAGE = Path(margin_engine.__file__).parent
MODULES = sorted(p for p in PACKAGE.rglob("*.py") if p.parent != PACKAGE)


@pytest.mark.parametrize("path", MODULES, ids=[str(p.relative_to(PACKAGE)) for p in MODULES])
def test_no_upward_imports(path):
    mine = LAYER[path.relative_to(PACKAGE).parts[0]]
    text = path.read_text()
    upward = [m for m in re.findall(r"^\s*(?:from|import) margin_engine\.(\w+)", text, re.M)
              if LAYER.get(m, 0) > mine]
    assert not upward, f"{path.name} imports higher layers: {upward}"
