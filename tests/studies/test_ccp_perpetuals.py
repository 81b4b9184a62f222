"""docs/real-data-study.md's CCP section holds exactly what studies/ccp_perpetuals.py renders
from docs/study/ccp_perpetuals.json, and the recorded figures meet issue 11's goals, each
recomputed here independently of the engine: Kupiec's POF statistic with scipy.stats.chi2
from the exceedance counts, the worst 250-day window from the exceedance days, the Basel zone
from the BCBS (1996) table (green 0–4, yellow 5–9, red 10+: ``published``)."""

from __future__ import annotations

import importlib.util
import json
import math
import sys
from pathlib import Path

import numpy as np
import pytest
from scipy.stats import chi2

ROOT = Path(__file__).resolve().parents[2]
_spec = importlib.util.spec_from_file_location("ccp_perpetuals",
                                               ROOT / "studies" / "ccp_perpetuals.py")
assert _spec is not None and _spec.loader is not None
_mod = importlib.util.module_from_spec(_spec)
sys.modules[_spec.name] = _mod  # its dataclasses look their module up
_spec.loader.exec_module(_mod)
DOC = json.loads((ROOT / "docs" / "study" / "ccp_perpetuals.json").read_text())
RUNS = [*DOC["ccp"], *DOC["monte_carlo"], *DOC["controller"]]


def kupiec_p(x: int, n: int, p: float = 0.01) -> float:
    """Kupiec (1995) POF likelihood ratio, χ²(1) upper tail (independent of backtest_stats)."""
    ph = x / n
    ll0 = (n - x) * math.log(1 - p) + x * math.log(p)
    ll1 = ((n - x) * math.log(1 - ph) if x < n else 0.0) + (x * math.log(ph) if x > 0 else 0.0)
    return float(chi2.sf(max(-2.0 * (ll0 - ll1), 0.0), 1))


def zone(x: int) -> str:
    return "green" if x <= 4 else ("yellow" if x <= 9 else "red")


def test_page_matches_the_recorded_figures():
    page = (ROOT / "docs" / "real-data-study.md").read_text(encoding="utf-8")
    assert page.count(_mod.BEGIN) == 1 and page.count(_mod.END) == 1
    assert _mod.replace_generated(page, _mod.render(DOC)) == page


def test_render_uses_the_figures():
    doc = json.loads(json.dumps(DOC))
    before = _mod.render(doc)
    doc["ccp"][0]["exceedances"] += 1000
    assert _mod.render(doc) != before


@pytest.mark.parametrize("r", RUNS, ids=lambda r: f"{r['coin']}-{r['side']}-"
                         f"{r.get('model', r.get('config'))}")
def test_kupiec_and_the_worst_window_recompute(r):
    assert r["exceedances"] == len(r["exceedance_days"])
    assert math.isclose(r["coverage"], 1 - r["exceedances"] / r["days"], rel_tol=1e-7)
    assert math.isclose(r["kupiec_p"], kupiec_p(r["exceedances"], r["days"]), rel_tol=1e-6,
                        abs_tol=1e-12)
    w = r["worst_250"]
    ex = np.array(r["exceedance_days"], dtype="datetime64[D]")
    inside = int(((ex >= np.datetime64(w["first_day"]))
                  & (ex <= np.datetime64(w["last_day"]))).sum())
    assert inside == w["exceptions"] and w["zone"] == zone(w["exceptions"])
    # no window of 250 margin days holds more; where the margin days are consecutive calendar
    # days (BTC; the ETH file lacks four days of 2026) they are rebuilt from the dates
    days = np.arange(np.datetime64(r["first_day"]), np.datetime64(r["last_day"]) + 1)
    if days.size == r["days"]:
        flags = np.isin(days, ex)
        assert np.convolve(flags, np.ones(250, int), "valid").max() == w["exceptions"]
    else:
        # each missing close skips its own day and those whose loss or return needs it
        assert r["coin"] == "ETH" and days.size - r["days"] <= 4 * 4
    for y in r["years"]:
        assert (y["zone"] is None) == (y["days"] < 250)


def test_ccp_defaults_cover_at_99_percent_on_every_perpetual():
    for r in DOC["ccp"]:
        assert r["horizon"] == 2
        assert r["coverage"] >= 0.99, (r["coin"], r["side"], r["model"])


def test_monte_carlo_now_passes_kupiec_at_one_day():
    after = [r for r in DOC["monte_carlo"] if r["config"] == "after"]
    assert len(after) == 4
    for r in after:
        assert kupiec_p(r["exceedances"], r["days"]) > 0.05, (r["coin"], r["side"])


def test_the_calibrated_controller_passes_kupiec_with_less_margin():
    for coin in ("BTC", "ETH"):
        for side in ("long", "short"):
            cal, shipped = (next(r for r in DOC["controller"] if r["coin"] == coin
                                 and r["side"] == side and r["config"] == c)
                            for c in ("calibrated", "shipped"))
            assert kupiec_p(cal["exceedances"], cal["days"]) > 0.05, (coin, side)
            assert cal["mean_margin_share"] < shipped["mean_margin_share"]


def test_stressed_days_are_three_sigma_moves():
    """A plain loop over the BTC closes: EWMA(0.94) variance seeded with the demeaned variance
    of the first 30 returns (``maths.volatility``'s TV-BT-6 convention), a day is stressed
    when |r_t| ≥ 3 σ_t with σ_t from returns before t (derived)."""
    from design_examples import REAL_DATA

    if not (REAL_DATA / _mod.FILES["BTC"]).exists():
        pytest.skip("real data absent")
    h = _mod.load(REAL_DATA)
    k = h.symbols.index("BTC")
    ok = np.isfinite(h.closes[:, k])
    d, c = h.dates[ok], h.closes[ok, k]
    r = np.log(c[1:] / c[:-1])
    var = float(np.var(r[:30]))
    want = set()
    for t in range(r.size):
        if abs(r[t]) >= 3.0 * math.sqrt(var):
            want.add(str(d[t + 1]))
        var = 0.94 * var + 0.06 * r[t] ** 2
    got = _mod.stressed_days(h, "BTC")
    assert got == want
    assert "2020-03-12" in got and 20 < len(got) < 400
