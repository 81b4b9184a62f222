"""The dynamic margin multiplier on a unit's IM/MM (policy.margin_scale) and its safety property:
a raise alone never moves an account from healthy to liquidation.

Expected figures are derived by hand from the rule ``IM' = m·IM``,
``MM' = max(MM, min((1 + s(m − 1))·MM, c·IM))`` with ``c = cap·m_old`` on a raise and
``min(c_old, cap·m_new)`` otherwise; the status
rule is written out again here (equity ≤ MM > 0 or equity < 0: liquidation; equity < IM: margin
call), independent of ``policy.health``.
"""

from __future__ import annotations

import math
from datetime import date

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from margin_engine.demo.synthetic import generate_book, generate_market
from margin_engine.domain.book import Book
from margin_engine.domain.market import MarketSnapshot
from margin_engine.errors import InputError
from margin_engine.io.loaders import parse_model
from margin_engine.io.series import synthetic_series
from margin_engine.live import LiveBook
from margin_engine.models.core.registry import model_class
from margin_engine.policy.assess import assess_account
from margin_engine.policy.health import Status
from margin_engine.policy.margin_scale import IDENTITY, MarginScale, next_scale


def status(im: float, mm: float, eq: float) -> str:
    if eq < 0 or (mm > 0 and eq <= mm):
        return "liquidation"
    return "margin_call" if eq < im else "healthy"


def test_figures_by_hand() -> None:
    a = next_scale(IDENTITY, 1.25, mm_share=1.0, mm_cap=0.95)
    assert (a.im_multiplier, a.mm_multiplier, a.mm_ceiling) == (1.25, 1.25, 0.95)
    # MM 50 of IM 100: 62.5 (share passed on in full), under the ceiling 0.95 × 100 = 95
    assert a.apply_one(100.0, 50.0) == (125.0, 62.5)
    # MM 90: 112.5 capped at 95
    assert a.apply_one(100.0, 90.0) == (125.0, 95.0)
    # half the raise on MM: 1 + 0.5 × 0.25 = 1.125
    b = next_scale(a, 1.5, mm_share=0.5, mm_cap=0.95)
    assert b.mm_multiplier == 1.25 and b.mm_ceiling == pytest.approx(0.95 * 1.25)
    assert b.apply_one(100.0, 40.0) == (150.0, 50.0)
    # a decrease: the ceiling follows the lower multiplier
    c = next_scale(b, 1.0, mm_share=1.0, mm_cap=0.95)
    assert c.is_identity and c.apply_one(100.0, 90.0) == (100.0, 90.0)
    # 1 -> 2 (ceiling 0.95 × 1) then down to 1.5: the ceiling stays 0.95, not 0.95 × 1.5, so
    # MM 90 stays 95 instead of rising to 135 (hypothesis's counterexample to the first rule)
    d = next_scale(next_scale(IDENTITY, 2.0, mm_share=1.0, mm_cap=0.95), 1.5, mm_share=1.0,
                   mm_cap=0.95)
    assert d.mm_ceiling == 0.95 and d.apply_one(100.0, 90.0) == (150.0, 95.0)


def test_without_the_cap_a_raise_alone_can_liquidate() -> None:
    """Why the cap exists: IM 100, MM 90, equity 100 is healthy; raising MM by 1.25 uncapped
    gives 112.5 ≥ 100 (liquidation), capped gives 95 < 100 (margin call only)."""
    uncapped = MarginScale(1.25, 1.25)
    im, mm = uncapped.apply_one(100.0, 90.0)
    assert status(im, mm, 100.0) == "liquidation"
    im, mm = next_scale(IDENTITY, 1.25, mm_share=1.0, mm_cap=0.95).apply_one(100.0, 90.0)
    assert status(im, mm, 100.0) == "margin_call"


@pytest.mark.parametrize(("kw", "path"), [
    ({"im_multiplier": 0.9}, "im_multiplier"), ({"im_multiplier": math.nan}, "im_multiplier"),
    ({"im_multiplier": 1.2, "mm_multiplier": 1.3}, "mm_multiplier"),
    ({"mm_ceiling": -1.0}, "mm_ceiling")])
def test_bad_scales_are_refused(kw: dict[str, float], path: str) -> None:
    with pytest.raises(ValueError, match=path):
        MarginScale(**kw)
    with pytest.raises(ValueError, match="mm_cap"):
        next_scale(IDENTITY, 1.2, mm_share=1.0, mm_cap=1.0)


mults = st.floats(1.0, 3.0, allow_nan=False)
amount = st.floats(0.0, 1e9, allow_nan=False)


@settings(max_examples=400, deadline=None)
@given(im=amount, mm_frac=st.floats(0.0, 1.0), eq=st.floats(-1e3, 3e9, allow_nan=False),
       m0=mults, m1=mults, m2=mults, share=st.floats(0.0, 1.0), cap=st.floats(0.0, 0.999))
def test_a_raise_alone_never_liquidates_a_healthy_unit(im: float, mm_frac: float, eq: float,
                                                      m0: float, m1: float, m2: float,
                                                      share: float, cap: float) -> None:
    mm = im * mm_frac
    a = next_scale(next_scale(IDENTITY, m0, mm_share=share, mm_cap=cap), m1, mm_share=share,
                   mm_cap=cap)
    b = next_scale(a, m2, mm_share=share, mm_cap=cap)
    im_a, mm_a = a.apply_one(im, mm)
    im_b, mm_b = b.apply_one(im, mm)
    assert mm_b <= im_b * (1 + 1e-12) and mm_a >= mm  # MM' within [MM, IM']
    if status(im_a, mm_a, eq) == "healthy":
        assert status(im_b, mm_b, eq) != "liquidation"
    if m2 <= m1:  # a decrease (or no change) never worsens a status
        order = ["healthy", "margin_call", "liquidation"]
        assert order.index(status(im_b, mm_b, eq)) <= order.index(status(im_a, mm_a, eq))


# -- on the live book ----------------------------------------------------------------------------

MARKET_DOC = generate_market(seed=7)
MARKET = parse_model(MarketSnapshot, MARKET_DOC, "market")
BOOK = parse_model(Book, generate_book(MARKET_DOC, seed=7), "book")
HISTORY = synthetic_series(date(2026, 2, 4))


def _model(name: str):
    cls = model_class(name)
    opts = {"history": HISTORY} if "history" in cls.Params.model_fields else {}
    return cls.from_options(opts)


MODELS = {n: _model(n) for n in ("binance-usdm", "historical-var", "deribit-standard")}


def _margined(model) -> list:
    keep = []
    for a in BOOK.accounts:
        try:
            assess_account(model, a, MARKET, liquidation_prices=False)
            keep.append(a)
        except InputError:
            pass
    return keep


ACCOUNTS = {n: _margined(m) for n, m in MODELS.items()}


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(name=st.sampled_from(sorted(MODELS)), m1=st.floats(1.0, 2.0), m2=st.floats(1.0, 2.0),
       share=st.floats(0.0, 1.0), fractions=st.lists(st.floats(0.2, 3.0), min_size=12,
                                                     max_size=12))
def test_live_book_raise_alone_never_liquidates_a_healthy_account(
        name: str, m1: float, m2: float, share: float, fractions: list[float]) -> None:
    """Accounts' collateral rescaled at random (so some sit between MM and IM); the book's
    multiplier set to m1 and then to m2: no account goes from healthy to liquidation, every
    status change has cause ``margin_parameters``, and every account equals the batch path
    (``assess_account`` with the same scale)."""
    model = MODELS[name]
    accts = [a.model_copy(update={"collateral": {c: v * f for c, v in a.collateral.items()}})
             for a, f in zip(ACCOUNTS[name], fractions, strict=False)]
    live = LiveBook(model, Book(accounts=tuple(accts)), MARKET)
    a = next_scale(IDENTITY, m1, mm_share=share, mm_cap=0.95)
    live.set_margin_scale(a, emit=False)
    before = {s.id: s.status for s in live.states()}
    b = next_scale(a, m2, mm_share=share, mm_cap=0.95)
    events = live.set_margin_scale(b)
    for e in events:
        assert e.cause == "margin_parameters"
        assert not (e.previous_status is Status.HEALTHY and e.status is Status.LIQUIDATION)
        assert before[e.account] is e.previous_status
    for acct, s in zip(accts, live.states(), strict=True):
        rep = assess_account(model, acct, MARKET, liquidation_prices=False, scale=b)
        assert s.status is rep.status
        assert s.initial_margin == pytest.approx(rep.initial_margin, rel=1e-9, abs=1e-9)
        assert s.maintenance_margin == pytest.approx(rep.maintenance_margin, rel=1e-9,
                                                     abs=1e-9)
        if before[s.id] is Status.HEALTHY:
            assert s.status is not Status.LIQUIDATION


def test_live_book_raise_gives_margin_calls_and_the_scale_shows_in_reports() -> None:
    """A deterministic raise 1 → 2 on binance-usdm: every healthy account with equity below
    2 × its IM goes healthy → margin call (not liquidation), its IM doubles, and its report
    shows the raise (IM × (2 − 1)) as the ``dynamic_adjustment`` component."""
    model = MODELS["binance-usdm"]
    live = LiveBook(model, Book(accounts=tuple(ACCOUNTS["binance-usdm"])), MARKET)
    states = live.states()
    healthy = [s for s in states if s.status is Status.HEALTHY and s.initial_margin > 0
               and s.equity < 2 * s.initial_margin]
    assert healthy, "the demo book has a healthy account with equity below 2 × IM"
    events = live.set_margin_scale(next_scale(IDENTITY, 2.0, mm_share=1.0, mm_cap=0.95))
    got = {e.account: e for e in events}
    for s in healthy:
        assert got[s.id].status is Status.MARGIN_CALL
        assert live.state(s.id).initial_margin == pytest.approx(2 * s.initial_margin)
    rep = live.snapshot()[live.account_ids().index(healthy[0].id)]
    assert rep.components["dynamic_adjustment"] == pytest.approx(healthy[0].initial_margin)
