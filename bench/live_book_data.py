"""Synthetic books for the live-engine benchmarks: N instruments over 10 coins, accounts of K
random positions, built without validation (``model_construct``: validating a million pydantic
positions would itself take minutes, and every object here is well-formed by construction)."""

from __future__ import annotations

import copy
from datetime import UTC, date, datetime, timedelta
from typing import Any

import numpy as np

from margin_engine.demo.synthetic import generate_history
from margin_engine.domain.book import Account, Book, MarginMode, Position
from margin_engine.domain.history import PriceSeries
from margin_engine.domain.instruments import Instrument, Kind, OptionType
from margin_engine.domain.market import MarketSnapshot
from margin_engine.maths import black76
from margin_engine.models.core.base import MarginModel
from margin_engine.models.core.registry import get_model
from margin_engine.models.venues.binance_usdm import default_tables

COINS = ("BTC", "ETH", "SOL", "XRP", "BNB", "DOGE", "ADA", "AVAX", "LINK", "DOT")
SPOT = {"BTC": 76000.0, "ETH": 2300.0, "SOL": 98.0, "XRP": 1.6, "BNB": 640.0, "DOGE": 0.11,
        "ADA": 0.29, "AVAX": 9.5, "LINK": 9.8, "DOT": 1.45}
NOW = datetime(2026, 2, 4, 9, 30, tzinfo=UTC)
#: Floor of a generated option mark, coin: Deribit's option tick (0.0001 BTC/ETH, deribit.com
#: contract specifications, read 2026-12-06). Deep out-of-the-money Black values go far below
#: it; the old floor of 1e-8 is not a legal mark (``Instrument`` requires a mark > 1e-8).
MIN_OPTION_MARK = 1e-4
_MON = ["JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"]


def _name(d: datetime) -> str:
    return f"{d.day}{_MON[d.month - 1]}{d.year % 100:02d}"


def deribit_market(n_instruments: int = 5000) -> MarketSnapshot:
    """Per coin: an inverse perpetual, inverse futures on 8 weekly/monthly expiries and
    inverse options (calls and puts on a strike ladder) on those expiries."""
    per = n_instruments // len(COINS)
    expiries = [NOW.replace(hour=8) + timedelta(days=7 * k + 3) for k in range(1, 9)]
    out: list[Instrument] = []
    for c in COINS:
        s = SPOT[c]
        out.append(Instrument.model_construct(
            symbol=f"{c}-PERPETUAL", kind=Kind.PERPETUAL, underlying=c, settle=c, inverse=True,
            contract_size=10.0, mark_price=s))
        for e in expiries:
            out.append(Instrument.model_construct(
                symbol=f"{c}-{_name(e)}", kind=Kind.FUTURE, underlying=c, settle=c, inverse=True,
                contract_size=10.0, mark_price=s * 1.001, expiry=e))
        n_opt = per - 1 - len(expiries)
        per_exp = n_opt // len(expiries)
        for k in range(n_opt):
            e = expiries[min(k // per_exp, len(expiries) - 1)]
            j = k % per_exp
            strike = float(f"{s * (0.5 + j // 2 * 1.0 / per_exp * 2):.4g}")
            cp = "C" if j % 2 == 0 else "P"
            t = (e - NOW).days / 365.0
            iv = 0.55 + 0.2 * abs(np.log(strike / s))
            fwd = s * 1.001
            usd = black76.price_usd(fwd, strike, t, iv, cp == "C")
            out.append(Instrument.model_construct(
                symbol=f"{c}-{_name(e)}-{strike:g}-{cp}{k}", kind=Kind.OPTION, underlying=c,
                settle=c, inverse=True, contract_size=1.0,
                mark_price=max(float(usd) / fwd, MIN_OPTION_MARK), expiry=e, strike=strike,
                option_type=OptionType.CALL if cp == "C" else OptionType.PUT, mark_iv=float(iv)))
    return MarketSnapshot.model_construct(timestamp=NOW, index=dict(SPOT),
                                          fx={"USDT": 1.0, "USDC": 1.0},
                                          instruments=tuple(out), order_books={},
                                          vol_surface={}, rates={})


def derive_market(n_instruments: int = 5000) -> MarketSnapshot:
    """:func:`deribit_market` made linear for Derive's PMRM_2: USDC-settled perpetuals and
    options with USD marks (the dated futures dropped: PMRM_2 margins none)."""
    base = deribit_market(n_instruments)
    out = [i.model_copy(update={"settle": "USDC", "inverse": False, "mark_price": (
        i.mark_price * SPOT[i.underlying] * 1.001 if i.is_option else i.mark_price)})
        for i in base.instruments if i.kind is not Kind.FUTURE]
    return base.model_copy(update={"instruments": tuple(out)})


def linear_market(n_instruments: int = 5000) -> MarketSnapshot:
    """Per coin: a USDT-margined perpetual and dated linear futures (Binance USDⓈ-M style)."""
    per = n_instruments // len(COINS)
    out: list[Instrument] = []
    for c in COINS:
        s = SPOT[c]
        out.append(Instrument.model_construct(
            symbol=f"{c}USDT", kind=Kind.PERPETUAL, underlying=c, settle="USDT", inverse=False,
            contract_size=1.0, mark_price=s))
        for k in range(per - 1):
            e = NOW.replace(hour=8) + timedelta(days=k + 1)
            out.append(Instrument.model_construct(
                symbol=f"{c}USDT_{e:%y%m%d}", kind=Kind.FUTURE, underlying=c, settle="USDT",
                inverse=False, contract_size=1.0, mark_price=s * (1 + 0.0001 * k), expiry=e))
    return MarketSnapshot.model_construct(timestamp=NOW, index=dict(SPOT), fx={"USDT": 1.0},
                                          instruments=tuple(out), order_books={},
                                          vol_surface={}, rates={})


def random_book(market: MarketSnapshot, n_accounts: int, per_account: int, *, seed: int = 1,
                mode: MarginMode = MarginMode.PORTFOLIO, coin_collateral: bool = False) -> Book:
    """``n_accounts`` accounts of ``per_account`` distinct random instruments, sizes ±1..20."""
    rng = np.random.default_rng(seed)
    n = len(market.instruments)
    picks = np.argsort(rng.random((n_accounts, n)), axis=1)[:, :per_account] if n <= 64 else (
        np.stack([rng.choice(n, per_account, replace=False) for _ in range(n_accounts)]))
    sizes = rng.integers(1, 21, size=(n_accounts, per_account)) * rng.choice(
        [-1.0, 1.0], size=(n_accounts, per_account))
    syms = [i.symbol for i in market.instruments]
    unds = [i.underlying for i in market.instruments]
    accounts = []
    for a in range(n_accounts):
        row = picks[a].tolist()
        coll: dict[str, float] = {"USDT": 2e6}
        if coin_collateral:
            coll = {unds[k]: 2e6 / SPOT[unds[k]] for k in row}
        pos = tuple(Position.model_construct(symbol=syms[k], size=float(q), entry_price=None,
                                             isolated_margin=None)
                    for k, q in zip(row, sizes[a].tolist(), strict=True))
        accounts.append(Account.model_construct(
            id=f"a{a}", margin_mode=mode, collateral=coll, positions=pos, leverage={},
            credit_rating=None, haircuts={}))
    return Book.model_construct(accounts=tuple(accounts))


def model_for(name: str, market: MarketSnapshot, *, lookback_days: int | None = None,
              history_days: int = 1500) -> MarginModel:
    """The benchmark's model: brackets, Deribit pair parameters and futures rates copied to
    every coin (synthetic: only BTC/ETH have published ones), dYdX liquidity tiers for every
    coin, a 10-coin synthetic history."""
    opts: dict[str, Any] = {}
    if name == "binance-usdm":
        table = default_tables()["BTCUSDT"]
        opts["brackets"] = {i.symbol: table.model_copy(update={"symbol": i.symbol})
                            for i in market.instruments}
    elif name == "dydx-v4":  # BTC, ETH Large-Cap (genesis); the other coins Mid-Cap
        opts["market_liquidity_tier"] = {c: 0 if c in ("BTC", "ETH") else 5 for c in COINS}
    elif name == "deribit-standard":
        from margin_engine.models.venues.deribit_standard import default_futures_rates
        btc = default_futures_rates()["BTC"].model_dump()
        opts["futures"] = {c: dict(btc) for c in COINS}
    elif name == "hyperliquid":
        pass  # the default tables cover the 10 coins
    elif name == "deribit-pm":
        from margin_engine.models.venues.deribit_pm import default_currencies, default_pairs
        pair = default_pairs()["btc_usd"].model_dump()
        ccy = default_currencies()["btc"].model_dump()
        opts["currency_pair"] = {f"{c.lower()}_usd": copy.deepcopy(pair) for c in COINS}
        opts["currency"] = {c.lower(): copy.deepcopy(ccy) for c in COINS}
    elif name == "derive-pmrm":
        pass  # Derive's mainnet parameters apply to every coin
    elif name == "span":  # BTC's risk-parameter set for the coins CME lists none for
        opts["combined_commodities"] = {c: {} for c in COINS}
    elif name != "okx-pm":  # okx-pm: its '*' parameters cover the other coins
        opts["history"] = history(history_days)
        # the pre-CCP configuration (no APC floor: a second scenario set), explicit since the
        # CCP defaults of issue 11, so the figures compare with earlier runs; the floor's cost
        # is bench/bench_apc_floor.py's
        opts |= {"apc": "none", "horizon_days": 1}
        if lookback_days is not None:
            opts["lookback_days"] = lookback_days
    return get_model(name, opts)


_HIST: dict[int, PriceSeries] = {}


def history(days: int = 1500) -> PriceSeries:
    """A synthetic daily history of the 10 coins ending the day before the market."""
    if days not in _HIST:
        start = date(2026, 2, 4) - timedelta(days=days)
        doc = generate_history(seed=7, start=start.isoformat(), days=days, underlyings=COINS,
                               spot=SPOT)
        closes = np.column_stack([doc["closes"][c] for c in COINS])
        _HIST[days] = PriceSeries(np.array(doc["dates"], dtype="datetime64[D]"), COINS, closes,
                                  f"synthetic 10 coins, {days} days")
    return _HIST[days]
