"""The DESIGN §4 example market and book, and where the shared data lives (importable by tests:
pytest's ``pythonpath`` includes ``tests``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

SHARED = Path(__file__).resolve().parents[2] / "shared"
REAL_DATA = SHARED / "data" / "real"

DESIGN_MARKET: dict[str, Any] = {
    "timestamp": "2026-02-04T09:30:00Z", "index": {"BTC": 73000.0, "ETH": 2100.0},
    "fx": {"USDT": 1.0, "USDC": 1.0},
    "instruments": [
        {"symbol": "BTCUSDT", "kind": "perpetual", "underlying": "BTC", "settle": "USDT",
         "inverse": False, "contract_size": 1, "mark_price": 73005.0},
        {"symbol": "BTC-PERPETUAL", "kind": "perpetual", "underlying": "BTC", "settle": "BTC",
         "inverse": True, "contract_size": 10, "mark_price": 73010.5},
        {"symbol": "BTC-27MAR26", "kind": "future", "underlying": "BTC", "settle": "BTC",
         "inverse": True, "contract_size": 10, "expiry": "2026-03-27T08:00:00Z",
         "mark_price": 73500.0},
        {"symbol": "BTC-27MAR26-80000-C", "kind": "option", "underlying": "BTC", "settle": "BTC",
         "inverse": True, "contract_size": 1, "expiry": "2026-03-27T08:00:00Z", "strike": 80000,
         "option_type": "call", "mark_iv": 0.55, "underlying_price": 73500.0,
         "mark_price": 0.0123}],
    "order_books": {"BTCUSDT": {"bids": [[72990.0, 3.1]], "asks": [[73010.0, 2.4]]}}}

DESIGN_BOOK: dict[str, Any] = {"accounts": [
    {"id": "acct-1", "margin_mode": "cross", "collateral": {"USDT": 250000, "BTC": 1.2},
     "positions": [{"symbol": "BTCUSDT", "size": 2.5, "entry_price": 70000}],
     "leverage": {"BTCUSDT": 20}, "credit_rating": "A"}]}
