"""Screenshots of every dashboard page for docs/dashboard.md (issue 13).

Run from the repository root (needs Playwright and a Chromium binary: ``make browser``)::

    python -m studies.dashboard_screenshots [--out docs/img/dashboard] [--chromium PATH]

It starts ``margin-engine serve --model binance-usdm`` on the example market
(``docs/examples/market-2026-02-04.json``) with a temporary SQLite database, opens eight
accounts through the REST API, signs in as the operator in headless Chromium at 1366×768,
pushes a BTC fall of 8 % through ``POST /v1/market`` (margin calls and a liquidation arrive over
the WebSocket), and saves ``overview.png``, ``account.png`` (drill-down with a what-if),
``models.png`` and ``reports.png`` (the Merkle proof checked in the browser and a backtest
report: ``margin-engine backtest`` on ../shared/data/real BTCUSDT daily closes, 2024-01-01 to
2025-06-30, when that folder is present). About 20 s.
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[1]
MARKET = ROOT / "docs" / "examples" / "market-2026-02-04.json"
BTC_DAILY = ROOT.parent / "shared" / "data" / "real" / "binance_spot_daily_BTCUSDT_cdd.csv"
OP = "operator-key-for-screenshots-0123"
#: id, USDT collateral, fills (symbol, size) at the example market's marks
ACCOUNTS: tuple[tuple[str, str, tuple[tuple[str, float], ...]], ...] = (
    ("desk-btc-long", "12000", (("BTCUSDT", 1.5),)),
    ("desk-btc-short", "40000", (("BTCUSDT", -2.0),)),
    ("fund-basis", "250000", (("BTCUSDT", 3.0), ("ETHUSDT", -40.0))),
    ("eth-trader", "9000", (("ETHUSDT", 25.0),)),
    ("mm-hedged", "60000", (("BTCUSDT", 0.5), ("ETHUSDT", -10.0))),
    ("retail-7", "2600", (("BTCUSDT", 0.3),)),
    ("retail-12", "1500", (("ETHUSDT", 10.0),)),
    ("treasury", "500000", ()),
)
MARKS = {"BTCUSDT": 73005.0, "ETHUSDT": 2101.0}
PAGES = ("overview", "account", "models", "reports")
"""The PNGs written, ``<name>.png`` each, in this order."""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _chromium(given: str | None) -> str:
    for c in (given, os.environ.get("MARGIN_ENGINE_CHROMIUM"), shutil.which("chromium"),
              "/usr/bin/chromium"):
        if c and os.access(c, os.X_OK):
            return c
    raise SystemExit("error: --chromium: no Chromium binary (make browser installs it)")


def _backtest_json(tmp: Path) -> Path | None:
    if not BTC_DAILY.exists():
        return None
    out = tmp / "backtest-long-btc.json"
    subprocess.run([sys.executable, "-c", "from margin_engine.cli.main import app; app()",
                    "backtest", "--history", str(BTC_DAILY), "--book",
                    str(ROOT / "docs" / "examples" / "long-btc.json"), "--model",
                    "binance-usdm", "--model", "historical-var", "--start", "2024-01-01",
                    "--end", "2025-06-30", "--format", "json", "-o", str(out)],
                   check=True, cwd=ROOT, env=_env(), stdout=subprocess.DEVNULL)
    return out


def _env() -> dict[str, str]:
    return {**os.environ, "MARGIN_ENGINE_OPERATOR_KEY": OP,
            "PYTHONPATH": str(ROOT / "src") + os.pathsep + os.environ.get("PYTHONPATH", "")}


def _populate(url: str) -> None:
    with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {OP}"},
                      timeout=30) as c:
        for name, coll, fills in ACCOUNTS:
            c.post("/v1/accounts", json={"id": name, "collateral": {"USDT": coll}}
                   ).raise_for_status()
            for k, (sym, size) in enumerate(fills):
                c.post(f"/v1/accounts/{name}/fills", json={
                    "fill_id": f"{name}-{k}", "symbol": sym, "size": size,
                    "price": MARKS[sym]}).raise_for_status()


def _move(url: str, fall: float) -> None:
    with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {OP}"},
                      timeout=30) as c:
        c.post("/v1/market", json={
            "index": {"BTC": 73000 * (1 - fall), "ETH": 2100 * (1 - 1.3 * fall)},
            "instruments": [{"symbol": "BTCUSDT", "mark_price": 73005 * (1 - fall)},
                            {"symbol": "ETHUSDT", "mark_price": 2101 * (1 - 1.3 * fall)}]}
               ).raise_for_status()


def shoot(out: Path, chromium: str) -> list[Path]:
    """Start the service, drive the pages, write the PNGs; returns their paths."""
    from playwright.sync_api import sync_playwright

    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmpdir:
        tmp = Path(tmpdir)
        report = _backtest_json(tmp)
        port = _free_port()
        url = f"http://127.0.0.1:{port}"
        proc = subprocess.Popen(
            [sys.executable, "-c", "from margin_engine.cli.main import app; app()", "serve",
             "--model", "binance-usdm", "--db", f"sqlite:///{tmp / 'dash.db'}", "--port",
             str(port), "--market", str(MARKET)], env=_env(), cwd=ROOT,
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            for _ in range(600):
                try:
                    urllib.request.urlopen(f"{url}/healthz").close()
                    break
                except OSError:
                    time.sleep(0.1)
            _populate(url)
            shots: list[Path] = []
            with sync_playwright() as pw:
                browser = pw.chromium.launch(executable_path=chromium, headless=True)
                page: Any = browser.new_page(viewport={"width": 1366, "height": 768})
                page.goto(f"{url}/dashboard/")
                page.get_by_label("API key", exact=True).fill(OP)
                page.get_by_role("button", name="Sign in").click()
                page.wait_for_selector("#ws-state:text('live')")
                _move(url, 0.08)
                page.wait_for_selector("#events li.liquidation")
                time.sleep(0.5)  # the debounced refresh of every row
                shots.append(out / f"{PAGES[0]}.png")
                page.screenshot(path=shots[-1])
                page.goto(f"{url}/dashboard/#/account/fund-basis")
                page.wait_for_selector("#heatmap[data-layout]")
                page.get_by_label("Size (contracts, − sells)").fill("-1")
                page.get_by_role("button", name="Try the order").click()
                page.wait_for_selector("#whatif-result [role=status]")
                shots.append(out / f"{PAGES[1]}.png")
                page.screenshot(path=shots[-1], full_page=True)
                page.goto(f"{url}/dashboard/#/compare/fund-basis")
                page.wait_for_selector("#page table caption:text('models')")
                shots.append(out / f"{PAGES[2]}.png")
                page.screenshot(path=shots[-1], full_page=True)
                page.goto(f"{url}/dashboard/#/reports/retail-7")
                page.wait_for_selector("#proof-verdict")
                if report is not None:
                    page.set_input_files("#report-file", str(report))
                    page.wait_for_selector("#report-view canvas")
                    time.sleep(0.3)
                shots.append(out / f"{PAGES[3]}.png")
                page.screenshot(path=shots[-1], full_page=True)
                browser.close()
            return shots
        finally:
            proc.terminate()
            proc.wait(timeout=15)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=ROOT / "docs" / "img" / "dashboard")
    ap.add_argument("--chromium", default=None)
    args = ap.parse_args(argv)
    for p in shoot(args.out, _chromium(args.chromium)):
        print(p.relative_to(ROOT) if p.is_relative_to(ROOT) else p)
    return 0


if __name__ == "__main__":
    sys.exit(main())
