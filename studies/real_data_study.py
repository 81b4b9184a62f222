"""The real-data study of issue 5: five margin models, with and without the dynamic controller,
backtested on four books of real history at 1- and 2-day horizons.

Run from the repository root (``../shared/data/real`` must be present)::

    python -m studies.real_data_study [--quick] [--out docs/study] [--page PATH] [--data DIR]

It writes ``OUT/results.json`` (every figure of the page), ``OUT/*.png`` (three figures) and the
page (``--page``, default ``OUT/../real-data-study.md``, i.e. ``docs/real-data-study.md``),
whose numbers are all taken from ``results.json``. ``--quick`` runs short windows around the
2020-03-12 and 2026-02-05 crashes with 500 Monte Carlo paths (for the test; about 20 s).

Books (one account each, credit rating AAA so that only market risk is backtested):

- ``btc``, ``eth``: long 1 BTC / 1 ETH, as the linear perpetual ``BTCUSDT`` / ``ETHUSDT`` at
  the Binance daily spot close (funding ignored);
- ``multi``: equal USD notional (10,000 USD) in every coin with a Binance daily file, rebalanced
  at each day's close: the book of day ``t`` holds ``10,000 / close_t`` of each coin that has
  at least 365 daily closes by ``t`` (EMIR Art. 25's twelve months of history);
- ``options``: a short BTC straddle on the 2026 Deribit chains, delta-hedged daily with the
  inverse ``BTC-PERPETUAL``: short 1 call and 1 put at the listed strike nearest the forward,
  on the expiry nearest 30 days away, rolled when 7 days or fewer remain; each day the
  perpetual position is set to offset the straddle's Black-76 USD delta at that day's chain.

The spot books start on the first day on which each of their coins has 365 daily closes
(2018-08-17 for BTC and ETH) and end on the last day with a close ``h`` days later. The option
book runs over the whole chain period; its models' price history is the Binance BTC daily
close, continued by the chain's own daily index after the Binance file ends (2026-03-30).

Each model runs once per book and horizon with :class:`policy.dynamic.DynamicController`
(default :class:`DynamicConfig`); the run without the controller is
:func:`analysis.backtest.without_controller` of it, which equals a separate run (the
controller never changes the model's margin, the losses or the days). The controller's regime
inputs come from :func:`policy.dynamic.regime_inputs_series` on the book's own price (BTC, ETH,
the equal-weight index of the multi-coin book), with the coin's Deribit DVOL (BTC, ETH; from
2021-03) and the Binance BTCUSDT funding rate (2019-09 … 2026-02) as a market-wide liquidity
signal. Its APC floor is :func:`analysis.backtest.floor_model_factory`: for the three
risk-based models, historical VaR/ES with the model's measure and confidence on a 3,650-day
unfiltered look-back; the two Deribit models have no look-back, hence no floor.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import re
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, cast

import numpy as np
from numpy.typing import NDArray

from margin_engine.analysis import backtest_stats as bs
from margin_engine.analysis.backtest import (
    FLOOR_LOOKBACK_DAYS,
    BacktestResult,
    DynamicInputs,
    MarginController,
    compute_statistics,
    floor_model_factory,
    registered_model_factory,
    run_backtest,
    run_dynamic_pair,
    without_controller,
)
from margin_engine.analysis.market_builders import (
    ChainMarketBuilder,
    HistoryMarketBuilder,
    MarketBuilder,
    OptionChain,
    read_option_chain,
)
from margin_engine.domain.book import Book
from margin_engine.domain.history import PriceSeries
from margin_engine.errors import InputError
from margin_engine.io.history import load_dvol, load_funding
from margin_engine.io.series import load_price_series
from margin_engine.maths.black76 import greeks_usd
from margin_engine.policy.dynamic import (
    DynamicConfig,
    DynamicController,
    RegimeSeries,
    regime_inputs_series,
)

__all__ = ["MODELS", "StudySettings", "main", "run_study"]

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DATA = ROOT.parent / "shared" / "data" / "real"
DEFAULT_OUT = ROOT / "docs" / "study"

MODELS = ("deribit-standard", "deribit-pm", "historical-var", "filtered-es", "monte-carlo-es")
HORIZONS = (1, 2)
CONFIDENCE = 0.99
COINS = ("BTC", "ETH", "BNB", "XRP", "ADA", "DOGE", "SOL", "TRX", "BCH")
MIN_HISTORY_DAYS = 365          # closes a coin needs before it is backtested (EMIR Art. 25)
MULTI_NOTIONAL_USD = 10_000.0   # per coin and day in the equal-weight book
TARGET_TENOR_DAYS = 30.0        # the straddle's expiry: the listed one nearest this
ROLL_DAYS = 7.0                 # roll when this many days or fewer remain
MC_PATHS = 10_000               # the model's default; the full study fits its time budget
MC_PATHS_QUICK = 500
QUICK_SPOT = ("2020-02-20", "2020-03-25")
QUICK_OPTIONS = ("2026-01-29", "2026-02-12")
BOOK_TITLES = {"btc": "Long 1 BTC", "eth": "Long 1 ETH",
               "multi": "Equal-weight multi-coin book",
               "options": "Delta-hedged short BTC straddle"}
DAY = np.timedelta64(1, "D")
Days = NDArray[np.datetime64]


@dataclass(frozen=True)
class StudySettings:
    """What to run. ``spot_window``/``option_window`` (ISO days) narrow the default windows."""

    quick: bool = False
    mc_paths: int = MC_PATHS
    models: tuple[str, ...] = MODELS
    horizons: tuple[int, ...] = HORIZONS
    spot_window: tuple[str, str] | None = None
    option_window: tuple[str, str] | None = None

    @classmethod
    def quick_run(cls) -> StudySettings:
        return cls(quick=True, mc_paths=MC_PATHS_QUICK, spot_window=QUICK_SPOT,
                   option_window=QUICK_OPTIONS)


# ---------------------------------------------------------------------------------------------
# data
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class StudyData:
    """Every input of the study, loaded once."""

    spot: PriceSeries                       # daily closes of every coin with a file
    dvol: dict[str, tuple[Days, NDArray[np.float64]]]   # coin → DVOL (annualised decimal)
    funding: tuple[Days, NDArray[np.float64]]           # BTCUSDT daily-mean funding per 8 h
    chain: OptionChain
    files: dict[str, list[str]]


def _one(data: Path, pattern: str) -> Path:
    found = sorted(data.glob(pattern))
    if not found:
        raise FileNotFoundError(f"{data}: no file matches {pattern!r}")
    return found[0]


def load_data(data: Path) -> StudyData:
    """Read the Binance daily closes, DVOL, funding and the daily Deribit option chain."""
    spot_files = [data / f"binance_spot_daily_{c}USDT_cdd.csv" for c in COINS]
    spot_files = [p for p in spot_files if p.is_file()]
    if not any(p.name.startswith("binance_spot_daily_BTC") for p in spot_files):
        raise FileNotFoundError(f"{data}: no binance_spot_daily_BTCUSDT_cdd.csv")
    spot = load_price_series(spot_files)
    dvol = {}
    dvol_files = sorted(data.glob("deribit_dvol_daily_*.csv"))
    for p in dvol_files:
        h = load_dvol(p)
        for k, u in enumerate(h.symbols):
            dvol[u] = (h.dates.astype("datetime64[D]"), np.asarray(h.closes[:, k]))
    fund_file = _one(data, "binance_BTCUSDT_perp_funding_daily_mean_*.csv")
    fu = load_funding(fund_file)
    funding = (fu.dates.astype("datetime64[D]"), np.asarray(fu.rates[:, 0]))
    chain_file = _one(data, "deribit_options_chain_daily_*.csv.gz")
    chain = read_option_chain([chain_file])
    return StudyData(spot=spot, dvol=dvol, funding=funding, chain=chain, files={
        "spot": [p.name for p in spot_files], "dvol": [p.name for p in dvol_files],
        "funding": [fund_file.name], "option_chain": [chain_file.name]})


# ---------------------------------------------------------------------------------------------
# books
# ---------------------------------------------------------------------------------------------


@dataclass
class BookSpec:
    """One book: its history, market builder, regime signal, days and positions."""

    key: str
    history: PriceSeries
    builder: MarketBuilder
    regimes: RegimeSeries
    regime_underlying: str
    signals: str
    days: Days
    fixed: Book | None = None
    daily: Callable[[np.datetime64], Book | None] | None = None
    notes: dict[str, Any] = field(default_factory=dict)


def _account(acct_id: str, positions: list[tuple[str, float]], collateral: dict[str, float]
             ) -> Book:
    return Book.model_validate({"accounts": [{
        "id": acct_id, "credit_rating": "AAA", "collateral": collateral,
        "positions": [{"symbol": s, "size": q} for s, q in positions]}]})


def _window(days: Days, window: tuple[str, str] | None) -> Days:
    if window is None:
        return days
    lo, hi = (np.datetime64(w, "D") for w in window)
    return days[(days >= lo) & (days <= hi)]


def _first_close(spot: PriceSeries) -> dict[str, np.datetime64]:
    return {u: spot.dates[np.flatnonzero(np.isfinite(spot.closes[:, k]))[0]]
            for k, u in enumerate(spot.symbols)}


def _regimes(dates: Days, prices: NDArray[np.float64], data: StudyData, dvol: str | None
             ) -> tuple[RegimeSeries, str]:
    ok = np.isfinite(prices)
    signals = ["EWMA vol"]
    dv = None
    if dvol is not None and dvol in data.dvol:
        dv = data.dvol[dvol]
        signals.append(f"{dvol} DVOL")
    signals.append("BTCUSDT funding")
    reg = regime_inputs_series(dates[ok], prices[ok], dvol=dv, funding=data.funding)
    return reg, ", ".join(signals)


def single_coin_book(data: StudyData, coin: str, window: tuple[str, str] | None) -> BookSpec:
    """Long 1 coin as the linear perpetual ``<coin>USDT`` at the daily close."""
    spot = data.spot
    k = spot.symbols.index(coin)
    start = _first_close(spot)[coin] + MIN_HISTORY_DAYS * DAY
    days = spot.dates[(spot.dates >= start) & np.isfinite(spot.closes[:, k])]
    reg, signals = _regimes(spot.dates, spot.closes[:, k], data, coin)
    return BookSpec(key=coin.lower(), history=spot, builder=HistoryMarketBuilder(spot),
                    regimes=reg, regime_underlying=coin, signals=signals,
                    days=_window(days, window),
                    fixed=_account(f"long-{coin.lower()}", [(f"{coin}USDT", 1.0)],
                                   {"USDT": 1_000_000.0}))


def multi_coin_book(data: StudyData, window: tuple[str, str] | None) -> BookSpec:
    """Equal USD notional in every coin with 365 closes, rebalanced at each daily close."""
    spot = data.spot
    first = _first_close(spot)
    joins = {u: first[u] + MIN_HISTORY_DAYS * DAY for u in spot.symbols}
    closes = spot.closes
    member = np.array([[d >= joins[u] for u in spot.symbols] for d in spot.dates])
    member &= np.isfinite(closes)
    # the regime signal: the equal-weight index (the book's value per unit of notional)
    index = np.full(spot.dates.size, np.nan)
    level, prev = 1.0, -1
    for i in range(spot.dates.size):
        if not member[i].any():
            continue
        if prev >= 0:
            held = member[prev] & np.isfinite(closes[i])
            if held.any():
                level *= 1.0 + float(np.mean(closes[i, held] / closes[prev, held] - 1.0))
        index[i] = level
        prev = i
    reg, signals = _regimes(spot.dates, index, data, None)
    row = {d: i for i, d in enumerate(spot.dates.tolist())}

    def book_of(day: np.datetime64) -> Book | None:
        i = row.get(day.item())
        if i is None or not member[i].any():
            return None
        pos = [(f"{u}USDT", MULTI_NOTIONAL_USD / float(closes[i, k]))
               for k, u in enumerate(spot.symbols) if member[i, k]]
        return _account("equal-weight", pos, {"USDT": 1_000_000.0})

    days = spot.dates[member.any(axis=1)]
    return BookSpec(key="multi", history=spot, builder=HistoryMarketBuilder(spot), regimes=reg,
                    regime_underlying="INDEX", signals=signals.replace(
                        "EWMA vol", "EWMA vol of the equal-weight index"),
                    days=_window(days, window), daily=book_of,
                    notes={"joins": {u: str(joins[u]) for u in spot.symbols}})


def _straddle_choice(chain: OptionChain, k: int) -> tuple[str, float, datetime] | None:
    """(expiry code, strike, expiry time) of the BTC straddle to hold from chain day ``k``."""
    ts = chain.timestamps[k]
    by_expiry: dict[str, dict[float, set[str]]] = {}
    for sym in chain.options[k]:
        parts = sym.split("-")
        if len(parts) == 4 and parts[0] == "BTC":
            by_expiry.setdefault(parts[1], {}).setdefault(float(parts[2]), set()).add(parts[3])
    best = None
    for code, strikes in by_expiry.items():
        exp = datetime.strptime(code, "%d%b%y").replace(hour=8, tzinfo=UTC)
        tenor = (exp - ts).total_seconds() / 86400.0
        pairs = [s for s, kinds in strikes.items() if kinds >= {"C", "P"}]
        if tenor <= ROLL_DAYS or not pairs:
            continue
        if best is None or abs(tenor - TARGET_TENOR_DAYS) < abs(best[0] - TARGET_TENOR_DAYS):
            best = (tenor, code, exp, pairs)
    if best is None:
        return None
    _, code, exp, pairs = best
    fwd = chain.options[k][f"BTC-{code}-{_strike(pairs[0])}-C"].forward
    strike = min(pairs, key=lambda s: (abs(s - fwd), s))
    return code, strike, exp


def _strike(s: float) -> str:
    return str(int(s)) if float(s).is_integer() else str(s)


def option_book(data: StudyData, window: tuple[str, str] | None) -> BookSpec:
    """Short 1 BTC straddle (≈30 days, ATM, rolled at 7 days), delta-hedged daily with the
    inverse perpetual (USD face 10 per contract)."""
    chain = data.chain
    k_btc = data.spot.symbols.index("BTC")
    spot_d, spot_c = data.spot.dates, data.spot.closes[:, k_btc]
    last = spot_d[np.flatnonzero(np.isfinite(spot_c))[-1]]
    after = chain.days > last
    extra_d = chain.days[after]
    extra_c = np.array([chain.index[i]["BTC"] for i in np.flatnonzero(after)])
    keep = spot_d <= last
    history = PriceSeries(np.concatenate([spot_d[keep], extra_d]), ("BTC",),
                          np.concatenate([spot_c[keep], extra_c])[:, None],
                          f"{data.spot.source} (BTC) + chain index after {last}")
    reg, signals = _regimes(history.dates, history.closes[:, 0], data, "BTC")
    books: dict[Any, Book] = {}
    rolls: list[dict[str, Any]] = []
    held: tuple[str, float, datetime] | None = None
    for k, day in enumerate(chain.days):
        ts = chain.timestamps[k]
        opts = chain.options[k]
        names = None if held is None else (f"BTC-{held[0]}-{_strike(held[1])}-C",
                                           f"BTC-{held[0]}-{_strike(held[1])}-P")
        if (held is None or names is None or (held[2] - ts).total_seconds() <= ROLL_DAYS * 86400
                or not all(n in opts for n in names)):
            held = _straddle_choice(chain, k)
            if held is None:
                continue
            rolls.append({"day": str(day), "expiry": held[0], "strike": held[1]})
            names = (f"BTC-{held[0]}-{_strike(held[1])}-C", f"BTC-{held[0]}-{_strike(held[1])}-P")
        assert names is not None
        spot = chain.index[k]["BTC"]
        tenor = (held[2] - ts).total_seconds() / (365.0 * 86400.0)
        delta = 0.0  # USD delta of the straddle held long, per BTC of each leg
        for n, is_call in zip(names, (True, False), strict=True):
            q = opts[n]
            delta += greeks_usd(q.forward, held[1], tenor, q.mark_iv, is_call).delta * (
                q.forward / spot)
        # short straddle delta = −delta BTC; an inverse perpetual contract adds 10/S BTC
        hedge = round(delta * spot / 10.0)
        books[day.item()] = _account(
            "short-straddle", [(names[0], -1.0), (names[1], -1.0), ("BTC-PERPETUAL", hedge)],
            {"BTC": 10.0})
    days = np.array(sorted(books), dtype="datetime64[D]")
    return BookSpec(key="options", history=history, builder=ChainMarketBuilder(chain),
                    regimes=reg, regime_underlying="BTC", signals=signals,
                    days=_window(days, window), daily=lambda d: books.get(d.item()),
                    notes={"rolls": rolls, "history_until": str(last)})


# ---------------------------------------------------------------------------------------------
# running
# ---------------------------------------------------------------------------------------------


class NotApplicableError(Exception):
    """The model cannot margin the book (e.g. no parameters for a coin)."""


def _concat(parts: Sequence[BacktestResult], skipped: Sequence[tuple[str, str]],
            label: str) -> BacktestResult:
    """One result from day-by-day results, with every statistic recomputed."""
    first = parts[0]

    def cat(name: str) -> NDArray[Any]:
        return np.concatenate([getattr(p, name) for p in parts])

    has_es = all(p.var is not None and p.es is not None for p in parts)
    var = np.concatenate([cast(NDArray[np.float64], p.var) for p in parts]) if has_es else None
    es = np.concatenate([cast(NDArray[np.float64], p.es) for p in parts]) if has_es else None
    es_alpha = first.es_alpha if has_es else None
    dates, margin, loss, notional = cat("dates"), cat("margin"), cat("realised_loss"), \
        cat("notional")
    keys = sorted({u for p in parts for u in p.prices})
    prices = {u: np.concatenate([p.prices.get(u, np.full(p.n_days, np.nan)) for p in parts])
              for u in keys}
    stats = compute_statistics(dates, margin, loss, notional,
                               confidence=first.statistics.confidence, var=var, es=es,
                               es_alpha=es_alpha, horizon_days=first.horizon_days)
    every_skip = sorted([*skipped, *(s for p in parts for s in p.skipped)])
    return dataclasses.replace(
        first, label=label, dates=dates, margin=margin, model_margin=cat("model_margin"),
        realised_loss=loss, exceedance=bs.exception_flags(margin, loss), notional=notional,
        prices=prices, var=var, es=es, es_alpha=es_alpha,
        controller_log=tuple(e for p in parts for e in p.controller_log),
        skipped=tuple(every_skip), statistics=stats)


@dataclass(frozen=True)
class Pair:
    """One model on one book at one horizon, without and with the controller."""

    book: str
    model: str
    horizon: int
    base: BacktestResult
    dynamic: BacktestResult
    floor: str
    floor_days: int
    floors: dict[str, float]
    seconds: float

    def floor_binding_days(self) -> int:
        """Days on which the charged margin is the APC floor (above model × multiplier)."""
        m = self.dynamic.margin
        f = np.array([self.floors.get(str(d), np.nan) for d in self.dynamic.dates])
        return int(np.sum(np.isfinite(f) & (np.abs(m - f) <= 1e-9 * np.abs(m))
                          & (f > self.dynamic.model_margin * (1 + 1e-9))))


def _short_reason(reason: str) -> str:
    """A model's refusal without the CLI hint and the day (the same on every day)."""
    text = reason.split(" (backtest day")[0]
    return text.split("; pass --param")[0] + ")" if "; pass --param" in text else text


#: The configuration this study was run with (issue 5), explicit since the registered defaults
#: became the CCP set of issue 11 (studies/ccp_perpetuals.py backtests those): no APC inside
#: the model (the controller holds the floor), RiskMetrics λ 0.94, t(4) Monte Carlo marginals.
LEGACY_OPTIONS: dict[str, dict[str, Any]] = {
    "historical-var": {"apc": "none"},
    "filtered-es": {"apc": "none", "decay": 0.94},
    "monte-carlo-es": {"apc": "none", "decay": 0.94, "marginals": "t"},
}


def _model_options(model: str, settings: StudySettings) -> dict[str, Any]:
    opts = dict(LEGACY_OPTIONS.get(model, {}))
    return {**opts, "n_paths": settings.mc_paths} if model == "monte-carlo-es" else opts


def _floor_text(model: str, floor_factory: object) -> str:
    if floor_factory is None:
        return "none (no look-back)"
    return f"historical {'VaR' if model == 'historical-var' else 'ES'}, " \
           f"{FLOOR_LOOKBACK_DAYS}-day look-back"


def run_pair(spec: BookSpec, model: str, horizon: int, settings: StudySettings,
             config: DynamicConfig) -> Pair:
    """Backtest ``model`` on the book without and with the dynamic controller."""
    t0 = time.perf_counter()
    opts = _model_options(model, settings)
    factory = registered_model_factory(model, opts, horizon_days=horizon)
    floor_f = floor_model_factory(model, opts, horizon_days=horizon)
    label = model
    if spec.fixed is not None:
        try:
            base, dyn, inputs = run_dynamic_pair(
                spec.fixed, factory, spec.history, regimes={spec.regime_underlying: spec.regimes},
                regime_underlying=spec.regime_underlying, config=config, floor_factory=floor_f,
                label=label, horizon_days=horizon, start=spec.days[0], end=spec.days[-1],
                market_builder=spec.builder, confidence=CONFIDENCE)
        except InputError as exc:
            if exc.path.startswith("accounts"):
                raise NotApplicableError(_short_reason(exc.reason)) from None
            raise
        return Pair(spec.key, model, horizon, base, dyn, _floor_text(model, floor_f),
                    inputs.floor_days, inputs.floors, time.perf_counter() - t0)
    assert spec.daily is not None
    mdl = factory(spec.history)
    floor = None if floor_f is None else floor_f(spec.history)
    ctrl = cast(MarginController, DynamicController(config))
    parts: list[BacktestResult] = []
    skipped: list[tuple[str, str]] = []
    floor_days = 0
    floors: dict[str, float] = {}
    for day in spec.days:
        book = spec.daily(day)
        if book is None:
            skipped.append((str(day), "no position"))
            continue
        inputs = DynamicInputs({spec.regime_underlying: spec.regimes}, book, floor_model=floor,
                               underlying=spec.regime_underlying)
        try:
            part = run_backtest(book, lambda _h: mdl, spec.history, horizon_days=horizon,
                                start=day, end=day, market_builder=spec.builder,
                                controller=ctrl, controller_inputs=inputs,
                                confidence=CONFIDENCE, label=label)
        except InputError as exc:
            if exc.path == "--start":  # the day could not be backtested: its reason
                skipped.append((str(day), exc.reason.split("(", 1)[-1].rstrip(")")))
                continue
            if exc.path.startswith("accounts"):
                raise NotApplicableError(_short_reason(exc.reason)) from None
            raise
        floor_days += inputs.floor_days
        floors |= inputs.floors
        parts.append(part)
    if not parts:
        raise NotApplicableError("no day could be backtested")
    dyn = _concat(parts, skipped, f"{label} + dynamic")
    return Pair(spec.key, model, horizon, without_controller(dyn, label), dyn,
                _floor_text(model, floor_f), floor_days, floors, time.perf_counter() - t0)


# ---------------------------------------------------------------------------------------------
# records (results.json)
# ---------------------------------------------------------------------------------------------


def verdict(coverage: float, kupiec_p: float, confidence: float = CONFIDENCE) -> str:
    """``pass`` when Kupiec's POF test does not reject the 1 − confidence exceedance rate at
    5%; ``conservative`` when it rejects with fewer exceedances than that (coverage above
    target); ``fail`` when it rejects with more."""
    if kupiec_p >= 0.05:
        return "pass"
    return "conservative" if coverage > confidence else "fail"


def _r(x: float | None, digits: int = 10) -> float | None:
    if x is None or not math.isfinite(x):
        return None
    return float(f"{x:.{digits}g}")


def record(pair: Pair, dynamic: bool) -> dict[str, Any]:
    """The figures of one run (one row of the page)."""
    r = pair.dynamic if dynamic else pair.base
    st = r.statistics
    pcs, pc = st.procyclicality_of_share, st.procyclicality
    tl = st.traffic_light_last_250

    def inc(p: bs.ProcyclicalityResult | None, n: int) -> float | None:
        if p is None or n not in [x.horizon for x in p.n_day]:
            return None
        return _r(p.ratio(n) - 1.0)

    out: dict[str, Any] = {
        "book": pair.book, "model": pair.model, "horizon": pair.horizon,
        "controller": dynamic, "label": r.label, "currency": r.currency,
        "first_day": str(r.dates[0]), "last_day": str(r.dates[-1]), "days": r.n_days,
        "skipped": len(r.skipped), "exceedances": st.coverage.n_exceptions,
        "expected": _r((1.0 - CONFIDENCE) * r.n_days), "coverage": _r(st.coverage.coverage),
        "kupiec_p": _r(st.kupiec.p_value),
        "kupiec_p_non_overlapping": None if st.non_overlapping is None
        else _r(st.non_overlapping.kupiec.p_value),
        "christoffersen_cc_p": None if st.christoffersen is None
        else _r(st.christoffersen.p_value_cc),
        "zone_last_250": tl.zone, "exceptions_last_250": tl.n_exceptions,
        "days_last_250": tl.n_obs,
        "mean_margin_share": None if st.margin_share is None
        else _r(st.margin_share.mean_share),
        "peak_to_trough": None if pcs is None else _r(pcs.peak_to_trough.ratio),
        "max_1d_increase": inc(pcs, 1), "max_5d_increase": inc(pcs, 5),
        "max_30d_increase": inc(pcs, 30),
        "peak_to_trough_of_margin": None if pc is None else _r(pc.peak_to_trough.ratio),
        "max_5d_increase_of_margin": inc(pc, 5),
        "max_loss": _r(st.max_loss), "mean_margin": _r(st.mean_margin),
        "verdict": verdict(st.coverage.coverage, st.kupiec.p_value),
        "exceedance_dates": [str(d) for d in r.dates[r.exceedance]],
    }
    if dynamic:
        out |= {"controller_changes": len(r.controller_log), "floor": pair.floor,
                "floor_days": pair.floor_days, "floor_binding_days": pair.floor_binding_days()}
        # the fair comparison: the model's own margin scaled to the controller's capital
        b = pair.base.statistics.margin_share
        if b is not None and st.margin_share is not None and b.mean_share > 0:
            k = st.margin_share.mean_share / b.mean_share
            x = int(bs.exception_flags(k * pair.base.margin, pair.base.realised_loss).sum())
            out |= {"equal_capital_factor": _r(k), "equal_capital_exceedances": x,
                    "equal_capital_coverage": _r(1.0 - x / pair.base.n_days)}
    return out


# ---------------------------------------------------------------------------------------------
# figures
# ---------------------------------------------------------------------------------------------

_COLOURS = {"deribit-standard": "#8c564b", "deribit-pm": "#9467bd", "historical-var": "#1f77b4",
            "filtered-es": "#2ca02c", "monte-carlo-es": "#ff7f0e"}
_MARKERS = {"btc": "o", "eth": "s", "multi": "D", "options": "^"}
_SHORT = {"deribit-standard": "D-std", "deribit-pm": "D-PM", "historical-var": "HVaR",
          "filtered-es": "FHS-ES", "monte-carlo-es": "MC-ES"}
_SHORT_BOOK = {"btc": "Long BTC", "eth": "Long ETH", "multi": "Multi-coin",
               "options": "Short straddle"}
_DPI = 80


def _fig(width: float, height: float) -> Any:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=_DPI, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def _save(fig: Any, path: Path) -> str:
    fig.savefig(path, format="png", dpi=_DPI, metadata={"Software": None})
    return path.name


def _n(k: int, word: str) -> str:
    return f"{k} {word}{'' if k == 1 else 's'}"


def figure_btc(pairs: Sequence[Pair], out: Path) -> str | None:
    """Margin and realised loss (share of notional) over time, BTC at 1 day, per model."""
    rows = [p for p in pairs if p.book == "btc" and p.horizon == 1]
    if not rows:
        return None
    fig = _fig(10.0, 2.1 * len(rows) + 0.4)
    axes = fig.subplots(len(rows), 1, sharex=True, squeeze=False)[:, 0]
    for ax, p in zip(axes, rows, strict=True):
        b, d = p.base, p.dynamic
        x = b.dates
        loss = 100 * np.maximum(b.realised_loss, 0.0) / b.notional
        ax.vlines(x, 0, loss, color="#b0b0b0", lw=0.5, label="realised 1-day loss")
        ax.plot(x, 100 * b.margin / b.notional, lw=0.9, color=_COLOURS[p.model],
                label="model margin")
        ax.plot(x, 100 * d.margin / d.notional, lw=0.9, color="black", alpha=0.75,
                label="with controller")
        for r, mk, col, size in ((b, "o", "#d62728", 16), (d, "x", "black", 22)):
            e = r.exceedance
            ax.scatter(x[e], 100 * r.realised_loss[e] / r.notional[e], s=size, marker=mk,
                       color=col, zorder=3, linewidths=1.0)
        top = float(np.nanpercentile(np.concatenate([loss, 100 * d.margin / d.notional,
                                                     100 * b.margin / b.notional]), 99.8))
        ax.set_ylim(0, max(top * 1.15, 1.0))
        ax.set_ylabel("% of notional")
        ax.set_title(f"{p.model}: {_n(int(b.exceedance.sum()), 'exceedance')} without the "
                     f"controller (red dots), {int(d.exceedance.sum())} with it (crosses)",
                     fontsize=9, loc="left")
        ax.grid(alpha=0.3)
    axes[0].legend(loc="upper right", fontsize=8, ncol=3)
    fig.suptitle("Long 1 BTC, 1-day horizon: margin and realised loss as a share of notional "
                 "(the −39.5% of 2020-03-12 is cut off)", fontsize=10)
    return _save(fig, out / "btc-margin-vs-loss.png")


def figure_scatter(records: Sequence[dict[str, Any]], models: Sequence[str], out: Path) -> str:
    """Exceedance rate against average margin, every run."""
    from matplotlib.ticker import FixedLocator, FormatStrFormatter, NullFormatter

    horizons = sorted({r["horizon"] for r in records})
    fig = _fig(11.0, 4.8)
    axes = fig.subplots(1, len(horizons), squeeze=False)[0]
    for ax, h in zip(axes, horizons, strict=True):
        runs = [r for r in records if r["horizon"] == h and r["mean_margin_share"] is not None]
        for base in (r for r in runs if not r["controller"]):
            dyn = next(r for r in runs if r["controller"] and r["book"] == base["book"]
                       and r["model"] == base["model"])
            pts = [(100 * x["mean_margin_share"],
                    100 * max(1.0 - x["coverage"], 0.5 / x["days"])) for x in (base, dyn)]
            ax.annotate("", xy=pts[1], xytext=pts[0], arrowprops={
                "arrowstyle": "->", "color": _COLOURS[base["model"]], "lw": 0.8, "alpha": 0.6})
            for (px, py), filled in zip(pts, (True, False), strict=True):
                ax.scatter(px, py, marker=_MARKERS[base["book"]], s=36,
                           facecolors=_COLOURS[base["model"]] if filled else "none",
                           edgecolors=_COLOURS[base["model"]], linewidths=1.1, zorder=3)
        ax.axhline(100 * (1 - CONFIDENCE), color="black", ls="--", lw=0.8)
        ax.set_yscale("log")
        ax.set_xscale("log")
        for axis, ticks in ((ax.xaxis, (0.5, 1, 2, 5, 10, 20, 50)),
                            (ax.yaxis, (0.1, 0.2, 0.5, 1, 2, 5, 10, 20, 50))):
            axis.set_major_locator(FixedLocator(ticks))
            axis.set_major_formatter(FormatStrFormatter("%g"))
            axis.set_minor_formatter(NullFormatter())
        ax.set_xlabel("average margin, % of notional (log)")
        ax.set_ylabel("exceedance rate = 1 − coverage, % (log)")
        ax.set_title(f"{h}-day horizon (dashed: the 1% target)", fontsize=10)
        ax.grid(alpha=0.3, which="both")
    from matplotlib.lines import Line2D

    handles = [Line2D([], [], color=_COLOURS[m], marker="o", ls="", label=m) for m in models]
    handles += [Line2D([], [], color="grey", marker=_MARKERS[b], ls="", label=BOOK_TITLES[b])
                for b in _MARKERS if any(r["book"] == b for r in records)]
    handles += [Line2D([], [], color="grey", marker="o", ls="", label="without controller"),
                Line2D([], [], color="grey", marker="o", mfc="none", ls="",
                       label="with controller (arrow)")]
    fig.legend(handles=handles, loc="outside right center", fontsize=8)
    fig.suptitle("Coverage against capital: every book × model (0 exceedances drawn at half a "
                 "day)", fontsize=10)
    return _save(fig, out / "coverage-vs-margin.png")


def figure_procyclicality(records: Sequence[dict[str, Any]], models: Sequence[str],
                          out: Path) -> str:
    """Peak-to-trough and largest 5-day increase of margin / notional, without and with."""
    books = [b for b in _MARKERS if any(r["book"] == b for r in records)]
    fig = _fig(11.0, 6.2)
    axes = fig.subplots(2, len(books), squeeze=False)
    for j, book in enumerate(books):
        for i, (key, title) in enumerate((("peak_to_trough", "peak-to-trough"),
                                          ("max_5d_increase", "largest 5-day rise"))):
            ax = axes[i, j]
            top = 0.0
            for k, m in enumerate(models):
                for off, dyn in ((-0.2, False), (0.2, True)):
                    rec = next((r for r in records if r["book"] == book and r["model"] == m
                                and r["horizon"] == 1 and r["controller"] is dyn), None)
                    v = None if rec is None else rec[key]
                    if v is None:
                        continue
                    v = v if key == "peak_to_trough" else 1.0 + v
                    top = max(top, v)
                    ax.bar(k + off, v, width=0.4, color=_COLOURS[m],
                           alpha=0.4 if dyn else 1.0, hatch="///" if dyn else None,
                           edgecolor=_COLOURS[m], lw=0.6)
                    ax.text(k + off, v, f"{v:.1f}", ha="center", va="bottom", fontsize=6.5)
            ax.set_ylim(0, max(top, 1.0) * 1.15)
            ax.axhline(1.0, color="black", lw=0.6)
            ax.set_xticks(range(len(models)), [_SHORT[m] for m in models], fontsize=7.5)
            ax.tick_params(axis="y", labelsize=8)
            ax.set_title(f"{_SHORT_BOOK[book]}: {title} (×)", fontsize=9)
            ax.grid(axis="y", alpha=0.3)
    from matplotlib.patches import Patch

    handles = [Patch(facecolor=_COLOURS[m], label=f"{_SHORT[m]} = {m}") for m in models]
    handles += [Patch(facecolor="grey", label="without controller"),
                Patch(facecolor="grey", alpha=0.4, hatch="///", label="with controller")]
    fig.legend(handles=handles, loc="outside lower center", ncol=4, fontsize=8)
    fig.suptitle("Procyclicality of margin / notional at a 1-day horizon (ratios; 1 = flat; no "
                 "bar: the model cannot margin the book)", fontsize=10)
    return _save(fig, out / "procyclicality.png")


# ---------------------------------------------------------------------------------------------
# the page
# ---------------------------------------------------------------------------------------------


def fmt_pct(x: float | None, digits: int = 2) -> str:
    return "—" if x is None else f"{100 * x:.{digits}f}%"


def fmt_inc(x: float | None) -> str:
    return "—" if x is None else f"{100 * x:+.1f}%"


def fmt_ratio(x: float | None) -> str:
    return "—" if x is None else f"{x:.2f}"


def fmt_p(x: float | None) -> str:
    if x is None:
        return "—"
    return "< 0.001" if x < 0.001 else f"{x:.3f}"


TABLE_HEAD = ("| model | controller | days | exceed. | coverage | Kupiec p | last 250 d | "
              "avg margin / notional | peak-to-trough | largest 1-d rise | largest 5-d rise | "
              "largest 30-d rise | verdict |\n|---|---|---|---|---|---|---|---|---|---|---|---|"
              "---|")


def table_row(r: dict[str, Any]) -> str:
    """One page row; every cell is a formatted field of the record."""
    cells = [r["model"], "dynamic" if r["controller"] else "—", str(r["days"]),
             str(r["exceedances"]), fmt_pct(r["coverage"]), fmt_p(r["kupiec_p"]),
             f"{r['zone_last_250']} ({r['exceptions_last_250']})",
             fmt_pct(r["mean_margin_share"]), fmt_ratio(r["peak_to_trough"]),
             fmt_inc(r["max_1d_increase"]), fmt_inc(r["max_5d_increase"]),
             fmt_inc(r["max_30d_increase"]), r["verdict"]]
    return "| " + " | ".join(cells) + " |"


def _runs(records: Sequence[dict[str, Any]], **match: Any) -> list[dict[str, Any]]:
    return [r for r in records if all(r[k] == v for k, v in match.items())]


def _pairs(records: Sequence[dict[str, Any]]) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    out = []
    for b in (r for r in records if not r["controller"]):
        d = _runs(records, book=b["book"], model=b["model"], horizon=b["horizon"],
                  controller=True)
        if d:
            out.append((b, d[0]))
    return out


def _lower(a: float | None, b: float | None) -> bool:
    return a is not None and b is not None and b < a - 1e-12


def _who(runs: Sequence[dict[str, Any]]) -> str:
    if not runs:
        return "none"
    return "; ".join(
        f"{r['model']} ({fmt_pct(r['coverage'])}, {fmt_pct(r['mean_margin_share'])} of "
        f"notional, peak-to-trough {fmt_ratio(r['peak_to_trough'])}, 5-day rise "
        f"{fmt_inc(r['max_5d_increase'])})" for r in runs)


def in_short(records: Sequence[dict[str, Any]], horizons: Sequence[int]) -> list[str]:
    """One line per model: coverage verdicts, capital, procyclicality, the controller."""
    lines = ["### In short", ""]
    for m in dict.fromkeys(r["model"] for r in records):
        met = []
        for h in horizons:
            runs = _runs(records, model=m, horizon=h, controller=False)
            ok = [r for r in runs if r["verdict"] != "fail"]
            met.append(f"{len(ok)} of {len(runs)} books at {h} d")
        one = _runs(records, model=m, horizon=min(horizons), controller=False)
        shares = [r["mean_margin_share"] for r in one if r["mean_margin_share"] is not None]
        p2ts = [r["peak_to_trough"] for r in one if r["peak_to_trough"] is not None]
        pairs = [p for p in _pairs(records) if p[0]["model"] == m]
        lower = sum(_lower(b["peak_to_trough"], d["peak_to_trough"]) for b, d in pairs)
        lower5 = sum(_lower(b["max_5d_increase"], d["max_5d_increase"]) for b, d in pairs)
        kept = sum(d["coverage"] >= b["coverage"] - 1e-12 for b, d in pairs)
        caps = [d["mean_margin_share"] / b["mean_margin_share"] for b, d in pairs
                if b["mean_margin_share"]]
        line = (f"- **{m}** is consistent with 99% coverage or better (Kupiec pass or "
                f"conservative) on {', '.join(met)}."
                + (f" At {min(horizons)} day it charges {fmt_pct(min(shares))}–"
                   f"{fmt_pct(max(shares))} of notional, peak-to-trough {fmt_ratio(min(p2ts))}"
                   f"–{fmt_ratio(max(p2ts))}." if shares and p2ts else ""))
        if pairs:
            line += (f" With the controller: peak-to-trough lower in {lower} of {len(pairs)} "
                     f"runs, largest 5-day rise lower in {lower5}, coverage not lower in "
                     f"{kept}, capital ×{min(caps):.2f}–×{max(caps):.2f}.")
        lines.append(line)
    return [*lines, ""]


def findings(records: Sequence[dict[str, Any]], books: Sequence[str],
             horizons: Sequence[int]) -> list[str]:
    """The page's conclusions, every one computed from the records."""
    lines = [*in_short(records, horizons), "### Which models pass coverage at 99%", "",
             "*Pass*: Kupiec's POF test does not reject a 1% exceedance rate at the 5% level. "
             "*Conservative*: it rejects because there are significantly *fewer* exceedances "
             "than 1% (coverage is met, at a capital cost). *Fail*: significantly more.", ""]
    for h in horizons:
        lines.append(f"**{h}-day horizon, without the controller:**")
        lines.append("")
        for book in books:
            runs = _runs(records, book=book, horizon=h, controller=False)
            if not runs:
                continue
            ok = [r for r in runs if r["verdict"] == "pass"]
            cons = [r for r in runs if r["verdict"] == "conservative"]
            bad = [r for r in runs if r["verdict"] == "fail"]
            lines.append(f"- {BOOK_TITLES[book]}: pass — {_who(ok)}. Conservative — "
                         f"{_who(cons)}. Fail — "
                         + ("none" if not bad else ", ".join(
                             f"{r['model']} ({fmt_pct(r['coverage'])})" for r in bad)) + ".")
        lines.append("")
    for h in horizons:
        good = []
        for m in dict.fromkeys(r["model"] for r in records):
            runs = _runs(records, model=m, horizon=h, controller=False)
            if runs and all(r["verdict"] != "fail" for r in runs):
                good.append(m)
        lines.append(f"At {h} day{'s' if h > 1 else ''}, the models whose exceedance rate is "
                     "consistent with 1% or below it (pass or conservative) on every book "
                     f"they can margin: {', '.join(good) if good else 'none'}.")
    lines += ["", "### Does the controller lower procyclicality while keeping coverage?", ""]
    pairs = _pairs(records)
    n = len(pairs)
    p2t = [p for p in pairs if _lower(p[0]["peak_to_trough"], p[1]["peak_to_trough"])]
    d5 = [p for p in pairs if _lower(p[0]["max_5d_increase"], p[1]["max_5d_increase"])]
    either = [p for p in pairs if p in p2t or p in d5]
    kept = [p for p in pairs if p[1]["coverage"] >= p[0]["coverage"] - 1e-12]
    still = [p for p in pairs if p[1]["verdict"] != "fail" or p[0]["verdict"] == "fail"]
    both = [p for p in either if p in kept]
    cap = sorted(p[1]["mean_margin_share"] / p[0]["mean_margin_share"] for p in pairs
                 if p[0]["mean_margin_share"])
    fair = [p for p in pairs if p[1].get("equal_capital_exceedances") is not None]
    beats = [p for p in fair if p[1]["exceedances"] <= p[1]["equal_capital_exceedances"]]
    strictly = [p for p in fair if p[1]["exceedances"] < p[1]["equal_capital_exceedances"]]
    lines += [
        f"Over the {n} book × model × horizon runs:",
        "",
        f"- it lowers the peak-to-trough ratio of margin / notional in {len(p2t)} and the "
        f"largest 5-day increase in {len(d5)}; at least one of the two in {len(either)};",
        f"- coverage is not lower with the controller in {len(kept)} of {n} "
        f"(and no passing or conservative model becomes a failing one in {len(still)} of {n});",
        f"- both at once (less procyclical on one measure, coverage kept): {len(both)} of {n};",
        f"- capital: average margin / notional is ×{cap[len(cap) // 2]:.2f} (median) of the "
        f"model's, from ×{cap[0]:.2f} to ×{cap[-1]:.2f}." if cap else "- capital: —",
        f"- at equal capital — the model's own margin × that ratio, which keeps the model's "
        f"procyclicality — the controller has fewer exceedances in {len(strictly)} of "
        f"{len(fair)} runs, as many in {len(beats) - len(strictly)} and more in "
        f"{len(fair) - len(beats)}. A plain multiplier keeps the model's procyclicality, "
        "so at equal capital what the controller adds is its lower peak-to-trough or 5-day "
        "rise where it has one, and its coverage where it has fewer exceedances.",
        ""]
    binding = sorted(d["floor_binding_days"] / d["days"] for _, d in pairs
                     if d.get("floor_days"))
    if binding:
        lines += [f"The APC floor binds (the charged margin is the floor) on a median "
                  f"{fmt_pct(binding[len(binding) // 2], 0)} of days in the risk-based runs "
                  f"(from {fmt_pct(binding[0], 0)} to {fmt_pct(binding[-1], 0)}): it is the "
                  "main source of both the extra capital and the lower peak-to-trough.", ""]
    worse = [p for p in pairs if p not in either]
    flat = [p for p in worse if p[0]["peak_to_trough"] is not None
            and p[0]["peak_to_trough"] < 1.005]
    if flat:
        lines.append("Without the controller, margin / notional is flat (peak-to-trough 1.00: "
                     "fixed rates on a linear position) for " + "; ".join(
                         f"{BOOK_TITLES[b['book']].lower()} × {b['model']} at {b['horizon']} d"
                         for b, _ in flat) + ". There the controller can only add its own "
                     "steps (the buffer released and rebuilt): peak-to-trough " + ", ".join(
                         sorted({fmt_ratio(d["peak_to_trough"]) for _, d in flat})) + ".")
        lines.append("")
    worse = [p for p in worse if p not in flat]
    if worse:
        lines.append("Other runs where it lowers neither: " + "; ".join(
            f"{BOOK_TITLES[b['book']].lower()} × {b['model']} at {b['horizon']} d "
            f"(peak-to-trough {fmt_ratio(b['peak_to_trough'])} → "
            f"{fmt_ratio(d['peak_to_trough'])}, 5-day {fmt_inc(b['max_5d_increase'])} → "
            f"{fmt_inc(d['max_5d_increase'])}"
            + (", no change of the multiplier: a constant ×1.25" if not d["controller_changes"]
               and not d.get("floor_days") else "") + ")" for b, d in worse) + ".")
        lines.append("")
    lost = [p for p in pairs if p not in kept]
    if lost:
        lines.append("Runs where coverage falls with the controller: " + "; ".join(
            f"{BOOK_TITLES[b['book']].lower()} × {b['model']} at {b['horizon']} d "
            f"({fmt_pct(b['coverage'])} → {fmt_pct(d['coverage'])})" for b, d in lost) + ".")
        lines.append("")
    lines += ["The controller's effect, without → with it (same days; the last column: the "
              "model's own margin scaled to the controller's average margin, and its "
              "exceedances):", "",
              "| book | model | h | exceed. | coverage | avg margin / notional | "
              "peak-to-trough | largest 5-d rise | verdict | changes | floor binds (days) | "
              "model × k: exceed. |",
              "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for b, d in pairs:
        lines.append(
            f"| {BOOK_TITLES[b['book']]} | {b['model']} | {b['horizon']} | "
            f"{b['exceedances']} → {d['exceedances']} | {fmt_pct(b['coverage'])} → "
            f"{fmt_pct(d['coverage'])} | {fmt_pct(b['mean_margin_share'])} → "
            f"{fmt_pct(d['mean_margin_share'])} | {fmt_ratio(b['peak_to_trough'])} → "
            f"{fmt_ratio(d['peak_to_trough'])} | {fmt_inc(b['max_5d_increase'])} → "
            f"{fmt_inc(d['max_5d_increase'])} | {b['verdict']} → {d['verdict']} | "
            f"{d['controller_changes']} | "
            f"{d['floor_binding_days'] if d['floor_days'] else '—'} | " + (
                "—" if d.get("equal_capital_factor") is None else
                f"×{d['equal_capital_factor']:.2f}: {d['equal_capital_exceedances']}") + " |")
    return lines


def render_page(doc: dict[str, Any], figures: dict[str, str | None], rel: str) -> str:
    """The markdown page: method, findings, result tables, figures (all from ``doc``)."""
    recs = doc["runs"]
    books = [b for b in BOOK_TITLES if any(r["book"] == b for r in recs)]
    horizons = sorted({r["horizon"] for r in recs})
    s = doc["settings"]
    info = doc["books"]
    cmd = "python -m studies.real_data_study" + (" --quick" if s["quick"] else "")
    head = [
        "# The real-data study: five margin models, with and without the dynamic controller",
        "",
        "<!-- Generated by studies/real_data_study.py from results.json; do not edit by hand. "
        "-->",
        "",
        f"Regenerate everything on this page (tables, figures, `{rel}/results.json`) from the "
        f"repository root, with `../shared/data/real` present: `{cmd}` "
        f"({_duration(doc['seconds'])} on the 2-core development machine). The same code on "
        "short windows, writing under `out/` (what the test suite runs):",
        "",
        "```bash\npython -m studies.real_data_study --quick --out out/study-quick\n```",
        "",
        *(["**This is a quick run** (short windows, for the test): its numbers are not the "
           "study's.", ""] if s["quick"] else []),
        "## What is backtested",
        "",
        "Each day `t`, each model sets the margin of the book from data up to `t` only; the "
        "realised loss is the full revaluation of the same positions at `t + h`; an "
        "exceedance is a loss above the margin ([backtesting.md](backtesting.md)). Every "
        "account has `credit_rating: \"AAA\"`, so the risk-based models charge market risk "
        "only (no credit add-on); there are no order books or open interest, so no "
        "liquidity or concentration add-on either. Funding, fees and interest are not in "
        "the losses. For one book and model, `margin-engine backtest ... --dynamic` runs the "
        "same pair (without and with the controller) from the command line.",
        "",
        "| book | positions | margin days | regime signal of the controller |",
        "|---|---|---|---|",
    ]
    desc = {
        "btc": "1 `BTCUSDT` (linear perpetual at the Binance daily spot close)",
        "eth": "1 `ETHUSDT` (as for BTC)",
        "multi": f"{MULTI_NOTIONAL_USD:,.0f} USD of each coin's `…USDT` perpetual, re-sized "
                 "at every daily close (equal USD notional at the start of each day); a coin "
                 f"joins after {MIN_HISTORY_DAYS} daily closes",
        "options": "short 1 call + 1 put (1 BTC each), the listed strike nearest the forward "
                   f"on the expiry nearest {TARGET_TENOR_DAYS:.0f} days, rolled when ≤ "
                   f"{ROLL_DAYS:.0f} days remain; plus `BTC-PERPETUAL` (inverse, 10 USD per "
                   "contract) re-set each day to offset the straddle's Black-76 USD delta; "
                   "10 BTC collateral",
    }
    for b in books:
        bi = info[b]
        head.append(f"| {BOOK_TITLES[b]} | {desc[b]} | {bi['first_day']} … {bi['last_day']} | "
                    f"{bi['signals']} |")
    joins = info.get("multi", {}).get("joins")
    rolls = info.get("options", {}).get("rolls")
    head += [""]
    if joins:
        head.append("Multi-coin book, the day each coin joins: " + ", ".join(
            f"{u} {d}" for u, d in sorted(joins.items(), key=lambda x: x[1])) + ".")
        head.append("")
    if rolls:
        head.append(
            f"Option book: {len(rolls)} straddles over the chain period (first "
            f"{rolls[0]['expiry']} {rolls[0]['strike']:,.0f} on {rolls[0]['day']}, last "
            f"{rolls[-1]['expiry']} {rolls[-1]['strike']:,.0f} on {rolls[-1]['day']}). "
            "Each day's book is backtested on that day's chain snapshot (about 09:30 UTC) "
            "and revalued on the snapshot `h` days later, with each option's own mark IV "
            "and forward. The risk-based models' history is the Binance BTC daily close up "
            f"to {info['options']['history_until']}, then the chain's daily index (the "
            "Binance file ends there; the chain runs to 2026-08-22).")
        head.append("")
    head += [
        "**Models** (the configuration of issue 5, passed explicitly since the registered "
        "defaults became the CCP set of issue 11 — `apc=none`, `filtered-es` and "
        "`monte-carlo-es` with λ 0.94, t marginals for the latter; the CCP defaults are "
        "backtested in the last section; `horizon_days` = the backtest horizon): "
        "`deribit-standard` and `deribit-pm` (Deribit's standard and portfolio margin, fixed "
        "rates and a fixed scenario grid), `historical-var` (VaR 99%, 365-day look-back), "
        "`filtered-es` (ES 97.5%, EWMA λ 0.94, 1,000 days), `monte-carlo-es` (ES 97.5%, "
        f"Student-t(4) copula, {_paths(s['mc_paths'])}, seed 7). The two Deribit models have no "
        "parameters for BNB, XRP, ADA, DOGE, TRX or BCH, so they are not run on the "
        "multi-coin book.",
        "",
        "**The controller** ([dynamic-margin.md](dynamic-margin.md)) is `DynamicConfig()` as "
        "it ships: the model's margin × a multiplier of 1.25 in calm markets (the EMIR "
        "Art. 28(a) buffer), released to 1.0 when the vol ratio reaches 1.5 (back at 1.1), "
        "× 1.10 when the 7-day mean funding is 0.05% per 8 h or more, at most one change "
        "every 5 days, ±25% per change, a day's notice for increases; then "
        "`max(·, APC floor)`. The floor is the model's measure on a "
        f"{FLOOR_LOOKBACK_DAYS:,}-day unfiltered historical look-back (`floor_model_factory`; "
        "EMIR Art. 28(c)) for the three risk-based models. The Deribit models have no "
        "look-back, so they get no floor (the `floor=\"volatility\"` alternative is right "
        "only for FHS-type models and is not used).",
        "",
        "**The columns.** Coverage is 1 − exceedances / days; Kupiec p is the two-sided "
        "proportion-of-failures test against 1%; the last-250-day Basel zone and its "
        "exception count; average margin / notional; and procyclicality, all computed on "
        "**margin / notional** (for one coin held through a 30× price rise the raw margin "
        "mostly measures the price): peak-to-trough ratio and the largest 1-, 5- and 30-day "
        "increase. At 2 days, consecutive losses overlap, so the Kupiec test is "
        "approximate (`results.json` also holds it on non-overlapping days). All figures "
        "are in-sample: nothing was tuned on this history.",
        "",
        "## Findings",
        "",
    ]
    body = findings(recs, books, horizons)
    tables = ["", "## Results", ""]
    for b in books:
        for h in horizons:
            runs = _runs(recs, book=b, horizon=h)
            if not runs:
                continue
            r0 = runs[0]
            tables += [f"### {BOOK_TITLES[b]}, {h}-day horizon", "",
                       f"<!-- table {b} {h} -->",
                       f"{r0['first_day']} … {r0['last_day']}; margin in "
                       f"{', '.join(sorted({r['currency'] for r in runs}))}.", "",
                       TABLE_HEAD]
            tables += [table_row(r) for r in runs]
            tables.append("")
    for nr in doc["not_run"]:
        tables.append(f"Not run: {BOOK_TITLES[nr['book']]} × {nr['model']} at "
                      f"{nr['horizon']} d — {nr['reason']}")
    if doc["not_run"]:
        tables.append("")
    figs = ["## Figures", ""]
    captions = {
        "btc": "Long 1 BTC at 1 day: each model's margin with and without the controller, "
               "and the realised losses.",
        "scatter": "Exceedance rate against average margin for every run; filled: without "
                   "the controller, hollow: with it.",
        "procyclicality": "Peak-to-trough and largest 5-day increase of margin / notional "
                          "at 1 day, without (solid) and with (hatched) the controller.",
    }
    for key, cap in captions.items():
        name = figures.get(key)
        if name:
            figs += [f"![{cap}]({rel}/{name})", "", f"*{cap}*", ""]
    opt = _runs(recs, book="options", horizon=min(horizons), controller=False)
    tail = ["## Limits", "",
            "- In-sample and one path of history: the crash days (2020-03-12, 2021-05-19, "
            "2022-05/11, 2025-10-10, 2026-02-05) dominate every exceedance count.",
            *([f"- The option book covers {opt[0]['days']} days with "
               f"{opt[0]['expected']:.1f} expected exceedances at 99%: its coverage tests "
               "have little power."] if opt else []),
            "- The controller's regime signal is one price per book (the coin, or the "
            "equal-weight index); DVOL exists only for BTC and ETH from 2021-03, funding "
            "only for BTCUSDT until 2026-02-12, and there is no order-book depth history.",
            "- Deribit's rates are not designed to cover a 1-day 99% move of a spot "
            "position; they are in the study because the issue asks for them.",
            ""]
    return "\n".join([*head, *body, *tables, *figs, *tail])


# ---------------------------------------------------------------------------------------------
# the study
# ---------------------------------------------------------------------------------------------


def _progress(done: int, total: int, text: str, started: float) -> None:
    el = time.perf_counter() - started
    eta = el / done * (total - done) if done else 0.0
    print(f"[{done:>2}/{total}] {text}  (elapsed {el / 60:4.1f} min, about {eta / 60:4.1f} min "
          "left)", file=sys.stderr, flush=True)


def run_study(data_dir: Path, out: Path, page: Path, settings: StudySettings) -> dict[str, Any]:
    """Run every book × model × horizon, write ``out/results.json``, the PNGs and the page;
    return the results document."""
    started = time.perf_counter()
    print(f"loading {data_dir} …", file=sys.stderr, flush=True)
    data = load_data(data_dir)
    specs = [single_coin_book(data, "BTC", settings.spot_window),
             single_coin_book(data, "ETH", settings.spot_window),
             multi_coin_book(data, settings.spot_window),
             option_book(data, settings.option_window)]
    config = DynamicConfig()
    jobs = [(s, m, h) for s in specs for m in settings.models for h in settings.horizons]
    pairs: list[Pair] = []
    not_run: list[dict[str, Any]] = []
    for n, (spec, model, h) in enumerate(jobs, 1):
        what = f"{spec.key:<7} {model:<16} h={h}"
        try:
            p = run_pair(spec, model, h, settings, config)
        except NotApplicableError as exc:
            not_run.append({"book": spec.key, "model": model, "horizon": h,
                            "reason": str(exc)})
            _progress(n, len(jobs), f"{what}  not applicable: {exc}", started)
            continue
        pairs.append(p)
        _progress(n, len(jobs), f"{what}  {p.base.n_days} days, exceedances "
                  f"{p.base.statistics.coverage.n_exceptions} → "
                  f"{p.dynamic.statistics.coverage.n_exceptions}, {p.seconds:.1f} s", started)
    records = [record(p, dyn) for p in pairs for dyn in (False, True)]
    books_info: dict[str, Any] = {}
    for spec in specs:
        runs = [r for r in records if r["book"] == spec.key]
        books_info[spec.key] = {
            "title": BOOK_TITLES[spec.key], "signals": spec.signals,
            "regime_underlying": spec.regime_underlying,
            "first_day": min((r["first_day"] for r in runs), default=None),
            "last_day": max((r["last_day"] for r in runs), default=None), **spec.notes}
    out.mkdir(parents=True, exist_ok=True)
    figures = {"btc": figure_btc(pairs, out),
               "scatter": figure_scatter(records, settings.models, out),
               "procyclicality": figure_procyclicality(records, settings.models, out)}
    doc: dict[str, Any] = {
        "generated_by": "studies/real_data_study.py",
        "settings": {"quick": settings.quick, "mc_paths": settings.mc_paths,
                     "models": list(settings.models), "horizons": list(settings.horizons),
                     "confidence": CONFIDENCE, "spot_window": settings.spot_window,
                     "option_window": settings.option_window,
                     "controller": config.model_dump(mode="json"),
                     "floor_lookback_days": FLOOR_LOOKBACK_DAYS,
                     "min_history_days": MIN_HISTORY_DAYS},
        "data": data.files, "books": books_info, "runs": records, "not_run": not_run,
        "figures": {k: v for k, v in figures.items() if v},
        "seconds": round(time.perf_counter() - started, 1)}
    (out / "results.json").write_text(json.dumps(doc, indent=1, allow_nan=False) + "\n",
                                      encoding="utf-8")
    rel = Path(_relpath(out, page.parent)).as_posix()
    page.parent.mkdir(parents=True, exist_ok=True)
    old = page.read_text(encoding="utf-8") if page.is_file() else ""
    page.write_text(keep_other_studies(old, render_page(doc, figures, rel)), encoding="utf-8")
    print(f"wrote {out / 'results.json'}, {len(doc['figures'])} figures and {page} in "
          f"{doc['seconds'] / 60:.1f} min", file=sys.stderr, flush=True)
    return doc


_OTHER_STUDY = re.compile(r"^<!-- BEGIN generated by studies/(?!real_data_study)(\w+)\.py.*?"
                          r"^<!-- END generated by studies/\1\.py[^\n]*\n", re.S | re.M)


def keep_other_studies(old: str, new: str) -> str:
    """``new`` with the sections other studies generated into the old page (e.g.
    studies/option_books.py) put back before ``## Limits`` (or at the end)."""
    blocks = [m.group(0) for m in _OTHER_STUDY.finditer(old)]
    if not blocks:
        return new
    extra = "\n".join(blocks) + "\n"
    at = new.find("\n## Limits")
    return new.rstrip("\n") + "\n\n" + extra if at < 0 else new[:at + 1] + extra + new[at + 1:]


def _paths(n: int) -> str:
    if n == 10_000:
        return "10,000 paths (its default)"
    return f"**{n:,} paths** instead of the default 10,000, to keep the run short"


def _duration(seconds: float) -> str:
    if seconds < 90:
        return f"about {seconds:.0f} s"
    return f"about {seconds / 60:.0f} minutes"


def _relpath(target: Path, start: Path) -> str:
    import os

    return os.path.relpath(target.resolve(), start.resolve())


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m studies.real_data_study",
                                 description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true",
                    help="short windows around 2020-03-12 and 2026-02-05, 500 MC paths")
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT,
                    help="folder for results.json and the PNGs (default docs/study)")
    ap.add_argument("--page", type=Path, default=None,
                    help="the markdown page (default: OUT/../real-data-study.md)")
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA,
                    help="the real-data folder (default ../shared/data/real)")
    args = ap.parse_args(argv)
    if not args.data.is_dir():
        print(f"error: --data: {args.data} is not a folder", file=sys.stderr)
        return 2
    settings = StudySettings.quick_run() if args.quick else StudySettings()
    page = args.page or args.out.parent / "real-data-study.md"
    run_study(args.data, args.out, page, settings)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
