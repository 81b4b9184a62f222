"""The same symbol twice in an account is one net position for every model (issue 8 §5).

Binance margined two lots of BTCUSDT as two positions (MM 995 vs 1,045 when merged) while
Hyperliquid and dYdX netted them. ``domain.book.net_positions`` nets once, for every model.
"""

from __future__ import annotations

import math

import pytest

from margin_engine.domain.book import Account, Position, net_positions
from margin_engine.errors import InputError
from margin_engine.io.report_json import account_json
from margin_engine.models.core.registry import model_names
from margin_engine.models.core.valuation import unrealised_pnl
from margin_engine.policy.assess import assess_account
from models.test_all_models import BOOK, MARKET, build


def split_lots(account: Account) -> Account:
    """Every position as two half lots at its entry price, isolated margin halved."""
    lots = []
    for p in account.positions:
        half = p.isolated_margin / 2 if p.isolated_margin is not None else None
        lots += [p.model_copy(update={"size": p.size / 2, "isolated_margin": half})] * 2
    return account.model_copy(update={"positions": tuple(lots)})


def numbers(doc: dict) -> dict:
    """The account's amounts, positions' amounts and liquidation prices (not the audit)."""
    keys = ("initial_margin", "maintenance_margin", "equity", "available_balance",
            "margin_ratio")
    return {**{k: doc[k] for k in keys}, "status": doc["status"],
            "positions": [(p["symbol"], p["size"], p["initial_margin"], p["maintenance_margin"],
                           p["liquidation_price"]) for p in doc["positions"]]}


def close(a: object, b: object) -> bool:
    if isinstance(a, float) and isinstance(b, float):
        return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-9)
    if isinstance(a, list | tuple) and isinstance(b, list | tuple):
        return len(a) == len(b) and all(close(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(close(a[k], b[k]) for k in a)
    return a == b


@pytest.mark.parametrize("name", model_names())
def test_duplicates_are_margined_as_the_merged_position(name):
    model = build(name)
    # the generic liquidation solver is slow: liquidation prices of the closed forms only
    liq = model.has_closed_form_liquidation()
    checked = 0
    for account in BOOK.accounts:
        try:
            merged = assess_account(model, account, MARKET, liquidation_prices=liq)
        except InputError:
            continue  # an account this model does not margin
        lots = assess_account(model, split_lots(account), MARKET, liquidation_prices=liq)
        assert close(numbers(account_json(lots)), numbers(account_json(merged))), account.id
        checked += 1
    assert checked, f"{name} margins no demo account"


def test_binance_brackets_apply_to_the_net_notional():
    # The case: two lots in one bracket each, the sum in the next one up.
    lot = Position(symbol="BTCUSDT", size=2.0, entry_price=73000.0)
    acct = Account(id="dup", collateral={"USDT": 100000.0}, positions=(lot, lot))
    one = Account(id="dup", collateral={"USDT": 100000.0},
                  positions=(Position(symbol="BTCUSDT", size=4.0, entry_price=73000.0),))
    model = build("binance-usdm")
    a, b = assess_account(model, acct, MARKET), assess_account(model, one, MARKET)
    assert len(a.positions) == 1
    assert a.maintenance_margin == b.maintenance_margin
    assert a.positions[0].liquidation_price == b.positions[0].liquidation_price


@pytest.mark.parametrize("symbol", ["BTCUSDT", "BTC-PERPETUAL", "BTC-27MAR26"])
@pytest.mark.parametrize("sizes, entries", [
    ((3.0, 1.0), (70000.0, 76000.0)),        # same side: the average entry
    ((3.0, -1.0), (70000.0, 76000.0)),       # a short lot reduces the long
    ((-2.0, 5.0), (80000.0, 60000.0)),       # flips to long
    ((2.0, -2.0), (70000.0, 74000.0)),       # flat: all realised
    ((1.5, 0.5), (71000.0, None)),           # no entry = the mark
])
def test_netting_keeps_the_pnl_at_every_price(symbol, sizes, entries):
    """Independent check: Σ lot P&L = net P&L + realised, at several marks (valuation's
    formulas evaluated lot by lot, not the netting arithmetic)."""
    ins = MARKET.instrument(symbol)
    scale = 10000.0 if ins.inverse else 1.0  # inverse sizes are USD face / contract size
    lots = tuple(Position(symbol=symbol, size=s * scale, entry_price=e)
                 for s, e in zip(sizes, entries, strict=True))
    acct = Account(id="a", collateral={"USDT": 0.0}, positions=lots)
    net = net_positions(acct, MARKET)
    (pos,) = net.positions
    assert pos.size == pytest.approx(sum(sizes) * scale)
    realised = net.collateral.get(ins.settle, 0.0) - acct.collateral.get(ins.settle, 0.0)
    if sizes[0] * sum(sizes) > 0 and sizes[1] * sum(sizes) > 0:
        assert realised == 0.0  # nothing closes
    for move in (0.5, 0.9, 1.0, 1.3, 2.0):
        m = MARKET.model_copy(update={"instruments": tuple(
            i.model_copy(update={"mark_price": ins.mark_price * move}) if i.symbol == symbol
            else i for i in MARKET.instruments)})
        m.__dict__.pop("_by_symbol", None)
        filled = [p if p.entry_price is not None else p.model_copy(
            update={"entry_price": ins.mark_price}) for p in lots]
        want = sum(unrealised_pnl(m.instrument(symbol), p, m) for p in filled)
        got = unrealised_pnl(m.instrument(symbol), pos, m) + realised
        assert got == pytest.approx(want, rel=1e-12, abs=1e-9 * abs(want) + 1e-12)


def test_isolated_margin_is_summed_and_no_duplicates_is_a_no_op():
    acct = Account(id="iso", margin_mode="isolated", collateral={"USDT": 10.0}, positions=(
        Position(symbol="ETHUSDT", size=-1.0, isolated_margin=100.0),
        Position(symbol="BTCUSDT", size=1.0),
        Position(symbol="ETHUSDT", size=-2.0, isolated_margin=50.0)))
    net = net_positions(acct, MARKET)
    assert [(p.symbol, p.size, p.isolated_margin) for p in net.positions] == [
        ("ETHUSDT", -3.0, 150.0), ("BTCUSDT", 1.0, None)]
    assert net_positions(net, MARKET) is net
