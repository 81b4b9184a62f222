"""Status changes come back as events: healthy → margin call → liquidation → recovery."""

from __future__ import annotations

import pytest

from margin_engine.domain.book import Account, Book, Position
from margin_engine.errors import InputError
from margin_engine.live import LiveBook
from margin_engine.models.core.registry import get_model
from margin_engine.policy.health import Status

from .test_live_book import MARKET

SYMBOL = "BTCUSDT"


def one_account_book() -> tuple[LiveBook, float]:
    px = MARKET.instrument(SYMBOL).mark_price
    assert px is not None
    # 1 BTC long at 20x: IM = px/20; collateral covers IM with 10% to spare
    acct = Account(id="a", collateral={"USDT": 1.1 * px / 20},
                   positions=(Position(symbol=SYMBOL, size=1.0, entry_price=px),))
    return LiveBook(get_model("binance-usdm"), Book(accounts=(acct,)), MARKET), px


def move(live: LiveBook, price: float):
    return live.update_market({"instruments": [{"symbol": SYMBOL, "mark_price": price}]})


def test_margin_call_liquidation_recovery_in_order():
    live, px = one_account_book()
    assert live.state("a").status is Status.HEALTHY
    assert move(live, px * 0.999) == []  # still covered: no event
    ev = move(live, px * 0.99)  # equity 0.045 px < IM 0.0495 px
    assert [(e.type, e.status, e.previous_status) for e in ev] == [
        ("margin_call", Status.MARGIN_CALL, Status.HEALTHY)]
    ev += move(live, px * 0.95)  # equity 0.005 px < MM 0.004*0.95 px? no: 0.0038 -> call
    ev += move(live, px * 0.948)  # equity 0.003 px <= MM 0.0038 px: liquidation
    ev += move(live, px)
    kinds = [e.type for e in ev]
    assert kinds == ["margin_call", "liquidation", "recovery"]
    assert [e.seq for e in ev] == [1, 2, 3]
    last = ev[-1]
    st = live.state("a")
    assert (last.initial_margin, last.maintenance_margin, last.equity) == (
        st.initial_margin, st.maintenance_margin, st.equity)
    assert last.audit.model == "binance-usdm" and last.cause == "market"


def test_a_deposit_and_a_fill_can_change_status():
    live, px = one_account_book()
    move(live, px * 0.99)
    ev = live.deposit("a", "USDT", px)
    assert [e.type for e in ev] == ["recovery"] and ev[0].cause == "deposit"
    ev = live.apply_fill("a", SYMBOL, 30.0)
    assert [e.type for e in ev] == ["margin_call"] and ev[0].cause == "fill"


@pytest.mark.parametrize("call, path", [
    (lambda lv: lv.update_market({"index": {"BTC": -1}}), "index.BTC"),
    (lambda lv: lv.update_market({"instruments": [{"symbol": "NOPE"}]}), "instruments[0].symbol"),
    (lambda lv: lv.update_market({"timestamp": "2020-01-01T00:00:00Z"}), "timestamp"),
    (lambda lv: lv.apply_fill("a", SYMBOL, float("nan")), "fill.size"),
    (lambda lv: lv.apply_fill("zz", SYMBOL, 1.0), "account"),
    (lambda lv: lv.deposit("a", "XYZ", 1.0), "currency"),
    (lambda lv: lv.what_if("a", [("BTCUSDT", 1.0, 0.0)]), "orders[0].price"),
])
def test_bad_input_names_the_field_and_changes_nothing(call, path):
    live, _ = one_account_book()
    before = live.state("a")
    with pytest.raises(InputError) as err:
        call(live)
    assert err.value.path == path
    assert live.state("a") == before


def test_account_state_as_dict_has_every_field() -> None:
    """``AccountState.as_dict`` is spelled out (the what-if answer's hot path): it must still
    carry every field, in order, with the status as its string value."""
    from dataclasses import fields

    from margin_engine.live.events import AccountState
    from margin_engine.policy.health import Status

    for st in Status:
        s = AccountState("a", "USDT", 1.5, 0.5, 9.0, 7.5, None, st)
        d = s.as_dict()
        assert list(d) == [f.name for f in fields(AccountState)]
        assert d["status"] == st.value
        assert [d[f.name] for f in fields(AccountState)][:-1] == [
            getattr(s, f.name) for f in fields(AccountState)][:-1]
