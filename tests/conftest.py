"""Shared fixtures: the DESIGN §4 example market and book, and paths to shared data."""

from __future__ import annotations

import copy
import json
import os
from pathlib import Path
from typing import Any

import pytest

from design_examples import DESIGN_BOOK, DESIGN_MARKET

# The tables are checked at the width a run without a terminal gets (COLUMNS unset: 160), as in
# CI; pytest-xdist's workers inherit COLUMNS=80, which would wrap them differently.
os.environ.pop("COLUMNS", None)
os.environ.pop("LINES", None)


@pytest.fixture
def market_doc() -> dict[str, Any]:
    return copy.deepcopy(DESIGN_MARKET)


@pytest.fixture
def book_doc() -> dict[str, Any]:
    return copy.deepcopy(DESIGN_BOOK)


@pytest.fixture
def write_json(tmp_path: Path):
    def write(name: str, doc: Any) -> Path:
        p = tmp_path / name
        p.write_text(doc if isinstance(doc, str) else json.dumps(doc))
        return p
    return write
