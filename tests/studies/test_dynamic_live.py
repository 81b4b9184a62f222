"""docs/dynamic-margin.md §7 holds exactly what studies/dynamic_live.py renders from its JSON, and
the JSON's figures agree with independent recomputations from the raw files and with each other.

Independent checks (not the study's or the model's code):
- the BTC/ETH index of every hour is the close of the Binance hourly candle ending then (raw CSV);
- each controller day's long-run vol is the RMS of all daily log returns up to that day (Binance
  daily closes before 2026-02-04, then the replay's 00:00 prices as the feed's daily closes), and
  its EWMA vol the λ = 0.94 recursion seeded with the population variance of the first 30
  returns;
- each status change's cause follows from its three statuses (before, new prices with the old
  multipliers, after), every "margin change" is backed by a ``margin_parameters``-caused event,
  and no healthy account was liquidated by a margin change;
- the multiplier path changes exactly at the ``in_effect`` events, an announced increase takes
  effect 24 h after its announcement (``notice_days = 1``).
"""

from __future__ import annotations

import csv
import gzip
import importlib.util
import itertools
import json
import math
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from design_examples import REAL_DATA

ROOT = Path(__file__).resolve().parents[2]
_spec = importlib.util.spec_from_file_location("dynamic_live",
                                               ROOT / "studies" / "dynamic_live.py")
assert _spec is not None and _spec.loader is not None
_mod = importlib.util.module_from_spec(_spec)
sys.modules[_spec.name] = _mod  # its dataclasses look their module up there
_spec.loader.exec_module(_mod)
BEGIN, END, render, replace_generated = _mod.BEGIN, _mod.END, _mod.render, _mod.replace_generated
JSON = ROOT / "docs" / "study" / "dynamic_live.json"
PAGE = ROOT / "docs" / "dynamic-margin.md"


@pytest.fixture(scope="module")
def doc() -> dict:
    return json.loads(JSON.read_text())


def _t(s: str) -> datetime:
    return datetime.fromisoformat(s.replace("Z", "+00:00"))


def test_page_matches_the_recorded_figures(doc: dict) -> None:
    page = PAGE.read_text(encoding="utf-8")
    assert page.count(BEGIN) == 1 and page.count(END) == 1
    assert replace_generated(page, render(doc)) == page
    png = PAGE.parent / doc["png_rel"]
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size < 300_000


def test_render_uses_the_figures(doc: dict) -> None:
    before = render(doc)
    doc = json.loads(json.dumps(doc))
    doc["runs"][0]["summary"]["im_peak"] += 1e9
    assert render(doc) != before


def test_both_settings_ran_on_the_whole_window(doc: dict) -> None:
    assert [r["variant"] for r in doc["runs"]] == ["default", "raise-in-stress"]
    for r in doc["runs"]:
        times = [_t(h["time"]) for h in r["hours"]]
        assert times[0] == datetime(2026, 2, 4, tzinfo=UTC)
        assert times[-1] == datetime(2026, 2, 7, tzinfo=UTC)
        assert all(b - a == timedelta(hours=1) for a, b in itertools.pairwise(times))
        assert r["accounts"] > 50


def _hourly(coin: str) -> dict[datetime, float]:
    path = REAL_DATA / f"binance_usdm_perp_1h_{coin}USDT_2025-09-13_2026-03-19.csv.gz"
    with gzip.open(path, "rt") as f:
        return {datetime.fromtimestamp(int(r["timestamp"]) / 1000, tz=UTC) + timedelta(hours=1):
                float(r["close"]) for r in csv.DictReader(f)}


@pytest.mark.realdata
@pytest.mark.skipif(not REAL_DATA.exists(), reason="real data absent: ../shared/data/real")
def test_prices_are_the_raw_hourly_closes(doc: dict) -> None:
    btc, eth = _hourly("BTC"), _hourly("ETH")
    for h in doc["runs"][0]["hours"][1:]:
        t = _t(h["time"])
        assert h["btc"] == pytest.approx(btc[t], rel=1e-12)
        assert h["eth"] == pytest.approx(eth[t], rel=1e-12)


@pytest.mark.realdata
@pytest.mark.skipif(not REAL_DATA.exists(), reason="real data absent: ../shared/data/real")
def test_controller_vols_recomputed_from_the_raw_closes(doc: dict) -> None:
    closes: dict[str, float] = {}
    with open(REAL_DATA / "binance_usdm_perp_daily_BTCUSDT_2024-01-10_2026-03-19.csv") as f:
        for r in csv.DictReader(f):
            d = datetime.fromtimestamp(int(r["timestamp"]) / 1000, tz=UTC).date()
            if d < datetime(2026, 2, 4).date():
                closes[d.isoformat()] = float(r["close"])
    # the feed's close of day d: its last update on day d, i.e. 23:00 (00:00 is the next day)
    for h in doc["runs"][0]["hours"]:
        t = _t(h["time"])
        closes[t.date().isoformat()] = h["btc"]  # hours are in order: the last one stays
    days = sorted(closes)
    r = [math.log(closes[b] / closes[a]) for a, b in itertools.pairwise(days)]
    for d in doc["runs"][0]["controller_days"]:
        n = days.index(d["day"])  # returns 1..n end on day d
        rets = r[:n]
        assert d["long_run_vol"] == pytest.approx(math.sqrt(sum(x * x for x in rets) / n),
                                                  rel=1e-9)
        mean = sum(rets[:30]) / 30
        var = sum((x - mean) ** 2 for x in rets[:30]) / 30  # population variance seed
        for x in rets:
            var = 0.94 * var + 0.06 * x * x
        assert d["ewma_vol"] == pytest.approx(math.sqrt(var), rel=1e-9)


def test_every_status_change_is_decomposed_consistently(doc: dict) -> None:
    for run in doc["runs"]:
        for c in run["status_changes"]:
            want = ("price" if c["after"] == c["price_only"] else
                    "margin change" if c["before"] == c["price_only"] else "both")
            assert c["cause"] == want
            causes = {e["cause"] for e in c["events"]}
            if c["cause"] != "price":
                assert "margin_parameters" in causes
            if c["price_only"] != c["before"]:
                assert "market" in causes
            assert not (c["price_only"] == "healthy" and c["after"] == "liquidation")
        assert run["summary"]["healthy_to_liquidation_by_margin"] == 0
        n = sum(run["summary"]["transitions"].values())
        assert n == len(run["status_changes"])


def test_multiplier_moves_only_at_in_effect_events_after_notice(doc: dict) -> None:
    for run in doc["runs"]:
        eff = {_t(p["market_time"]): float(p["new"]) for p in run["parameter_events"]
               if p["phase"] == "in_effect"}
        h = run["hours"]
        for a, b in itertools.pairwise(h):
            t = _t(b["time"])
            if t in eff:
                assert b["multiplier"] == pytest.approx(eff[t])
            else:
                assert b["multiplier"] == a["multiplier"]
        for p in run["parameter_events"]:
            if p["phase"] == "announced":
                assert _t(p["effective_time"]) - _t(p["market_time"]) == timedelta(days=1)
                assert _t(p["effective_time"]) in eff
            if p["change"] == "decrease":
                assert p["effective_time"] == p["market_time"]
        # IM in force is the model's times the multiplier, every hour
        for x in h:
            assert x["im_usd"] == pytest.approx(x["model_im_usd"] * x["multiplier"], rel=1e-12)
            assert x["im_rel_median"] == pytest.approx(
                x["model_im_rel_median"] * x["multiplier"], rel=1e-12)
