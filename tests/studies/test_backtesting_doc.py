"""docs/backtesting.md §6 holds exactly what studies/backtesting_doc.py renders from its JSON."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
# loaded from its file: on the test path `studies` is this tests/studies folder
_spec = importlib.util.spec_from_file_location("backtesting_doc",
                                               ROOT / "studies" / "backtesting_doc.py")
assert _spec is not None and _spec.loader is not None
_mod = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_mod)
BEGIN, END, LONG_BTC, STRADDLE = _mod.BEGIN, _mod.END, _mod.LONG_BTC, _mod.STRADDLE
render, replace_generated = _mod.render, _mod.replace_generated


def test_page_matches_the_recorded_figures():
    doc = json.loads((ROOT / "docs" / "study" / "backtesting.json").read_text())
    page = (ROOT / "docs" / "backtesting.md").read_text(encoding="utf-8")
    assert page.count(BEGIN) == 1 and page.count(END) == 1
    assert replace_generated(page, render(doc)) == page


def test_the_books_the_page_runs_are_shipped():
    for p in (LONG_BTC, STRADDLE):
        assert json.loads((ROOT / p).read_text())["accounts"][0]["credit_rating"] == "AAA"


def test_render_uses_the_figures():
    """Changing a figure in the JSON changes the page (the table is not hand-written)."""
    doc = json.loads((ROOT / "docs" / "study" / "backtesting.json").read_text())
    before = render(doc)
    doc["h1"][0]["exceedances"] += 1000
    assert render(doc) != before
