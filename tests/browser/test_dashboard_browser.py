"""End-to-end: the dashboard in headless Chromium against a real ``margin-engine serve``.

Expected figures are derived by hand from Binance USDⓈ-M's published BTCUSDT brackets (default
leverage 20: IM = notional / 20): after BTCUSDT marks 66,000, alice (long 1, 10,000 USDT, filled
at 72,999.3) has equity 10,000 + 66,000 − 72,999.3 = 3,000.7 < IM 3,300 → margin call; a what-if
buying 2 more gives IM 3 × 66,000 / 20 = 9,900 > equity → rejected.
"""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from margin_engine.models.core.registry import model_names
from margin_engine.service.merkle import build_proofs

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.slow


def sign_in(page: Any, server: Any, key: str) -> None:
    page.goto(f"{server.url}/dashboard/")
    page.get_by_label("API key", exact=True).fill(key)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_selector("#accounts tbody tr")


def heatmap_pixels(page: Any) -> tuple[np.ndarray, dict[str, int]]:
    canvas = page.locator("#heatmap")
    png = canvas.screenshot()
    img = np.asarray(Image.open(io.BytesIO(png)).convert("RGB")).astype(int)
    return img, json.loads(canvas.get_attribute("data-layout"))


def test_operator_sees_a_margin_call_arrive_drills_in_and_tries_an_order(page, server):
    assert server.banner[1] == f"dashboard: {server.url}/dashboard/ (docs/dashboard.md)"
    sign_in(page, server, server.op)
    rows = page.locator("#accounts tbody tr")
    assert rows.count() == 2
    assert page.locator('tr[data-account="alice"] .badge').inner_text() == "healthy"
    assert "operator" in page.locator("#who").inner_text()
    page.wait_for_selector("#ws-state:text('live')")

    with server.client() as c:
        r = c.post("/v1/market", json={"index": {"BTC": 66000},
                                       "instruments": [{"symbol": "BTCUSDT",
                                                        "mark_price": 66000}]})
        assert r.status_code == 200, r.text
    event = page.locator("#events li.margin_call", has_text="alice")
    event.wait_for()
    assert "3,000.70" in event.inner_text()  # equity after the move
    page.wait_for_selector('tr[data-account="alice"] .badge.margin_call')
    assert "1 margin call" in page.locator("#counts").inner_text()

    # filter and sort
    page.get_by_label("Status").select_option("margin_call")
    assert page.locator("#accounts tbody tr").count() == 1
    page.get_by_label("Status").select_option("all")
    page.get_by_role("button", name="Equity").click()
    ids = page.locator("#accounts tbody tr").evaluate_all(
        "rs => rs.map(r => r.dataset.account)")
    assert ids in (["alice", "bob"], ["bob", "alice"])
    page.get_by_role("button", name="Equity").click()
    assert page.locator("#accounts tbody tr").evaluate_all(
        "rs => rs.map(r => r.dataset.account)") == list(reversed(ids))

    # drill in
    page.get_by_role("link", name="alice", exact=True).first.click()
    page.wait_for_selector("#heatmap[data-layout]")
    assert "63,265" in page.locator("figure.axis").first.inner_text()  # liquidation price
    img, lay = heatmap_pixels(page)
    red = (img[..., 0] > img[..., 1] + 60) & (img[..., 0] > img[..., 2] + 60)
    green = (img[..., 1] > img[..., 0] + 40) & (img[..., 1] > img[..., 2] + 20)
    assert red.mean() > 0.15 and green.mean() > 0.15  # losses and gains both drawn
    assert len(np.unique(img.reshape(-1, 3), axis=0)) > 20  # a scale, not a flat block

    def cell(v: int, p: int) -> np.ndarray:
        y = lay["top"] + (lay["nV"] - 1 - v) * lay["ch"] + lay["ch"] // 2
        x = lay["left"] + p * lay["cw"] + lay["cw"] // 4
        return img[y, x]
    assert red[lay["top"] + lay["ch"] // 2, lay["left"] + lay["cw"] // 4]  # −30 %: a loss
    right = cell(lay["nV"] - 1, lay["nP"] - 1)
    assert right[1] > right[0] + 40  # +30 %: a gain
    # the worst scenario (long: −30 %, first vol row) is outlined in black
    y0 = lay["top"] + (lay["nV"] - 1) * lay["ch"]
    border = img[y0 + lay["ch"] // 2, lay["left"] + 1: lay["left"] + 4]
    assert (border.max(axis=1) < 60).any()

    # what-if
    page.get_by_label("Size (contracts, − sells)").fill("2")
    page.get_by_role("button", name="Try the order").click()
    verdict = page.locator("#whatif-result [role=status]")
    verdict.wait_for()
    assert verdict.inner_text().startswith("Rejected")
    assert "9,900.00" in page.locator("#whatif-result table").inner_text()

    # every registered model, side by side
    page.get_by_role("link", name="Compare models").click()
    page.wait_for_selector("#page table caption:text('models')")
    names = page.locator("#page table tbody th").all_inner_texts()
    assert [n.removesuffix(" (active)") for n in names] == model_names()


def test_an_account_key_sees_only_its_own_and_checks_its_proof(page, server):
    page.goto(f"{server.url}/dashboard/")  # by keyboard: type the key, Enter
    page.get_by_label("API key", exact=True).fill(server.keys["bob"])
    page.keyboard.press("Enter")
    page.wait_for_selector("#accounts tbody tr")
    page.get_by_role("button", name="Status").focus()
    page.keyboard.press("Enter")
    assert page.locator("th[aria-sort=ascending] button").inner_text().startswith("Status")
    assert page.locator("#accounts tbody tr").evaluate_all(
        "rs => rs.map(r => r.dataset.account)") == ["bob"]
    assert "account bob" in page.locator("#who").inner_text()
    page.goto(f"{server.url}/dashboard/#/account/alice")
    page.wait_for_selector("#page .error")
    assert "no account 'alice'" in page.locator("#page .error").inner_text()

    page.goto(f"{server.url}/dashboard/#/reports/bob")
    verdict = page.locator("#proof-verdict")
    verdict.wait_for()
    assert verdict.inner_text().startswith("Verified")
    assert page.locator(".steps li.reject").count() == 0


def test_the_browser_merkle_check_is_rfc6962_as_the_service_computes_it(page, server):
    page.goto(f"{server.url}/dashboard/")
    leaves = [json.dumps({"n": i}) for i in range(7)]
    root, proofs = build_proofs(leaves)  # the service's own code gives the expected root
    got = page.evaluate("""async ([proofs]) => {
        const m = await import('./merkle.js');
        const out = [];
        for (const p of proofs) out.push(await m.rootFromInclusion(
            p.leaf_index, p.tree_size, p.leaf, p.hashes));
        const bad = [];
        const p = proofs[3];
        const flipped = p.hashes.map(
            (h, i) => i === 0 ? (h[0] === 'a' ? 'b' : 'a') + h.slice(1) : h);
        bad.push(await m.rootFromInclusion(p.leaf_index, p.tree_size, p.leaf, flipped));
        for (const args of [[p.leaf_index, p.tree_size, p.leaf, p.hashes.slice(1)],
                            [p.leaf_index, p.tree_size, p.leaf, [...p.hashes, p.hashes[0]]],
                            [7, 7, p.leaf, p.hashes]]) {
            try { bad.push(await m.rootFromInclusion(...args)); } catch (e) { bad.push('error'); }
        }
        bad.push(await m.rootFromInclusion(p.leaf_index, p.tree_size, p.leaf + ' ', p.hashes));
        return {out, bad};
    }""", [[p.to_json() for p in proofs]])
    assert got["out"] == [root] * 7
    assert all(b != root for b in got["bad"])


def test_a_backtest_report_written_by_the_cli_opens_in_the_page(page, server, tmp_path):
    from typer.testing import CliRunner

    from margin_engine.cli.main import app

    out = tmp_path / "run.json"
    res = CliRunner().invoke(app, [
        "backtest", "--history", str(ROOT / "docs/examples/prices.csv"), "--book",
        str(ROOT / "docs/examples/long-btc.json"), "--model", "binance-usdm",
        "--format", "json", "-o", str(out)])
    assert res.exit_code == 0, res.output
    run = json.loads(out.read_text())["backtests"][0]
    sign_in(page, server, server.op)
    page.goto(f"{server.url}/dashboard/#/reports")
    page.set_input_files("#report-file", str(out))
    row = page.locator("#backtest-summary tbody tr")
    row.wait_for()
    cells = row.locator("td").all_inner_texts()
    assert row.locator("th").inner_text() == run["label"]
    assert cells[:2] == [str(run["statistics"]["coverage"]["n_obs"]),
                         str(run["statistics"]["coverage"]["n_exceptions"])]
    assert page.locator("#report-view canvas").count() == 1
    # any other JSON report: records as a table
    other = tmp_path / "cascade.json"
    other.write_text(json.dumps({"kind": "cascade", "rounds": [
        {"round": 1, "liquidated": "alice", "price": 66000.0},
        {"round": 2, "liquidated": "bob", "price": 64000.0}]}))
    page.set_input_files("#report-file", str(other))
    page.locator("#report-view table caption", has_text="rounds").wait_for()
    assert page.locator("#report-view tbody tr", has_text="bob").count() == 1
