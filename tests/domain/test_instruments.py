from datetime import UTC, datetime

import pytest
from pydantic import ValidationError

from margin_engine.domain.instruments import Instrument, Kind, OptionType, parse_deribit_symbol


@pytest.mark.parametrize("symbol, expected", [
    ("BTC-27MAR26-80000-C", {"kind": Kind.OPTION, "underlying": "BTC", "strike": 80000.0,
                             "option_type": OptionType.CALL,
                             "expiry": datetime(2026, 3, 27, 8, tzinfo=UTC)}),
    ("ETH-5FEB26-2100-P", {"kind": Kind.OPTION, "underlying": "ETH", "strike": 2100.0,
                           "option_type": OptionType.PUT,
                           "expiry": datetime(2026, 2, 5, 8, tzinfo=UTC)}),
    ("BTC-27MAR26", {"kind": Kind.FUTURE, "underlying": "BTC",
                     "expiry": datetime(2026, 3, 27, 8, tzinfo=UTC)}),
    ("BTC-PERPETUAL", {"kind": Kind.PERPETUAL, "underlying": "BTC"}),
    ("XRP_USDC-27MAR26-2d5-C", {"kind": Kind.OPTION, "underlying": "XRP", "strike": 2.5,
                               "option_type": OptionType.CALL,
                               "expiry": datetime(2026, 3, 27, 8, tzinfo=UTC)}),
])
def test_parse_deribit_symbol(symbol, expected):
    assert parse_deribit_symbol(symbol) == expected


@pytest.mark.parametrize("symbol", ["BTCUSDT", "BTC-32MAR26", "BTC-27XYZ26-1-C", "", "-PERPETUAL"])
def test_parse_deribit_symbol_rejects_other_names(symbol):
    assert parse_deribit_symbol(symbol) is None


def test_symbol_fills_missing_option_fields():
    ins = Instrument(symbol="BTC-27MAR26-80000-P", settle="BTC", inverse=True, mark_iv=0.5)
    assert ins.kind is Kind.OPTION and ins.strike == 80000 and not ins.is_call


@pytest.mark.parametrize("fields, message", [
    ({"symbol": "X", "kind": "option", "underlying": "BTC", "settle": "BTC"}, "option needs"),
    ({"symbol": "X", "kind": "future", "underlying": "BTC", "settle": "BTC", "mark_price": 1.0},
     "needs expiry"),
    ({"symbol": "X", "kind": "perpetual", "underlying": "BTC", "settle": "USDT"},
     "mark_price is required"),
    ({"symbol": "X", "kind": "perpetual", "underlying": "BTC", "settle": "USDT", "mark_price": 1,
      "strike": 5}, "only apply to options"),
    ({"symbol": "X", "kind": "perpetual", "underlying": "BTC", "settle": "USDT",
      "mark_price": 0.0}, r"must be in \(1e-08, 1e\+12\], got 0.0"),
    ({"symbol": "X", "kind": "perpetual", "underlying": "BTC", "settle": "USDT",
      "mark_price": float("inf")}, "finite"),
    ({"symbol": "X", "kind": "swap", "underlying": "BTC", "settle": "USDT", "mark_price": 1},
     "Input should be"),
    ({"symbol": "BTC-27MAR26-80000-C", "settle": "BTC", "mark_iv": 0.0},
     r"must be in \[0.0001, 20\]"),
])
def test_invalid_instruments_are_rejected(fields, message):
    with pytest.raises(ValidationError, match=message):
        Instrument(**fields)
