"""studies/orderbook_model.py: the replay's order book and the page's quoted figures."""

from __future__ import annotations

import importlib.util
import json
import re
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parents[2]
_spec = importlib.util.spec_from_file_location("orderbook_model",
                                               ROOT / "studies" / "orderbook_model.py")
assert _spec is not None and _spec.loader is not None
om = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(om)


def _events(rows: list[tuple[int, int, float, float, str, str]]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=["id", "exchange_timestamp", "price", "volume", "action",
                                       "direction"])


def test_replay_applies_changes_and_removes_crossed_snapshot_orders() -> None:
    ev = _events([
        (1, 0, 100.0, 1.0, "created", "bid"),     # snapshot
        (2, 0, 101.0, 2.0, "created", "ask"),     # snapshot, later filled under another id
        (3, 0, 103.0, 1.0, "created", "ask"),     # snapshot
        (4, 5, 100.0, 0.5, "created", "bid"),
        (1, 6, 100.0, 0.25, "changed", "bid"),    # remaining size 0.25
        (5, 7, 102.0, 1.0, "created", "bid"),     # crosses snapshot ask 101 → removed
        (5, 8, 102.0, 1.0, "deleted", "bid"),
    ])
    st = om.replay(ev, [4, 6, 8], 101.0)
    assert list(st[0]["bp"]) == [100.0] and list(st[0]["bs"]) == [1.0]
    assert list(st[1]["bs"]) == [0.75]
    assert list(st[2]["ap"]) == [103.0] and list(st[2]["bp"]) == [100.0]
    assert om.mid(st[2]) == 101.5


def test_taker_orders_grouped_by_taker_id() -> None:
    tr = pd.DataFrame({"amount": [0.1, 0.2, 0.3], "exchange_timestamp": [1, 1, 5],
                       "buy_order_id": [9, 9, 7], "sell_order_id": [1, 2, 8],
                       "side": ["buy", "buy", "sell"]})
    g = om.taker_orders(tr)
    assert list(g["size"]) == [0.1 + 0.2, 0.3] and list(g["side"]) == ["buy", "sell"]


def test_page_quotes_the_study_results() -> None:
    res = json.loads((ROOT / "docs" / "study" / "orderbook_model.json").read_text())
    page = (ROOT / "docs" / "liquidation.md").read_text()
    y = res["static_impact"]["sqrt"]["y"] * 1e4
    assert f"**{y:.2f} bps**" in page
    assert f"**h = {res['resilience']['half_life_s']:.2f} s**" in page
    assert f"δ = {res['static_impact']['power']['delta']:.2f}" in page
    med10 = res["depth_btc"]["bid"]["10"]["median"]
    assert re.search(rf"\| 10 \| {med10:.1f} ", page)
