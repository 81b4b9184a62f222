"""The HTML/PNG backtest report (issue 5, "Reports")."""

from __future__ import annotations

import base64
import re
from datetime import date
from pathlib import Path

import numpy as np
import pytest

from margin_engine.analysis.backtest import registered_model_factory, run_backtest
from margin_engine.domain.book import Book
from margin_engine.io.loaders import parse_model
from margin_engine.io.series import synthetic_series

pytest.importorskip("matplotlib", reason="the report needs matplotlib")

from margin_engine.analysis.report import write_report

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def runs():
    h = synthetic_series(date(2025, 1, 1), days=200)
    bk = parse_model(Book, {"accounts": [{"id": "a", "collateral": {"USDT": 1e5},
                                          "positions": [{"symbol": "BTCUSDT", "size": 1}]}]},
                     "book")
    return [run_backtest(bk, registered_model_factory(m), h, start="2024-07-01")
            for m in ("historical-var", "filtered-es", "binance-usdm")]


def test_report_writes_one_self_contained_html_and_the_pngs(runs, tmp_path):
    path = write_report(runs, tmp_path / "rep", title="test <report>")
    assert path == tmp_path / "rep" / "index.html"
    page = path.read_text(encoding="utf-8")
    pngs = sorted((tmp_path / "rep" / "png").glob("*.png"))
    # three plots per run plus two comparison plots
    assert len(pngs) == 3 * len(runs) + 2
    for p in pngs:
        assert p.read_bytes().startswith(PNG_MAGIC)
    embedded = re.findall(r'src="data:image/png;base64,([A-Za-z0-9+/=]+)"', page)
    assert len(embedded) == len(pngs)
    assert sorted(base64.b64decode(e) for e in embedded) == sorted(p.read_bytes() for p in pngs)
    assert "<title>test &lt;report&gt;</title>" in page  # escaped
    for k, r in enumerate(runs):
        anchor = f"{k:02d}-{r.label}"
        assert f'<h2 id="{anchor}">{r.label}</h2>' in page and f'href="#{anchor}"' in page
        exc = r.statistics.coverage.n_exceptions
        assert f"{exc} of {r.n_days}" in page  # the coverage table of each run
    assert "Basel traffic light" in page and "procyclicality" in page
    assert "src=\"http" not in page and "<script" not in page  # nothing external


def test_report_marks_the_zone_and_years(runs, tmp_path):
    page = write_report(runs[:1], tmp_path).read_text(encoding="utf-8")
    zone = runs[0].statistics.traffic_light_last_250.zone
    assert f">{zone}</span>" in page
    for y in runs[0].statistics.traffic_light_by_year:
        assert f"{y.year} ({y.n_obs} d)" in page


def test_report_needs_a_result(tmp_path):
    with pytest.raises(ValueError, match="results: give at least one backtest"):
        write_report([], tmp_path)


@pytest.fixture(scope="module")
def mixed_runs():
    """A USD-margined and a coin-margined run of the same inverse book."""
    h = synthetic_series(date(2025, 1, 1), days=420)
    bk = parse_model(Book, {"accounts": [{"id": "a", "collateral": {"BTC": 10},
                                          "positions": [{"symbol": "BTC-PERPETUAL",
                                                         "size": 5000}]}]}, "book")
    return [run_backtest(bk, registered_model_factory(m), h, start="2024-01-01")
            for m in ("historical-var", "deribit-standard")]


def test_coin_and_usd_margins_are_not_drawn_on_one_share_axis(mixed_runs):
    """Issue 8: a BTC margin / BTC notional is drawn on its own axis, labelled in BTC."""
    from margin_engine.analysis.report import _comparison_share

    assert [r.currency for r in mixed_runs] == ["USD", "BTC"]
    axes = _comparison_share(mixed_runs).axes
    assert len(axes) == 2
    for ax, r in zip(axes, mixed_runs, strict=True):
        assert ax.get_ylabel() == f"% of {r.currency} notional"
        assert [t.get_text() for t in ax.get_legend().get_texts()] == [
            f"{r.label} [{r.currency}]"]
        line = ax.get_lines()[0].get_ydata()
        assert float(np.nanmax(line)) < ax.get_ylim()[1]  # the line is inside the axis
    # one currency: one axis
    assert len(_comparison_share(mixed_runs[:1]).axes) == 1


def test_traffic_light_bands_and_expected_line_are_labelled(mixed_runs):
    from margin_engine.analysis.report import _share_and_light

    r = mixed_runs[0]
    fig = _share_and_light(r)
    top, bottom = fig.axes
    texts = [t.get_text() for t in bottom.get_legend().get_texts()]
    assert texts == ["exceptions in the last 250 days", "expected: 250 × 1% = 2.5",
                     "green zone: 0–4", "yellow zone: 5–9", "red zone: ≥ 10"]
    assert "USD" in top.get_ylabel()
    assert [t.get_text() for t in top.get_legend().get_texts()] == [
        "initial margin / notional (both in USD)"]


def test_summary_table_names_each_run_currency(mixed_runs, tmp_path):
    page = write_report(mixed_runs, tmp_path).read_text(encoding="utf-8")
    assert "<th>ccy</th>" in page
    assert "<td>historical-var</td><td>USD</td>" in page
    assert "<td>deribit-standard</td><td>BTC</td>" in page



@pytest.mark.realdata
def test_report_of_a_quiet_quarter_under_the_ccp_floor(tmp_path):
    """docs/backtesting.md §1's report command (three models, 2-day horizon, 2025 Q4): with
    the CCP default floor binding, the comparison bars once cropped a negative 5-day 'rise'
    at 0 and FreeType failed on its label (raster overflow)."""
    import json

    from design_examples import REAL_DATA
    from margin_engine.io.series import load_price_series

    f = REAL_DATA / "binance_spot_daily_BTCUSDT_cdd.csv"
    if not f.exists():
        pytest.skip("real data absent")
    root = Path(__file__).resolve().parents[2]
    h = load_price_series([f])
    bk = parse_model(Book, json.loads((root / "docs/examples/long-btc.json").read_text()),
                     "book")
    runs = [run_backtest(bk, registered_model_factory(m, {}, horizon_days=2), h,
                         horizon_days=2, start="2025-10-01", end="2025-12-31")
            for m in ("historical-var", "filtered-es", "binance-usdm")]
    page = write_report(runs, tmp_path).read_text(encoding="utf-8")
    assert (tmp_path / "png" / "comparison-bars.png").read_bytes()[:4] == b"\x89PNG"
    assert "worst 250 d" in page
