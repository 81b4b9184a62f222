"""Backtesting a margin model on history: margin set from data up to each day, realised loss
over the next ``horizon_days``, exceedances and the statistics of ccp-standards §3.4 and §4.

For each day ``t`` of the window (see :mod:`margin_engine.analysis.market_builders` for how the
snapshot of ``t`` is built and when it stands):

1. ``market_t`` = the builder's snapshot of ``t`` listing the book's instruments;
2. ``margin_t`` = the model's initial (or maintenance) margin of the account on ``market_t``,
   in the account's margin currency (``AccountReport.currency``), optionally moved by a
   :class:`MarginController`;
3. ``loss_t`` = −(value of the same positions at ``t + h`` − value at ``t``), a full
   revaluation: linear contracts ``size·cs·(P_{t+h} − P_t)`` in the settlement currency;
   inverse ``size·cs·(1/P_t − 1/P_{t+h})`` coin; options by Black-76 at each day's forward,
   implied vol and time to expiry (an option or future that expired in between settles at the
   index of ``t + h``). Each position's P&L is converted to the margin currency at the prices of
   ``t + h``. Funding, fees and interest are not included;
4. exceedance ``loss_t > margin_t`` (strict, ``backtest_stats.exception_flags``).

Days on which the book cannot be priced at ``t`` or ``t + h`` (missing data, an option absent
from a chain, an instrument not yet listed) are skipped and listed with the reason; so are the
first days on which a history-based model has too little history (warm-up).
"""

from __future__ import annotations

import dataclasses
import math
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, fields, is_dataclass
from datetime import date, datetime
from typing import Any, Literal, Protocol, cast, runtime_checkable

import numpy as np
from numpy.typing import NDArray

from margin_engine.analysis import backtest_stats as bs
from margin_engine.analysis.market_builders import HistoryMarketBuilder, MarketBuilder, day_of
from margin_engine.domain.book import Account, Book, check_against_market
from margin_engine.domain.history import PriceSeries
from margin_engine.domain.instruments import Instrument
from margin_engine.domain.market import MarketSnapshot
from margin_engine.errors import InputError
from margin_engine.maths import risk_measures
from margin_engine.models.core.base import MarginModel
from margin_engine.models.core.registry import model_class
from margin_engine.models.core.scenario_pnl import instrument_pnl
from margin_engine.models.core.valuation import model_option_price, notional_usd
from margin_engine.models.risk_based.model import RiskBasedModel
from margin_engine.policy.assess import AccountReport, assess_account
from margin_engine.policy.dynamic import (
    DynamicConfig,
    DynamicController,
    RegimeInputs,
    RegimeSeries,
)

__all__ = [
    "FLOOR_LOOKBACK_DAYS",
    "BacktestResult",
    "BacktestStatistics",
    "DynamicInputs",
    "MarginController",
    "ModelFactory",
    "NoController",
    "SubsampleTests",
    "WorstWindow",
    "YearTrafficLight",
    "backtest_json",
    "compute_statistics",
    "contract_value",
    "floor_model_factory",
    "inputs_from_series",
    "realised_pnl",
    "registered_model_factory",
    "result_from_json",
    "run_backtest",
    "run_dynamic_pair",
    "summary_rows",
    "without_controller",
]

FloatArray = NDArray[np.float64]
ModelFactory = Callable[[PriceSeries], MarginModel]
ProgressCallback = Callable[[int, int], None]
MarginKind = Literal["initial", "maintenance"]
PROCYCLICALITY_HORIZONS = (1, 5, 30)
_DAY = np.timedelta64(1, "D")


# ---------------------------------------------------------------------------------------------
# the controller interface
# ---------------------------------------------------------------------------------------------


@runtime_checkable
class MarginController(Protocol):
    """Moves the model's margin with market conditions (the dynamic controller, issue 5).

    ``adjust`` is called once per backtest day, in date order, with the model's margin of that
    day (margin currency) and ``state_inputs``, a mapping holding only what is known at the
    snapshot of that day:

    ==================  =========================================================================
    ``date``            the backtest day (``datetime64[D]``)
    ``known_until``     the last day whose close is known at the snapshot (``date`` for
                        daily-close snapshots, ``date − 1`` for intraday chain snapshots)
    ``timestamp``       the snapshot instant (aware ``datetime``)
    ``currency``        the margin currency
    ``notional``        gross notional of the book (margin currency)
    ``model_margin``    the model's margin before adjustment (= ``margin``)
    ``prices``          underlying → latest known daily close (quote currency)
    ``returns``         underlying → latest daily log return (NaN across a gap)
    ``vol_index``       underlying → implied-vol index (DVOL, decimal) of the latest day, when
                        a vol index was given (else empty)
    ``history``         the :class:`PriceSeries` cut after the latest known close
    ``market``          the day's :class:`MarketSnapshot`
    ==================  =========================================================================

    plus whatever ``state_source(date)`` adds (funding, depth, ...). With
    ``run_backtest(controller_inputs=f)`` the controller receives ``f(mapping)`` instead (e.g.
    :func:`inputs_from_series` for a precomputed ``policy.dynamic.RegimeSeries``); where ``f``
    returns ``None`` the controller is not called and the model's margin is charged. It returns
    the margin to charge (finite, ≥ 0) and a log entry (any JSON-able object or dataclass;
    ``None`` = nothing to log), kept in :attr:`BacktestResult.controller_log`.
    """

    def adjust(self, date: np.datetime64, margin: float,
               state_inputs: Mapping[str, Any]) -> tuple[float, Any]: ...


def inputs_from_series(series: Any) -> Callable[[Mapping[str, Any]], Any]:
    """``controller_inputs`` that look each day up in a precomputed per-day series.

    ``series.at(day)`` (e.g. ``policy.dynamic.RegimeSeries``, built from the same closes) is
    read at the state's ``known_until`` day, so the inputs use closes known at the snapshot
    only; a day missing from the series gives ``None`` (no adjustment that day).
    """
    def lookup(state: Mapping[str, Any]) -> Any:
        try:
            return series.at(state["known_until"])
        except ValueError:
            return None
    return lookup


class NoController:
    """The identity controller: charges the model's margin, logs nothing."""

    name = "none"

    def adjust(self, date: np.datetime64, margin: float,
               state_inputs: Mapping[str, Any]) -> tuple[float, Any]:
        return margin, None


# ---------------------------------------------------------------------------------------------
# results
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class YearTrafficLight:
    """One calendar year's exceptions and, where the year has at least
    :data:`MIN_LIGHT_DAYS` backtested days, its Basel traffic light (``None`` below: a zone
    resting on a few days would be shown as if it were a year's verdict)."""

    year: int
    n_obs: int
    n_exceptions: int
    traffic_light: bs.TrafficLightResult | None


@dataclass(frozen=True)
class WorstWindow:
    """The headline light: the worst rolling 250-day window, with its first and last day."""

    first_day: np.datetime64
    last_day: np.datetime64
    result: bs.WorstWindowResult

    @property
    def traffic_light(self) -> bs.TrafficLightResult:
        return self.result.traffic_light


@dataclass(frozen=True)
class SubsampleTests:
    """Kupiec and Christoffersen on every ``step``-th backtested day (``step`` = the horizon):
    with an h-day horizon consecutive losses overlap by h − 1 days, which breaks the
    independence both tests assume; the subsample has no overlap."""

    step: int
    kupiec: bs.KupiecResult
    christoffersen: bs.ChristoffersenResult | None


@dataclass(frozen=True)
class BacktestStatistics:
    """Every statistic of a backtest, computed by :mod:`backtest_stats` from the series.

    ``traffic_light_worst_250`` is the headline: the rolling 250-day window with the most
    exceptions, with its dates (``None`` under 250 days). ``traffic_light_last_250`` uses the
    last ``min(250, n)`` days; BCBS plus factors where ``T = 250`` and ``p = 1%``, else the
    normal-quantile plus factor (``plus_factors="normal"``); a calendar year gets a light only
    with at least 250 days (its count of days and exceptions either way). ``z2`` only where
    the model's ES and VaR were recorded.
    ``procyclicality`` is computed on the margin as charged (ccp-standards §3.4);
    ``procyclicality_of_share`` on margin / notional, i.e. for a position whose notional is held
    constant (for one coin held through a 30× price rise the first mostly measures the price).
    They and ``margin_share`` are ``None`` where the margin or notional is not positive on every
    day. ``non_overlapping`` (horizons > 1 only) repeats Kupiec and Christoffersen on
    non-overlapping days. ``notes`` says why something is missing.
    """

    confidence: float
    coverage: bs.CoverageResult
    kupiec: bs.KupiecResult
    christoffersen: bs.ChristoffersenResult | None
    traffic_light_last_250: bs.TrafficLightResult
    traffic_light_by_year: tuple[YearTrafficLight, ...]
    z2: bs.Z2Result | None
    margin_share: bs.MarginShareResult | None
    procyclicality: bs.ProcyclicalityResult | None
    procyclicality_of_share: bs.ProcyclicalityResult | None
    max_loss: float
    mean_margin: float
    non_overlapping: SubsampleTests | None = None
    notes: tuple[str, ...] = ()
    traffic_light_worst_250: WorstWindow | None = None


@dataclass(frozen=True, eq=False)
class BacktestResult:
    """A backtest's per-day series and statistics (amounts in ``currency``).

    Series (one entry per backtested day): ``dates`` (``datetime64[D]``), ``margin`` (charged,
    after the controller), ``model_margin`` (the model's), ``realised_loss`` (positive = loss),
    ``exceedance`` (``realised_loss > margin``), ``notional`` (gross, at ``t``), ``prices``
    (underlying → index at ``t``), ``var``/``es`` (the model's VaR and ES of the market-risk
    scenario P&L at tail probability ``es_alpha``; ``None`` unless the model is an ES model).
    """

    label: str
    model: str
    model_version: str
    params_hash: str
    params: Mapping[str, Any]
    account: str
    currency: str
    horizon_days: int
    margin_kind: MarginKind
    controller: str | None
    history_source: str
    dates: NDArray[np.datetime64]
    margin: FloatArray
    model_margin: FloatArray
    realised_loss: FloatArray
    exceedance: NDArray[np.bool_]
    notional: FloatArray
    prices: Mapping[str, FloatArray]
    var: FloatArray | None
    es: FloatArray | None
    es_alpha: float | None
    controller_log: tuple[tuple[str, Any], ...]
    skipped: tuple[tuple[str, str], ...]
    statistics: BacktestStatistics

    @property
    def n_days(self) -> int:
        return int(self.dates.size)


# ---------------------------------------------------------------------------------------------
# valuation
# ---------------------------------------------------------------------------------------------


def _intrinsic(ins: Instrument, spot: float) -> float:
    assert ins.strike is not None
    usd = max(spot - ins.strike, 0.0) if ins.is_call else max(ins.strike - spot, 0.0)
    return usd / spot if ins.inverse else usd


def contract_value(ins: Instrument, market: MarketSnapshot) -> float:
    """Value of one long contract in its settlement currency, for P&L differences.

    Linear futures, perpetuals and spot ``cs·mark`` (quote currency); inverse futures and
    perpetuals ``−cs/mark`` (coin, so that differences give ``cs·(1/P_0 − 1/P_1)``); options
    ``cs·`` Black-76 at the snapshot's forward, implied vol and time to expiry (coin for inverse
    options: USD value / forward). A contract expired at the snapshot settles at the index:
    options at intrinsic value, futures at ``P = index``.
    """
    expired = ins.expiry is not None and ins.expiry <= market.timestamp
    if ins.is_option:
        if expired:
            return ins.contract_size * _intrinsic(ins, market.index[ins.underlying])
        return ins.contract_size * model_option_price(ins, market, market.forward(ins))
    px = market.index[ins.underlying] if expired else ins.mark_price
    assert px is not None
    return -ins.contract_size / px if ins.inverse else ins.contract_size * px


def realised_pnl(account: Account, market_t: MarketSnapshot, market_h: MarketSnapshot,
                 currency: str) -> float | str:
    """P&L of the account's positions from ``market_t`` to ``market_h`` in ``currency``.

    Each position is revalued at ``market_h`` (re-listed there, or settled when expired).
    Futures' settlement-currency P&L is converted at ``market_h``'s prices; options are values
    held in the settlement currency, so their P&L is ``V_h·fx_h − V_t·fx_t`` (a coin-settled
    option's coin value moves with the coin's price too). Returns the reason (a
    string) when a position cannot be valued at ``market_h``.
    """
    total = 0.0
    for pos in account.positions:
        ins = market_t.instrument(pos.symbol)
        v0 = contract_value(ins, market_t)
        if market_h.has(pos.symbol):
            v1 = contract_value(market_h.instrument(pos.symbol), market_h)
        elif (ins.expiry is not None and ins.expiry <= market_h.timestamp
              and ins.underlying in market_h.index):
            v1 = contract_value(ins, market_h)
        else:
            return f"{pos.symbol} has no price at t+h"
        if ins.is_option:  # a value held in the settlement currency: V1·fx1 − V0·fx0
            total += pos.size * (market_h.convert(v1, ins.settle, currency)
                                 - market_t.convert(v0, ins.settle, currency))
        else:  # futures: the P&L increment, realised in the settlement currency at t+h
            total += market_h.convert(pos.size * (v1 - v0), ins.settle, currency)
    return total


def _notional(account: Account, market: MarketSnapshot, currency: str) -> float:
    usd = sum(notional_usd(market.instrument(p.symbol), p.size, market)
              for p in account.positions)
    return market.convert(usd, "USD", currency)


def _var_es(model: MarginModel, account: Account, market: MarketSnapshot,
            report: AccountReport) -> tuple[float, float] | None:
    """VaR and ES of an ES risk-based model's market-risk scenario P&L (one margin unit).

    ES is the model's own ``market_risk`` component; VaR is taken at the same confidence on the
    same (cached) scenarios.
    """
    if not isinstance(model, RiskBasedModel) or model.params.measure != "es":
        return None
    if len(report.units) != 1 or report.units[0].margin.currency != report.currency:
        return None
    unit = report.units[0].margin
    pos = [account.positions[pm.index] for pm in unit.positions]
    ins = [market.instrument(q.symbol) for q in pos]
    unds = tuple(sorted({i.underlying for i in ins}))
    scen = model.scenario_set(market, unds)
    pnl = np.array([q.size for q in pos]) @ instrument_pnl(
        ins, market, scen, unit.currency, vol_tenor_power=model.params.vol_tenor_power)
    var = risk_measures.value_at_risk(pnl, model.params.confidence, scen.weights)
    return var, float(unit.components["market_risk"])


def _forget(model: MarginModel) -> None:
    """Drop a model's per-snapshot caches once a day is done (keeps memory flat)."""
    clear = getattr(model, "clear_cache", None)
    if callable(clear):
        clear()


# ---------------------------------------------------------------------------------------------
# statistics
# ---------------------------------------------------------------------------------------------


#: Fewest days a traffic light rests on (BCBS 1996: 250 business days).
MIN_LIGHT_DAYS = 250


def _traffic_light(x: int, n: int, p: float) -> bs.TrafficLightResult:
    method: Literal["bcbs", "normal"] = "bcbs" if (n == 250 and p == 0.01) else "normal"
    return bs.basel_traffic_light(x, n, p, plus_factors=method)


def compute_statistics(dates: NDArray[np.datetime64], margin: FloatArray,
                       realised_loss: FloatArray, notional: FloatArray, *, confidence: float,
                       var: FloatArray | None = None, es: FloatArray | None = None,
                       es_alpha: float | None = None,
                       horizon_days: int = 1) -> BacktestStatistics:
    """All backtest statistics from the per-day series (anyone can recompute them from JSON).

    Parameters
    ----------
    dates : datetime64[D] [T], the backtested days
    margin, realised_loss, notional : float [T], margin currency (loss positive)
    confidence : coverage target; exceedance probability ``p = 1 − confidence``
    var, es, es_alpha : the model's VaR and ES at tail probability ``es_alpha`` (for Z2)
    horizon_days : the loss horizon; > 1 adds the tests on every ``horizon_days``-th day
    """
    if not 0.5 < confidence < 1.0:
        raise ValueError(f"confidence: must lie in (0.5, 1), got {confidence!r}")
    p = round(1.0 - confidence, 12)  # 1 − 0.99 is 0.010000000000000009 in binary
    flags = bs.exception_flags(margin, realised_loss)
    n = int(flags.size)
    notes: list[str] = []
    chris = bs.christoffersen(flags, p) if n >= 2 else None
    if chris is None:
        notes.append("christoffersen: needs two days or more")
    last = flags[-250:]
    tl = _traffic_light(int(last.sum()), int(last.size), p)
    years = dates.astype("datetime64[Y]").astype(int) + 1970
    by_year = []
    for y in np.unique(years):
        ny, xy = int((years == y).sum()), int(flags[years == y].sum())
        by_year.append(YearTrafficLight(int(y), ny, xy, _traffic_light(xy, ny, p)
                                        if ny >= MIN_LIGHT_DAYS else None))
    worst_res = bs.worst_window_traffic_light(flags, p, MIN_LIGHT_DAYS, plus_factors="bcbs"
                                              if p == 0.01 else "normal")
    worst = None if worst_res is None else WorstWindow(
        dates[worst_res.first], dates[worst_res.last], worst_res)
    if worst is None:
        notes.append(f"traffic_light_worst_250: needs {MIN_LIGHT_DAYS} days or more")
    z2 = None
    if var is not None and es is not None and es_alpha is not None:
        if np.all(np.isfinite(es)) and np.all(es > 0) and np.all(np.isfinite(var)):
            z2 = bs.acerbi_szekely_z2(-np.asarray(realised_loss), var, es, es_alpha)
        else:
            notes.append("z2: the model's ES is not positive on every day")
    else:
        notes.append("z2: the model reports no expected shortfall")
    share = None
    if np.all(notional > 0):
        share = bs.average_margin_share(margin, notional)
    else:
        notes.append("margin_share: the notional is zero on some day")
    procyc = None
    horizons = tuple(h for h in PROCYCLICALITY_HORIZONS if h < n)
    if not np.all(margin > 0):
        notes.append("procyclicality: the margin is zero on some day")
    elif not horizons:
        notes.append("procyclicality: needs two days or more")
    else:
        procyc = bs.procyclicality(margin, horizons)
    sub = None
    if horizon_days > 1:
        f = flags[::horizon_days]
        sub = SubsampleTests(horizon_days, bs.kupiec_pof(f, p),
                             bs.christoffersen(f, p) if f.size >= 2 else None)
    procyc_share = None
    if procyc is not None and share is not None:
        procyc_share = bs.procyclicality(np.asarray(margin) / np.asarray(notional), horizons)
    return BacktestStatistics(
        confidence=confidence, coverage=bs.coverage(flags), kupiec=bs.kupiec_pof(flags, p),
        christoffersen=chris, traffic_light_last_250=tl, traffic_light_by_year=tuple(by_year),
        z2=z2,
        margin_share=share, procyclicality=procyc, procyclicality_of_share=procyc_share,
        max_loss=float(np.max(realised_loss)), mean_margin=float(np.mean(margin)),
        non_overlapping=sub, notes=tuple(notes), traffic_light_worst_250=worst)


# ---------------------------------------------------------------------------------------------
# the model factory
# ---------------------------------------------------------------------------------------------


def registered_model_factory(name: str, options: Mapping[str, Any] | None = None, *,
                             horizon_days: int | None = None) -> ModelFactory:
    """A factory for the registered model ``name`` with ``--param`` style ``options``.

    Models with a ``history`` parameter get the backtest's history; models with a
    ``horizon_days`` parameter get ``horizon_days`` unless ``options`` sets it. The options are
    validated now (errors name the parameter), so a bad one fails before the run.
    """
    cls = model_class(name)
    if horizon_days is not None:
        horizon_days = _horizon(horizon_days)
    opts = dict(options or {})
    fields_ = cls.Params.model_fields
    if "history" in opts:
        raise InputError("--param history", "the backtest passes its own --history")
    if horizon_days is not None and "horizon_days" in fields_ and "horizon_days" not in opts:
        opts["horizon_days"] = horizon_days
    cls.from_options(opts)

    def factory(history: PriceSeries) -> MarginModel:
        return cls.from_options({**opts, "history": history} if "history" in fields_ else opts)

    return factory


# ---------------------------------------------------------------------------------------------
# the run
# ---------------------------------------------------------------------------------------------


def _horizon(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 1:
        raise InputError("--horizon", f"must be a whole number of days ≥ 1, got {value!r}")
    return int(value)


def _account(book: Book, account: str | None) -> tuple[int, Account]:
    if account is not None:
        for i, a in enumerate(book.accounts):
            if a.id == account:
                return i, a
        raise InputError("--account", f"no account {account!r} in the book (has "
                         f"{', '.join(a.id for a in book.accounts) or 'none'})")
    if len(book.accounts) != 1:
        raise InputError("accounts", f"a backtest margins one account; the book has "
                         f"{len(book.accounts)} (choose one with --account ID)")
    return 0, book.accounts[0]


def _day(value: object, what: str) -> np.datetime64:
    try:
        return day_of(value, what)
    except ValueError as exc:
        raise InputError(what, str(exc).split(": ", 1)[1]) from None


def _known(history: PriceSeries, market: MarketSnapshot) -> int:
    """Rows of ``history`` whose close is known at the snapshot (date ≤ snapshot date − 1)."""
    until = np.datetime64(market.timestamp.date(), "D") - _DAY
    return int(np.searchsorted(history.dates, until, side="right"))


def _state(history: PriceSeries, vol_index: PriceSeries | None, market: MarketSnapshot,
           day: np.datetime64, currency: str, notional: float,
           margin: float) -> dict[str, Any]:
    k = _known(history, market)
    prices: dict[str, float] = {}
    rets: dict[str, float] = {}
    if k:
        last = history.closes[k - 1]
        prices = {s: float(v) for s, v in zip(history.symbols, last, strict=True)}
        if k >= 2 and history.dates[k - 1] - history.dates[k - 2] == _DAY:
            with np.errstate(invalid="ignore", divide="ignore"):
                r = np.log(last / history.closes[k - 2])
            rets = {s: float(v) for s, v in zip(history.symbols, r, strict=True)}
        else:
            rets = dict.fromkeys(history.symbols, math.nan)
    vols: dict[str, float] = {}
    if vol_index is not None:
        kv = _known(vol_index, market)
        if kv:
            vols = {s: float(v) for s, v in zip(vol_index.symbols, vol_index.closes[kv - 1],
                                                strict=True)}
    cut = PriceSeries(history.dates[:k], history.symbols, history.closes[:k], history.source)
    known = history.dates[k - 1] if k else np.datetime64(market.timestamp.date(), "D") - _DAY
    return {"date": day, "known_until": known, "timestamp": market.timestamp,
            "currency": currency,
            "notional": notional, "model_margin": margin, "prices": prices, "returns": rets,
            "vol_index": vols, "history": cut, "market": market}


def run_backtest(book: Book, model_factory: ModelFactory, history: PriceSeries, *,
                 horizon_days: int = 1, start: object = None, end: object = None,
                 market_builder: MarketBuilder | None = None,
                 controller: MarginController | None = None,
                 progress: ProgressCallback | None = None, account: str | None = None,
                 confidence: float = 0.99, margin: MarginKind = "initial",
                 vol_index: PriceSeries | None = None,
                 state_source: Callable[[np.datetime64], Mapping[str, Any]] | None = None,
                 controller_inputs: Callable[[Mapping[str, Any]], Any] | None = None,
                 label: str | None = None) -> BacktestResult:
    """Backtest one account of ``book`` under the model ``model_factory(history)``.

    Parameters
    ----------
    book : the book; one account (or the one named by ``account``) is backtested
    model_factory : builds the model from the history (see :func:`registered_model_factory`)
    history : daily closes; the model's history and, by default, the market's prices
    horizon_days : days between the margin and the realised loss (≥ 1)
    start, end : first and last margin day (ISO date, ``date`` or ``datetime64``; default:
        the builder's whole range)
    market_builder : builds each day's snapshot (default ``HistoryMarketBuilder(history,
        vol_index)``)
    controller : a :class:`MarginController` applied to each day's margin
    progress : called as ``progress(days_done, days_total)`` after each day
    confidence : coverage target for the tests (``p = 1 − confidence``)
    margin : ``initial`` or ``maintenance`` margin is backtested
    vol_index : implied-vol index (DVOL decimals) for option pricing and the controller
    state_source : extra controller inputs per day
    controller_inputs : maps the day's state mapping to what ``controller.adjust`` takes
        (``None`` from it: no adjustment that day)
    label : the run's name in reports (default: model name, plus the controller's)

    Raises
    ------
    InputError
        Unknown symbols (naming the position), start after end, an empty window, a model that
        cannot margin the book, no day that could be backtested.
    """
    h = _horizon(horizon_days)
    if margin not in ("initial", "maintenance"):
        raise InputError("margin", f"must be 'initial' or 'maintenance', got {margin!r}")
    if not 0.5 < confidence < 1.0:
        raise InputError("--confidence", f"must lie in (0.5, 1), got {confidence!r}")
    i_acct, acct = _account(book, account)
    builder = market_builder or HistoryMarketBuilder(history, vol_index)
    symbols = list(dict.fromkeys(p.symbol for p in acct.positions))
    bad = builder.unknown(symbols)
    if bad:
        probs = [(f"accounts[{i_acct}].positions[{j}].symbol", f"unknown symbol {p.symbol!r}: "
                  f"{bad[p.symbol]}") for j, p in enumerate(acct.positions) if p.symbol in bad]
        raise InputError(probs[0][0], probs[0][1], more=probs[1:])
    all_days = builder.days()
    if all_days.size == 0:
        raise InputError("--history", "no days with data")
    lo = _day(start, "--start") if start is not None else all_days[0]
    hi = _day(end, "--end") if end is not None else all_days[-1]
    if start is not None and end is not None and lo > hi:
        raise InputError("--start", f"{lo} is after --end {hi}")
    days = all_days[(all_days >= lo) & (all_days <= hi)]
    if days.size == 0:
        raise InputError("--start", f"no days with data between {lo} and {hi} (the data covers "
                         f"{all_days[0]} to {all_days[-1]})")
    model = model_factory(history)
    ctrl = controller
    snaps: dict[np.datetime64, MarketSnapshot | None] = {}

    def snap(d: np.datetime64) -> MarketSnapshot | None:
        if d not in snaps:
            try:
                snaps[d] = builder.snapshot(d, symbols)
            except ValueError as exc:
                raise InputError("--history", f"{d}: {exc}") from None
        return snaps[d]

    out_d: list[np.datetime64] = []
    out_m: list[float] = []
    out_mm: list[float] = []
    out_l: list[float] = []
    out_n: list[float] = []
    out_p: list[dict[str, float]] = []
    out_v: list[float] = []
    out_e: list[float] = []
    log: list[tuple[str, Any]] = []
    skipped: list[tuple[str, str]] = []
    currency: str | None = None
    checked = False
    warm = True
    for k, t in enumerate(days):
        for old in [d for d in snaps if d < t]:
            del snaps[old]
        m_t = snap(t)
        m_h = snap(t + h * _DAY)
        why = None
        if m_t is None:
            why = "no market data"
        elif (lacking := [s for s in symbols if not m_t.has(s)]):
            why = f"not listed: {', '.join(lacking)}"
        elif m_h is None:
            why = f"no market data at t+{h}"
        if why is not None:
            skipped.append((str(t), why))
        else:
            assert m_t is not None and m_h is not None
            if not checked:
                try:
                    check_against_market(Book(accounts=(acct,)), m_t)
                except InputError as exc:
                    raise _moved(exc, i_acct) from None
                checked = True
            try:
                rep = assess_account(model, acct, m_t, liquidation_prices=False)
            except InputError as exc:
                if warm and exc.path.startswith("--history"):
                    skipped.append((str(t), f"warm-up: {exc.reason}"))
                    _forget(model)
                    _tick(progress, k, days.size)
                    continue
                raise _moved(exc, i_acct, f" (backtest day {t})") from None
            warm = False
            currency = currency or rep.currency
            m_val = rep.initial_margin if margin == "initial" else rep.maintenance_margin
            m_val = m_t.convert(m_val, rep.currency, currency)
            pnl = realised_pnl(acct, m_t, m_h, currency)
            if isinstance(pnl, str):
                skipped.append((str(t), pnl))
            else:
                notional = _notional(acct, m_t, currency)
                charged = m_val
                if ctrl is not None:
                    state = _state(history, vol_index, m_t, t, currency, notional, m_val)
                    if state_source is not None:
                        state.update(state_source(t))
                    given = state if controller_inputs is None else controller_inputs(state)
                    if given is not None:
                        charged, entry = ctrl.adjust(t, m_val, given)
                        charged = float(charged)
                        if not (math.isfinite(charged) and charged >= 0.0):
                            raise ValueError(f"controller: {type(ctrl).__name__}.adjust "
                                             f"returned {charged!r} on {t} (need a finite "
                                             "margin ≥ 0)")
                        if entry is not None:
                            log.append((str(t), entry))
                ve = _var_es(model, acct, m_t, rep)
                out_d.append(t)
                out_m.append(charged)
                out_mm.append(m_val)
                out_l.append(-pnl)
                out_n.append(notional)
                out_p.append({u: m_t.index[u] for u in _underlyings(acct, m_t)})
                out_v.append(math.nan if ve is None else ve[0])
                out_e.append(math.nan if ve is None else ve[1])
        _forget(model)
        _tick(progress, k, days.size)
    if not out_d:
        reasons = Counter(r.split(":")[0] for _, r in skipped)
        summary = ", ".join(f"{n}× {r}" for r, n in reasons.most_common(3))
        raise InputError("--start", f"no day between {days[0]} and {days[-1]} could be "
                         f"backtested ({summary}; last: {skipped[-1][1]})")
    assert currency is not None
    dates = np.array(out_d, dtype="datetime64[D]")
    m_arr, l_arr, n_arr = np.array(out_m), np.array(out_l), np.array(out_n)
    has_es = bool(np.all(np.isfinite(out_e)))
    es_alpha = round(1.0 - model.params.confidence, 12) if has_es and isinstance(
        model, RiskBasedModel) else None
    var_arr = np.array(out_v) if es_alpha is not None else None
    es_arr = np.array(out_e) if es_alpha is not None else None
    stats = compute_statistics(dates, m_arr, l_arr, n_arr, confidence=confidence, var=var_arr,
                               es=es_arr, es_alpha=es_alpha, horizon_days=h)
    keys = sorted({u for p in out_p for u in p})
    prices = {u: np.array([p.get(u, math.nan) for p in out_p]) for u in keys}
    ctrl_name = None if ctrl is None else str(getattr(ctrl, "name", type(ctrl).__name__))
    params = model.params.model_dump(mode="json")
    return BacktestResult(
        label=label or (model.name if ctrl_name in (None, "none")
                        else f"{model.name} + {ctrl_name}"),
        model=model.name, model_version=model.version, params_hash=model.params.params_hash(),
        params=params, account=acct.id, currency=currency, horizon_days=h, margin_kind=margin,
        controller=ctrl_name, history_source=history.source, dates=dates, margin=m_arr,
        model_margin=np.array(out_mm), realised_loss=l_arr,
        exceedance=bs.exception_flags(m_arr, l_arr), notional=n_arr, prices=prices,
        var=var_arr, es=es_arr, es_alpha=es_alpha, controller_log=tuple(log),
        skipped=tuple(skipped), statistics=stats)


def _underlyings(account: Account, market: MarketSnapshot) -> list[str]:
    return sorted({market.instrument(p.symbol).underlying for p in account.positions})


def _tick(progress: ProgressCallback | None, k: int, total: int) -> None:
    if progress is not None:
        progress(k + 1, int(total))


def _moved(exc: InputError, i_acct: int, suffix: str = "") -> InputError:
    """The error with its problems placed under ``accounts[i]`` (CLI option paths stay)."""
    out = []
    for path, reason in exc.problems:
        if path.startswith("accounts[0]"):
            path = f"accounts[{i_acct}]" + path[len("accounts[0]"):]
        elif not path.startswith(("--", "accounts")):
            path = f"accounts[{i_acct}].{path}"
        out.append((path, reason + suffix))
    return InputError(out[0][0], out[0][1], more=out[1:])


# ---------------------------------------------------------------------------------------------
# the dynamic controller (policy.dynamic) in a backtest
# ---------------------------------------------------------------------------------------------

#: Look-back of the APC floor model, days (EMIR RTS 153/2013 Art. 28(c): ten years).
FLOOR_LOOKBACK_DAYS = 3650

_FLOOR_SKIP = ("history", "lookback_days", "apc", "apc_buffer", "apc_buffer_released",
               "apc_stressed_share")


def floor_model_factory(name: str, options: Mapping[str, Any] | None = None, *,
                        horizon_days: int | None = None,
                        lookback_days: int = FLOOR_LOOKBACK_DAYS) -> ModelFactory | None:
    """The APC floor model of the registered model ``name`` (EMIR Art. 28(c)), or ``None``.

    For a risk-based model it is ``historical-var`` with the model's own risk measure,
    confidence, horizon and add-on parameters, on an *unfiltered* look-back of
    ``lookback_days`` (all the history up to the day when it is shorter): the model's measure
    on a look-back that contains the stressed periods. Its margin is the
    ``RegimeInputs.floor_margin`` that :class:`DynamicInputs` passes to the controller.
    Rule-based venue models (``deribit-standard``, ``binance-usdm``, ...) have no look-back, so
    they get ``None``: no floor (``DynamicConfig(floor="volatility")`` would instead rescale
    their margin by ``long_run_vol / ewma_vol``, which is right only for models whose margin is
    proportional to the EWMA volatility, i.e. filtered historical simulation).

    Parameters
    ----------
    name, options : the model and its ``--param`` options, as for
        :func:`registered_model_factory`
    horizon_days : the backtest horizon (the floor model's ``horizon_days`` unless ``options``
        sets it)
    lookback_days : days of daily returns in the floor's look-back (≥ 30)
    """
    cls = model_class(name)
    if not issubclass(cls, RiskBasedModel):
        return None
    if isinstance(lookback_days, bool) or not isinstance(lookback_days, int) or \
            lookback_days < 30:
        raise ValueError(f"lookback_days: must be a whole number ≥ 30, got {lookback_days!r}")
    opts = dict(options or {})
    if horizon_days is not None and "horizon_days" not in opts:
        opts["horizon_days"] = _horizon(horizon_days)
    own = cls.from_options(opts).params.model_dump()
    hv = model_class("historical-var")
    keep = {k: v for k, v in own.items()
            if k in hv.Params.model_fields and k not in _FLOOR_SKIP}
    keep["lookback_days"] = lookback_days
    keep["apc"] = "none"
    return registered_model_factory("historical-var", keep)


class DynamicInputs:
    """``controller_inputs`` that feed :class:`policy.dynamic.DynamicController` in a backtest.

    Each day it returns the precomputed regime inputs of the regime underlying at the latest
    close known at the snapshot (``regimes[u].at(state["known_until"])``, built from data up
    to that close only, e.g. by :func:`policy.dynamic.regime_inputs_series`), with
    ``floor_margin`` replaced by the floor model's margin of the same account on the same
    day's market (converted to the margin currency) when a floor model is given. It returns
    ``None`` (the model's margin is charged unchanged) on days the series lacks.

    Parameters
    ----------
    regimes : underlying → :class:`RegimeSeries` (or one series, for ``underlying``)
    book, account : the backtested account, chosen as in :func:`run_backtest`
    floor_model : the APC floor model (see :func:`floor_model_factory`), or ``None``
    underlying : the regime underlying; by default the account's underlying with the largest
        gross USD notional on the first day the controller is called (ties: alphabetical)
    margin : ``initial`` or ``maintenance``: which margin of the floor model is the floor

    Attributes
    ----------
    underlying : the regime underlying (``None`` until chosen, or when no series fits)
    floor_days, floor_missing : days the floor was given, and days the floor model had no
        margin (its warm-up)
    floors : ISO day → the floor margin given that day (margin currency)
    """

    def __init__(self, regimes: Mapping[str, RegimeSeries] | RegimeSeries, book: Book,
                 account: str | None = None, *, floor_model: MarginModel | None = None,
                 underlying: str | None = None, margin: MarginKind = "initial") -> None:
        if isinstance(regimes, RegimeSeries):
            if underlying is None:
                raise ValueError("underlying: name the underlying of a single regime series")
            regimes = {underlying: regimes}
        if underlying is not None and underlying not in regimes:
            raise ValueError(f"underlying: no regime series for {underlying!r} (have "
                             f"{', '.join(sorted(regimes)) or 'none'})")
        if margin not in ("initial", "maintenance"):
            raise ValueError(f"margin: must be 'initial' or 'maintenance', got {margin!r}")
        self.regimes = dict(regimes)
        self.account = _account(book, account)[1]
        self.floor_model = floor_model
        self.underlying = underlying
        self.margin: MarginKind = margin
        self.floor_days = 0
        self.floor_missing = 0
        self.floors: dict[str, float] = {}
        self._chosen = underlying is not None

    def _choose(self, market: MarketSnapshot) -> str | None:
        gross: dict[str, float] = {}
        for p in self.account.positions:
            if market.has(p.symbol):
                ins = market.instrument(p.symbol)
                gross[ins.underlying] = gross.get(ins.underlying, 0.0) + abs(
                    notional_usd(ins, p.size, market))
        ranked = sorted((u for u in gross if u in self.regimes), key=lambda u: (-gross[u], u))
        return ranked[0] if ranked else None

    def __call__(self, state: Mapping[str, Any]) -> RegimeInputs | None:
        market: MarketSnapshot = state["market"]
        if not self._chosen:
            self.underlying = self._choose(market)
            self._chosen = True
        if self.underlying is None:
            return None
        try:
            inputs = self.regimes[self.underlying].at(state["known_until"])
        except ValueError:
            return None
        if inputs is None or self.floor_model is None:
            return inputs
        try:
            rep = assess_account(self.floor_model, self.account, market,
                                 liquidation_prices=False)
        except InputError as exc:
            if not exc.path.startswith("--history"):
                raise
            self.floor_missing += 1
            return inputs
        finally:
            _forget(self.floor_model)
        amount = rep.initial_margin if self.margin == "initial" else rep.maintenance_margin
        floor = market.convert(amount, rep.currency, state["currency"])
        self.floor_days += 1
        self.floors[str(state["date"])] = floor
        return dataclasses.replace(inputs, floor_margin=floor)


def without_controller(result: BacktestResult, label: str | None = None) -> BacktestResult:
    """The same backtest with the model's margin charged: what :func:`run_backtest` gives
    without a controller on the same days (the controller never changes the model's margin,
    the realised losses or the days), with every statistic recomputed.

    ``label`` defaults to the model name, the label of a run without a controller.
    """
    st = result.statistics
    stats = compute_statistics(result.dates, result.model_margin, result.realised_loss,
                               result.notional, confidence=st.confidence, var=result.var,
                               es=result.es, es_alpha=result.es_alpha,
                               horizon_days=result.horizon_days)
    return dataclasses.replace(
        result, label=label or result.model, controller=None, margin=result.model_margin,
        exceedance=bs.exception_flags(result.model_margin, result.realised_loss),
        controller_log=(), statistics=stats)


def run_dynamic_pair(book: Book, model_factory: ModelFactory, history: PriceSeries, *,
                     regimes: Mapping[str, RegimeSeries] | RegimeSeries,
                     config: DynamicConfig | None = None,
                     floor_factory: ModelFactory | None = None,
                     regime_underlying: str | None = None, label: str | None = None,
                     account: str | None = None, margin: MarginKind = "initial",
                     **kwargs: Any) -> tuple[BacktestResult, BacktestResult, DynamicInputs]:
    """Backtest a model without and with the dynamic controller on the same days.

    One :func:`run_backtest` pass with a fresh :class:`DynamicController` (``config``) fed by
    :class:`DynamicInputs` (``regimes``, the floor model ``floor_factory(history)`` when given);
    the run without the controller is :func:`without_controller` of it, which equals a
    separate run without a controller. ``kwargs`` go to :func:`run_backtest` (``horizon_days``,
    ``start``, ``end``, ``market_builder``, ``progress``, ``confidence``, ``vol_index``).

    Returns
    -------
    (without, with, inputs) : the two results (labels ``label`` and ``label + " + dynamic"``;
        ``label`` defaults to the model name) and the inputs object (regime underlying, floor
        counts)
    """
    floor = None if floor_factory is None else floor_factory(history)
    inputs = DynamicInputs(regimes, book, account, floor_model=floor,
                           underlying=regime_underlying, margin=margin)
    # adjust() takes RegimeInputs, what DynamicInputs returns, not the raw state mapping
    ctrl = cast(MarginController, DynamicController(config))
    with_ctrl = run_backtest(book, model_factory, history, controller=ctrl,
                             controller_inputs=inputs, account=account, margin=margin,
                             label="__dynamic__", **kwargs)
    name = label or with_ctrl.model
    return (without_controller(with_ctrl, name),
            dataclasses.replace(with_ctrl, label=f"{name} + dynamic"), inputs)


# ---------------------------------------------------------------------------------------------
# JSON
# ---------------------------------------------------------------------------------------------


def _plain(x: Any) -> Any:
    """JSON-able form: dataclasses → dicts, NaN/inf → None, numpy → Python, dates → ISO."""
    if is_dataclass(x) and not isinstance(x, type):
        return {f.name: _plain(getattr(x, f.name)) for f in fields(x)}
    if isinstance(x, Mapping):
        return {str(k): _plain(v) for k, v in x.items()}
    if isinstance(x, np.ndarray):
        return [_plain(v) for v in x.tolist()] if x.dtype.kind != "M" else [
            str(v) for v in x]
    if isinstance(x, list | tuple):
        return [_plain(v) for v in x]
    if isinstance(x, np.generic):
        return _plain(x.item())
    if isinstance(x, float):
        return x if math.isfinite(x) else None
    if isinstance(x, datetime | date):
        return x.isoformat()
    if x is None or isinstance(x, bool | int | str):
        return x
    if hasattr(x, "model_dump"):
        return _plain(x.model_dump(mode="json"))
    return str(x)


def backtest_json(result: BacktestResult) -> dict[str, Any]:
    """The result as a JSON document: run description, per-day series, statistics."""
    series: dict[str, Any] = {
        "date": [str(d) for d in result.dates], "margin": result.margin.tolist(),
        "model_margin": result.model_margin.tolist(),
        "realised_loss": result.realised_loss.tolist(),
        "exceedance": [bool(x) for x in result.exceedance],
        "notional": result.notional.tolist(),
        "prices": {u: _plain(v) for u, v in result.prices.items()}}
    if result.var is not None and result.es is not None:
        series["var"] = result.var.tolist()
        series["es"] = result.es.tolist()
    return {
        "label": result.label, "model": result.model, "model_version": result.model_version,
        "params_hash": result.params_hash, "params": _plain(result.params),
        "account": result.account, "currency": result.currency,
        "horizon_days": result.horizon_days, "margin_kind": result.margin_kind,
        "confidence": result.statistics.confidence, "controller": result.controller,
        "history_source": result.history_source, "es_alpha": result.es_alpha,
        "n_days": result.n_days,
        "first_day": str(result.dates[0]), "last_day": str(result.dates[-1]),
        "series": series,
        "skipped": [{"date": d, "reason": r} for d, r in result.skipped],
        "controller_log": [{"date": d, "entry": _plain(e)} for d, e in result.controller_log],
        "statistics": _plain(result.statistics)}


def result_from_json(doc: Mapping[str, Any]) -> BacktestResult:
    """Rebuild a result from :func:`backtest_json` output, recomputing every statistic from the
    series (so a saved run can be re-reported and its figures checked)."""
    try:
        s = doc["series"]
        dates = np.array(s["date"], dtype="datetime64[D]")
        margin = np.array(s["margin"], dtype=np.float64)
        loss = np.array(s["realised_loss"], dtype=np.float64)
        notional = np.array(s["notional"], dtype=np.float64)
        var = np.array(s["var"], dtype=np.float64) if "var" in s else None
        es = np.array(s["es"], dtype=np.float64) if "es" in s else None
        es_alpha = doc.get("es_alpha")
        stats = compute_statistics(dates, margin, loss, notional,
                                   confidence=float(doc["confidence"]), var=var, es=es,
                                   es_alpha=es_alpha, horizon_days=int(doc["horizon_days"]))
        return BacktestResult(
            label=doc["label"], model=doc["model"], model_version=doc["model_version"],
            params_hash=doc["params_hash"], params=doc.get("params", {}),
            account=doc["account"], currency=doc["currency"],
            horizon_days=int(doc["horizon_days"]), margin_kind=doc["margin_kind"],
            controller=doc.get("controller"), history_source=doc.get("history_source", ""),
            dates=dates, margin=margin,
            model_margin=np.array(s.get("model_margin", s["margin"]), dtype=np.float64),
            realised_loss=loss, exceedance=bs.exception_flags(margin, loss), notional=notional,
            prices={u: np.array([math.nan if v is None else v for v in vals], dtype=np.float64)
                    for u, vals in s.get("prices", {}).items()},
            var=var, es=es, es_alpha=es_alpha,
            controller_log=tuple((e["date"], e["entry"]) for e in doc.get("controller_log", [])),
            skipped=tuple((e["date"], e["reason"]) for e in doc.get("skipped", [])),
            statistics=stats)
    except (KeyError, TypeError) as exc:
        raise ValueError(f"doc: not a backtest JSON document ({exc!r})") from None


def summary_rows(results: Sequence[BacktestResult]) -> list[dict[str, Any]]:
    """One row of headline figures per result (for tables and the comparison page)."""
    rows = []
    for r in results:
        st = r.statistics
        pc = st.procyclicality
        w = st.traffic_light_worst_250
        rows.append({
            "label": r.label, "horizon_days": r.horizon_days, "currency": r.currency,
            "days": r.n_days, "exceedances": st.coverage.n_exceptions,
            "expected": (1.0 - st.confidence) * r.n_days,
            "coverage": st.coverage.coverage, "kupiec_p": st.kupiec.p_value,
            "christoffersen_ind_p": None if st.christoffersen is None
            else st.christoffersen.p_value_ind,
            "christoffersen_cc_p": None if st.christoffersen is None
            else st.christoffersen.p_value_cc,
            "zone_worst_250": None if w is None else w.traffic_light.zone,
            "exceptions_worst_250": None if w is None else w.traffic_light.n_exceptions,
            "worst_250_first": None if w is None else str(w.first_day),
            "worst_250_last": None if w is None else str(w.last_day),
            "zone_last_250": st.traffic_light_last_250.zone,
            "exceptions_last_250": st.traffic_light_last_250.n_exceptions,
            "plus_factor_last_250": st.traffic_light_last_250.plus_factor,
            "z2": None if st.z2 is None else st.z2.z2,
            "mean_margin_share": None if st.margin_share is None
            else st.margin_share.mean_share,
            "peak_to_trough": None if pc is None else pc.peak_to_trough.ratio,
            **{f"max_{n}d_increase": None if pc is None or n not in
               [x.horizon for x in pc.n_day] else pc.ratio(n) - 1.0
               for n in PROCYCLICALITY_HORIZONS}})
    return rows
