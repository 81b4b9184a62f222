"""``python -m studies.real_data_study --quick``: the study runs end to end on short windows of
the real data, writes its files, and its page shows exactly the numbers of results.json.

The figures of results.json are themselves checked against independent recomputations: the
coverage, Kupiec p-value and verdict from the exceedance count (``backtest_stats`` on a plain
flag vector), the Basel zone from the last-250-day count, and the deribit-standard exceedance
days of long 1 BTC from the raw Binance CSV (IM = 1 × (2% + 0.005%) of the close, Deribit's
11-Jan-2022 BTC futures rates, research crypto-venues §1.2).
"""

from __future__ import annotations

import csv
import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from design_examples import REAL_DATA
from margin_engine.analysis import backtest_stats as bs

ROOT = Path(__file__).resolve().parents[2]
BOOKS = ("btc", "eth", "multi", "options")

pytestmark = [
    pytest.mark.realdata,
    pytest.mark.skipif(not (REAL_DATA / "binance_spot_daily_BTCUSDT_cdd.csv").exists()
                       or not any(REAL_DATA.glob("deribit_options_chain_daily_*.csv.gz")),
                       reason="real data absent: ../shared/data/real"),
]


@pytest.fixture(scope="module")
def quick(tmp_path_factory):
    pytest.importorskip("matplotlib")
    base = tmp_path_factory.mktemp("study")
    out = base / "study"
    proc = subprocess.run(
        [sys.executable, "-m", "studies.real_data_study", "--quick", "--out", str(out),
         "--data", str(REAL_DATA)], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    doc = json.loads((out / "results.json").read_text())
    page = (base / "real-data-study.md").read_text()
    return out, doc, page, proc.stderr


def test_files_are_written_small_and_linked(quick):
    out, doc, page, stderr = quick
    pngs = sorted(out.glob("*.png"))
    assert [p.name for p in pngs] == sorted(doc["figures"].values())
    assert len(pngs) == 3
    for p in pngs:
        assert p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert f"](study/{p.name})" in page
    assert sum(p.stat().st_size for p in [*pngs, out / "results.json"]) < 1_000_000
    # progress is shown, one line per book × model × horizon
    assert len(re.findall(r"^\[\s*\d+/40\]", stderr, flags=re.M)) == 40
    assert doc["settings"]["quick"] is True and "quick run" in page


def test_every_book_model_horizon_is_run_or_said_why_not(quick):
    _, doc, _, _ = quick
    done = {(r["book"], r["model"], r["horizon"], r["controller"]) for r in doc["runs"]}
    missing = {(n["book"], n["model"], n["horizon"]) for n in doc["not_run"]}
    for book in BOOKS:
        for model in doc["settings"]["models"]:
            for h in (1, 2):
                if (book, model, h) in missing:
                    continue
                assert {(book, model, h, False), (book, model, h, True)} <= done
    # only the Deribit models lack parameters for the altcoins of the multi-coin book
    assert missing == {("multi", m, h) for m in ("deribit-standard", "deribit-pm")
                       for h in (1, 2)}
    for r in doc["runs"]:
        if r["controller"]:
            base = next(x for x in doc["runs"] if not x["controller"] and all(
                x[k] == r[k] for k in ("book", "model", "horizon")))
            assert (r["days"], r["first_day"], r["last_day"]) == (
                base["days"], base["first_day"], base["last_day"])


def test_figures_recompute_from_the_exceedance_counts(quick):
    """Coverage, Kupiec p (ccp-standards §4.5's POF), verdict and Basel zone, recomputed
    from the counts by backtest_stats on a plain flag vector."""
    _, doc, _, _ = quick
    for r in doc["runs"]:
        n, x = r["days"], r["exceedances"]
        assert len(r["exceedance_dates"]) == x
        assert r["coverage"] == pytest.approx(1 - x / n, rel=1e-9)
        flags = np.zeros(n, dtype=bool)
        flags[:x] = True
        p = bs.kupiec_pof(flags, 0.01).p_value
        assert r["kupiec_p"] == pytest.approx(p, rel=1e-8, abs=1e-12)
        want = "pass" if p >= 0.05 else ("conservative" if x / n < 0.01 else "fail")
        assert r["verdict"] == want
        assert r["days_last_250"] == min(n, 250)
        zone = bs.basel_traffic_light(r["exceptions_last_250"], r["days_last_250"], 0.01,
                                      plus_factors="bcbs" if r["days_last_250"] == 250
                                      else "normal").zone
        assert r["zone_last_250"] == zone


def test_deribit_standard_btc_exceedances_from_the_raw_csv(quick):
    """Independent reference: long 1 BTC under deribit-standard charges 2.005% of the close,
    so day d is an exceedance when close_d − close_{d+h} > 0.02005 · close_d."""
    _, doc, _, _ = quick
    with open(REAL_DATA / "binance_spot_daily_BTCUSDT_cdd.csv", newline="") as f:
        next(f)  # the CryptoDataDownload URL line
        close = {row["Date"][:10]: float(row["Close"]) for row in csv.DictReader(f)}
    days = sorted(close)
    for h in (1, 2):
        r = next(x for x in doc["runs"] if x["book"] == "btc" and x["model"] ==
                 "deribit-standard" and x["horizon"] == h and not x["controller"])
        window = [d for d in days if r["first_day"] <= d <= r["last_day"]]
        assert len(window) == r["days"]
        want = [d for d in window
                if close[d] - close[days[days.index(d) + h]] > 0.02005 * close[d]]
        assert r["exceedance_dates"] == want
        assert r["mean_margin_share"] == pytest.approx(0.02005, rel=1e-9)


def _cells(line):
    return [c.strip() for c in line.strip().strip("|").split("|")]


def _pct(x, d=2):
    return "—" if x is None else f"{100 * x:.{d}f}%"


def _inc(x):
    return "—" if x is None else f"{100 * x:+.1f}%"


def _ratio(x):
    return "—" if x is None else f"{x:.2f}"


def _p(x):
    return "—" if x is None else ("< 0.001" if x < 0.001 else f"{x:.3f}")


def test_page_tables_show_the_numbers_of_results_json(quick):
    _, doc, page, _ = quick
    lines = page.splitlines()
    seen = set()
    for k, line in enumerate(lines):
        m = re.fullmatch(r"<!-- table (\w+) (\d) -->", line.strip())
        if not m:
            continue
        book, h = m[1], int(m[2])
        j = next(i for i in range(k, len(lines)) if lines[i].startswith("| model |"))
        rows = []
        for row in lines[j + 2:]:
            if not row.startswith("|"):
                break
            rows.append(_cells(row))
        runs = [r for r in doc["runs"] if r["book"] == book and r["horizon"] == h]
        assert len(rows) == len(runs) > 0
        for cells in rows:
            r = next(x for x in runs if x["model"] == cells[0]
                     and x["controller"] == (cells[1] == "dynamic"))
            assert cells == [
                r["model"], "dynamic" if r["controller"] else "—", str(r["days"]),
                str(r["exceedances"]), _pct(r["coverage"]), _p(r["kupiec_p"]),
                f"{r['zone_last_250']} ({r['exceptions_last_250']})",
                _pct(r["mean_margin_share"]), _ratio(r["peak_to_trough"]),
                _inc(r["max_1d_increase"]), _inc(r["max_5d_increase"]),
                _inc(r["max_30d_increase"]), r["verdict"]]
            seen.add((book, h, r["model"], r["controller"]))
    assert seen == {(r["book"], r["horizon"], r["model"], r["controller"]) for r in doc["runs"]}


def test_page_findings_count_what_results_json_says(quick):
    """The controller summary is recounted here from the records."""
    _, doc, page, _ = quick
    runs = doc["runs"]
    pairs = []
    for b in (r for r in runs if not r["controller"]):
        d = next(r for r in runs if r["controller"] and all(
            r[k] == b[k] for k in ("book", "model", "horizon")))
        pairs.append((b, d))
    p2t = sum(d["peak_to_trough"] < b["peak_to_trough"] - 1e-12 for b, d in pairs)
    d5 = sum(d["max_5d_increase"] < b["max_5d_increase"] - 1e-12 for b, d in pairs)
    kept = sum(d["coverage"] >= b["coverage"] - 1e-12 for b, d in pairs)
    assert f"Over the {len(pairs)} book × model × horizon runs" in page
    assert (f"lowers the peak-to-trough ratio of margin / notional in {p2t} and the largest "
            f"5-day increase in {d5};") in page
    assert f"coverage is not lower with the controller in {kept} of {len(pairs)}" in page
    for b, d in pairs:
        assert (f"| {b['model']} | {b['horizon']} | {b['exceedances']} → {d['exceedances']} | "
                f"{_pct(b['coverage'])} → {_pct(d['coverage'])} |") in page
