"""studies/cascades.py: the page holds what the study rendered from its JSON, and the
population fit in the code is the one the study derives from the real records."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

from margin_engine.analysis.cascade.population_fit import HYPERLIQUID_FIT

ROOT = Path(__file__).resolve().parents[2]
_spec = importlib.util.spec_from_file_location("cascades", ROOT / "studies" / "cascades.py")
assert _spec is not None and _spec.loader is not None
cs = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(cs)
DOC = ROOT / "docs" / "study" / "cascades.json"
PAGE = ROOT / "docs" / "cascades.md"


def test_page_matches_the_recorded_figures():
    doc = json.loads(DOC.read_text())
    page = PAGE.read_text()
    assert page.count(cs.BEGIN) == 1 and page.count(cs.END) == 1
    assert cs.replace_generated(page, cs.render(doc)) == page


def test_render_uses_the_figures():
    doc = json.loads(DOC.read_text())
    before = cs.render(doc)
    first = next(iter(doc["policies"]))
    doc["policies"][first]["bad_debt_usd"] = 123_456_789.0
    assert "123,456,789" in cs.render(doc) and cs.render(doc) != before


@pytest.mark.realdata
@pytest.mark.skipif(not cs.DATA.exists(), reason="real data absent: ../shared/data/real")
def test_fit_in_the_code_is_the_studys():
    """published data (Hyperliquid's own records) → derived fit; the constants must match."""
    fit = cs.hyperliquid_fit(cs.DATA)
    assert fit["users_fitted"] == 245
    for k in ("notional_mu", "notional_sigma", "leverage_mu", "leverage_sigma", "long_share"):
        assert fit[k] == pytest.approx(getattr(HYPERLIQUID_FIT, k), rel=1e-9), k
    recorded = json.loads(DOC.read_text())["fit"]
    assert recorded["notional_mu"] == pytest.approx(fit["notional_mu"], rel=1e-12)


@pytest.mark.realdata
@pytest.mark.skipif(not cs.DATA.exists(), reason="real data absent: ../shared/data/real")
def test_real_liquidation_records_quoted():
    """published: the 62 rows of hyperliquid_liquidations_2023-02-28_2023-05-01.csv."""
    real = cs.real_liquidations(cs.DATA)
    assert real["n"] == 62 and real["cross"] == 54
    assert json.loads(DOC.read_text())["real_2023"]["ratio_q"] == pytest.approx(real["ratio_q"])
