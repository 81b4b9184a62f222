"""The dynamic margin controller on a live feed (issue 10, DESIGN §8 ``margin_parameters``).

:class:`LiveDynamic` watches the market updates the live book receives and runs
:class:`~margin_engine.policy.dynamic.DynamicController` on them; its decisions become
:class:`ParameterChange` records and a :class:`~margin_engine.policy.margin_scale.MarginScale`
that the caller puts in force with :meth:`LiveBook.set_margin_scale`. It holds no book and
does no I/O: the service (or a study) feeds it and applies what it answers.

Inputs, all known at the time of the update (no look-ahead):

- **realised volatility** from the marks: the index price of ``underlying`` at each update;
  the last one of a UTC day is that day's close. The controller's ``ewma_vol`` and
  ``long_run_vol`` come from :func:`~margin_engine.policy.dynamic.regime_inputs_series` on the
  seed history's daily closes followed by the feed's;
- **implied volatility**: a ``regime.dvol`` value on the update (Deribit DVOL, annualised
  decimal), else the live market's at-the-money option IV (expiry nearest ``atm_days``, strike
  nearest the underlying price, mean of call and put ``mark_iv``);
- **funding** (``regime.funding``, decimal per 8 h, daily mean of what the day carried) and
  **depth** (``regime.depth``, relative to normal) when the updates carry them.

The controller is daily (its limits are in calendar days): the first update of a new UTC day
closes the previous day and the controller decides on it. A decision taken at ``T`` (that
first update) on day ``d`` with ``effective_date`` ``e`` takes effect at
``e + 1 day, 00:00 UTC`` (the close of day ``e``): an increase with ``notice_days = 1`` is
announced 24 h before it applies; a decrease applies at ``T``.
"""

from __future__ import annotations

import datetime as _dt
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, model_validator

from margin_engine.domain.history import PriceSeries
from margin_engine.domain.instruments import Kind
from margin_engine.domain.market import MarketSnapshot
from margin_engine.errors import InputError
from margin_engine.policy.dynamic import (
    ControllerState,
    DayRecord,
    DynamicConfig,
    DynamicController,
    LogEntry,
    PendingChange,
    RegimeInputs,
)
from margin_engine.policy.dynamic import regime_inputs_series as _series
from margin_engine.policy.margin_scale import IDENTITY, MarginScale, next_scale

__all__ = ["STATE_VERSION", "DynamicCheckpoint", "LiveDynamic", "LiveDynamicConfig",
           "ParameterChange", "RegimeSignals", "atm_implied_vol", "parse_signals"]

Phase = Literal["announced", "in_effect", "cancelled"]


class LiveDynamicConfig(BaseModel):
    """Configuration of :class:`LiveDynamic` (frozen; unknown fields rejected).

    The controller's own settings are :class:`DynamicConfig` (documented in
    docs/dynamic-margin.md); ``floor`` must be ``"off"`` here (the APC floor is a margin
    amount of one portfolio, not a multiplier) and ``min_multiplier`` at least 1 (the live
    multiplier never goes below the model).
    """

    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)

    underlying: str = Field("BTC", min_length=1, description=(
        "Index whose marks give the realised vol and whose options give the ATM IV"))
    controller: DynamicConfig = Field(default_factory=lambda: DynamicConfig(floor="off"))
    decay: float = Field(0.94, gt=0.0, lt=1.0, description=(
        "EWMA decay on daily returns (RiskMetrics daily 0.94)"))
    seed_window: int = Field(30, ge=2, description="Returns seeding the EWMA")
    min_history: int = Field(30, ge=1, description="Least daily returns before any decision")
    long_run_window: int = Field(3650, ge=1, description="Returns in the long-run RMS vol")
    funding_window: int = Field(7, ge=1, description="Days averaged in the funding signal")
    atm_iv: bool = Field(True, description=(
        "Use the live market's ATM option IV when an update carries no DVOL"))
    atm_days: float = Field(30.0, gt=0.0, description=(
        "Target days to expiry of the ATM IV (DVOL is a 30-day index)"))
    mm_share: float = Field(1.0, ge=0.0, le=1.0, description=(
        "Share of the multiplier's raise passed on to MM (house choice, UNCONFIRMED)"))
    mm_cap: float = Field(0.95, ge=0.0, lt=1.0, description=(
        "Raised MM at most mm_cap × the lower of the old and new multiplier × IM (house "
        "choice, UNCONFIRMED; < 1 keeps healthy accounts out of liquidation)"))

    @model_validator(mode="after")
    def _check(self) -> LiveDynamicConfig:
        if self.controller.floor != "off":
            raise ValueError("controller.floor: must be 'off' on the live feed (the floor is "
                             "a margin amount, not a multiplier)")
        if self.controller.min_multiplier < 1.0:
            raise ValueError(f"controller.min_multiplier: must be >= 1 on the live feed, got "
                             f"{self.controller.min_multiplier}")
        return self


@dataclass(frozen=True)
class RegimeSignals:
    """Market signals an update may carry besides prices (``regime`` in ``POST /v1/market``).

    Attributes
    ----------
    dvol : float or None
        Implied volatility index, annualised decimal (DVOL 62.5 → 0.625), > 0.
    funding : float or None
        Perpetual funding rate, decimal per 8 h, |x| < 1.
    depth : float or None
        Order-book depth relative to its normal level (1 = normal), > 0.
    """

    dvol: float | None = None
    funding: float | None = None
    depth: float | None = None


def parse_signals(raw: Any, path: str = "regime") -> RegimeSignals:
    """Validate a ``regime`` object (``{dvol?, funding?, depth?}``); InputError naming the
    field otherwise."""
    if raw is None:
        return RegimeSignals()
    if not isinstance(raw, Mapping):
        raise InputError(path, "must be an object {dvol?, funding?, depth?}")
    unknown = sorted(set(raw) - {"dvol", "funding", "depth"})
    if unknown:
        raise InputError(f"{path}.{unknown[0]}", "unknown field (known: dvol, funding, depth)")
    out: dict[str, float | None] = {}
    for k in ("dvol", "funding", "depth"):
        v = raw.get(k)
        if v is None:
            out[k] = None
            continue
        if isinstance(v, bool) or not isinstance(v, int | float):
            raise InputError(f"{path}.{k}", f"expected a number, got {type(v).__name__}")
        x = float(v)
        if not math.isfinite(x):
            raise InputError(f"{path}.{k}", f"must be finite, got {v!r}")
        if k == "funding" and abs(x) >= 1.0:
            raise InputError(f"{path}.{k}", f"a decimal per 8 h must have |x| < 1, got {v!r}")
        if k != "funding" and not 0.0 < x <= 100.0:
            raise InputError(f"{path}.{k}", f"must lie in (0, 100], got {v!r}")
        out[k] = x
    return RegimeSignals(out["dvol"], out["funding"], out["depth"])


def atm_implied_vol(market: MarketSnapshot, underlying: str, target_days: float = 30.0
                    ) -> float | None:
    """The at-the-money implied vol of ``underlying``'s options in ``market`` (annualised
    decimal), or None when it lists none with a mark IV.

    The expiry is the listed one (still in the future) nearest ``target_days`` away; the strike
    the one nearest the options' underlying price (the index otherwise); the IV the mean
    ``mark_iv`` of the call and put there (either alone when only one is listed).
    """
    now = market.timestamp
    by_exp: dict[_dt.datetime, list[Any]] = {}
    for ins in market.instruments:
        if (ins.kind is Kind.OPTION and ins.underlying == underlying and ins.mark_iv
                and ins.expiry is not None and ins.strike is not None and ins.expiry > now):
            by_exp.setdefault(ins.expiry, []).append(ins)
    if not by_exp:
        return None
    target = now + _dt.timedelta(days=target_days)
    exp = min(by_exp, key=lambda e: (abs((e - target).total_seconds()), e))
    opts = by_exp[exp]
    spot = market.index.get(underlying)
    fwd = next((o.underlying_price for o in opts if o.underlying_price), spot)
    if fwd is None:
        return None
    k = min({o.strike for o in opts}, key=lambda x: (abs(math.log(x / fwd)), x))
    ivs = [float(o.mark_iv) for o in opts if o.strike == k]
    return sum(ivs) / len(ivs)


@dataclass(frozen=True)
class ParameterChange:
    """One ``margin_parameters`` event: a decision of the controller, or it taking effect.

    Attributes
    ----------
    time : datetime
        When it was published (the market time of the update that triggered it, UTC).
    change : {"increase", "decrease", "cancel"}
    phase : {"announced", "in_effect", "cancelled"}
        ``announced``: an increase published ahead of its effective time; ``in_effect``: the
        new multiplier applies from ``time`` on (``scale`` is the one to put in force);
        ``cancelled``: an announced increase withdrawn.
    old, new : float
        The IM multiplier before and after (dimensionless; for ``cancel``: the one in force).
    effective_time : datetime
        When ``new`` applies (UTC).
    announced_time : datetime
        When the decision was published.
    reason : str
        The controller's reason (regimes, indicator against threshold, limits).
    scale : MarginScale or None
        For ``in_effect``: the multipliers on IM and MM now in force.
    day : date
        The day whose close the controller decided on.
    vol_ratio : float
    vol_regime, liquidity_regime : str
    inputs : RegimeInputs
    """

    time: _dt.datetime
    change: str
    phase: Phase
    old: float
    new: float
    effective_time: _dt.datetime
    announced_time: _dt.datetime
    reason: str
    scale: MarginScale | None
    day: _dt.date
    vol_ratio: float
    vol_regime: str
    liquidity_regime: str
    inputs: RegimeInputs

    def payload(self) -> dict[str, Any]:
        """The event body (DESIGN §8 ``margin_parameters``: old, new, effective time, reason;
        the rest is context). Times as ISO 8601 UTC strings."""
        x = self.inputs
        sc = self.scale
        return {
            "parameter": "margin_multiplier", "change": self.change, "phase": self.phase,
            "old": self.old, "new": self.new,
            "market_time": _iso(self.time),
            "effective_time": _iso(self.effective_time),
            "announced_time": _iso(self.announced_time),
            "reason": self.reason,
            "mm_multiplier": None if sc is None else sc.mm_multiplier,
            "mm_ceiling": None if sc is None or not math.isfinite(sc.mm_ceiling)
            else sc.mm_ceiling,
            "day": self.day.isoformat(), "vol_ratio": self.vol_ratio,
            "vol_regime": self.vol_regime, "liquidity_regime": self.liquidity_regime,
            "inputs": {"ewma_vol": x.ewma_vol, "long_run_vol": x.long_run_vol,
                       "dvol": x.dvol, "funding": x.funding, "depth": x.depth},
        }


STATE_VERSION = 1
"""Version of :meth:`LiveDynamic.state_doc`'s layout (stored by the service)."""


@dataclass(frozen=True)
class DynamicCheckpoint:
    """What :meth:`LiveDynamic.checkpoint` keeps (opaque to callers)."""

    scale: MarginScale
    state: ControllerState
    log: tuple[LogEntry, ...]
    trace: tuple[DayRecord, ...]
    records: tuple[ParameterChange, ...]
    days: tuple[tuple[_dt.date, RegimeInputs | None, float], ...]
    day: _dt.date | None
    announced: tuple[_dt.datetime, str] | None
    closes: dict[_dt.date, float]
    dvol: dict[_dt.date, float]
    iv: dict[_dt.date, float]
    funding: dict[_dt.date, list[float]]
    depth: dict[_dt.date, float]


def _d(d: _dt.date | None) -> str | None:
    return None if d is None else d.isoformat()


def _pd(s: str | None) -> _dt.date | None:
    return None if s is None else _dt.date.fromisoformat(s)


def _days(m: Mapping[_dt.date, float]) -> dict[str, float]:
    return {d.isoformat(): v for d, v in sorted(m.items())}


def _iso(t: _dt.datetime) -> str:
    t = t if t.tzinfo else t.replace(tzinfo=_dt.UTC)
    return t.astimezone(_dt.UTC).isoformat().replace("+00:00", "Z")


def _midnight(d: _dt.date) -> _dt.datetime:
    return _dt.datetime(d.year, d.month, d.day, tzinfo=_dt.UTC)


@dataclass
class LiveDynamic:
    """The controller on a live feed (feed-side state only; see the module docstring).

    Parameters
    ----------
    config : LiveDynamicConfig
    seed : PriceSeries, optional
        Daily closes before the feed starts (the model's ``--history``); must list
        ``config.underlying``. Without it the controller waits for ``min_history`` days of the
        feed's own closes.

    Notes
    -----
    ``scale`` is the :class:`MarginScale` in force: at start the controller's initial
    multiplier (``1 + buffer`` = 1.25 by default), put in force without notice.
    """

    config: LiveDynamicConfig = field(default_factory=LiveDynamicConfig)
    seed: PriceSeries | None = None
    controller: DynamicController = field(init=False)
    scale: MarginScale = field(init=False)
    records: list[ParameterChange] = field(init=False, default_factory=list)
    days: list[tuple[_dt.date, RegimeInputs | None, float]] = field(init=False,
                                                                     default_factory=list)
    """Per decided day: the inputs (None while warming up) and the multiplier after it."""

    def __post_init__(self) -> None:
        cfg = self.config
        self.controller = DynamicController(cfg.controller)
        self.scale = next_scale(IDENTITY, self.controller.multiplier, mm_share=cfg.mm_share,
                                mm_cap=cfg.mm_cap)
        self._closes: dict[_dt.date, float] = {}
        if self.seed is not None:
            if cfg.underlying not in self.seed.symbols:
                raise InputError("--history", f"no {cfg.underlying} closes for the dynamic "
                                 f"controller (has {', '.join(self.seed.symbols)})")
            col = self.seed.symbols.index(cfg.underlying)
            for d, p in zip(self.seed.dates.astype("datetime64[D]").tolist(),
                            self.seed.closes[:, col].tolist(), strict=True):
                if math.isfinite(p) and p > 0:
                    self._closes[d] = float(p)
        self._seed_closes = dict(self._closes)
        self._fed: set[_dt.date] = set()  # days whose close came from the feed
        self._dvol: dict[_dt.date, float] = {}
        self._iv: dict[_dt.date, float] = {}
        self._funding: dict[_dt.date, list[float]] = {}
        self._depth: dict[_dt.date, float] = {}
        self._day: _dt.date | None = None
        self._announced: tuple[_dt.datetime, str] | None = None  # the last announced increase

    # -- state that survives a restart ----------------------------------------------------------
    def state_doc(self) -> dict[str, Any]:
        """The state to store with each market update (JSON-ready; floats exact through
        ``json``): the scale and controller state in force (an announced increase included),
        the day being observed and the feed's own daily observations. The seed history is not
        in it: it comes from ``--history`` again at start."""
        st = self.controller.state
        sc = self.scale
        p = st.pending
        ann = self._announced
        return {
            "version": STATE_VERSION, "underlying": self.config.underlying,
            "scale": {"im_multiplier": sc.im_multiplier, "mm_multiplier": sc.mm_multiplier,
                      "mm_ceiling": sc.mm_ceiling if math.isfinite(sc.mm_ceiling) else None},
            "controller": {
                "date": _d(st.date), "multiplier": st.multiplier, "vol_stress": st.vol_stress,
                "liquidity_stress": st.liquidity_stress, "last_change": _d(st.last_change),
                "pending": None if p is None else {
                    "announced": p.announced.isoformat(),
                    "effective_date": p.effective_date.isoformat(),
                    "new_multiplier": p.new_multiplier}},
            "announced": None if ann is None else {"time": _iso(ann[0]), "reason": ann[1]},
            "day": _d(self._day),
            "closes": {d.isoformat(): self._closes[d] for d in sorted(self._fed)},
            "dvol": _days(self._dvol), "iv": _days(self._iv), "depth": _days(self._depth),
            "funding": {d.isoformat(): list(v) for d, v in sorted(self._funding.items())},
        }

    def restore_doc(self, doc: Mapping[str, Any]) -> None:
        """Resume from :meth:`state_doc`'s output (a restart): the multiplier in force and an
        announced increase carry on; the controller's log starts empty.

        Raises
        ------
        InputError
            ``dynamic_state.<field>: reason`` for a document this version cannot resume.
        """
        try:
            if doc.get("version") != STATE_VERSION:
                raise InputError("dynamic_state.version",
                                 f"expected {STATE_VERSION}, got {doc.get('version')!r}")
            if doc.get("underlying") != self.config.underlying:
                raise InputError("dynamic_state.underlying",
                                 f"stored for {doc.get('underlying')!r}, the controller watches "
                                 f"{self.config.underlying!r}")
            sc, c = doc["scale"], doc["controller"]
            p = c["pending"]
            scale = MarginScale(float(sc["im_multiplier"]), float(sc["mm_multiplier"]),
                                math.inf if sc["mm_ceiling"] is None
                                else float(sc["mm_ceiling"]))
            state = ControllerState(
                _pd(c["date"]), float(c["multiplier"]), bool(c["vol_stress"]),
                bool(c["liquidity_stress"]),
                None if p is None else PendingChange(
                    _dt.date.fromisoformat(p["announced"]),
                    _dt.date.fromisoformat(p["effective_date"]), float(p["new_multiplier"])),
                _pd(c["last_change"]))
            self.controller.restore(state)
            ann = doc["announced"]
            self._announced = None if ann is None else (
                _dt.datetime.fromisoformat(ann["time"].replace("Z", "+00:00")),
                str(ann["reason"]))
            self._day = _pd(doc["day"])
            closes = {_dt.date.fromisoformat(k): float(v) for k, v in doc["closes"].items()}
            self._closes.update(closes)
            self._fed |= set(closes)
            for name in ("dvol", "iv", "depth"):
                getattr(self, f"_{name}").update({_dt.date.fromisoformat(k): float(v)
                                                  for k, v in doc[name].items()})
            self._funding.update({_dt.date.fromisoformat(k): [float(x) for x in v]
                                  for k, v in doc["funding"].items()})
        except InputError:
            raise
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise InputError("dynamic_state", f"cannot resume: {type(exc).__name__}: "
                             f"{exc}".splitlines()[0]) from None
        self.scale = scale

    def checkpoint(self) -> DynamicCheckpoint:
        """Everything :meth:`observe` may change, to put back with :meth:`rollback`."""
        ctl = self.controller
        return DynamicCheckpoint(
            self.scale, ctl.state, ctl.log, ctl.trace, tuple(self.records), tuple(self.days),
            self._day, self._announced, {d: self._closes[d] for d in self._fed},
            dict(self._dvol), dict(self._iv),
            {d: list(v) for d, v in self._funding.items()}, dict(self._depth))

    def rollback(self, cp: DynamicCheckpoint) -> None:
        """Undo every :meth:`observe` since ``cp`` was taken (the service does it when the
        update's effects could not be stored)."""
        self.controller.restore(cp.state, log=cp.log, trace=cp.trace)
        self.scale = cp.scale
        self.records = list(cp.records)
        self.days = list(cp.days)
        self._day, self._announced = cp.day, cp.announced
        for d in self._fed - set(cp.closes):  # a day first fed after the checkpoint
            if d in self._seed_closes:
                self._closes[d] = self._seed_closes[d]
            else:
                del self._closes[d]
        self._closes.update(cp.closes)
        self._fed = set(cp.closes)
        self._dvol, self._iv = dict(cp.dvol), dict(cp.iv)
        self._funding = {d: list(v) for d, v in cp.funding.items()}
        self._depth = dict(cp.depth)

    @property
    def multiplier(self) -> float:
        """The IM multiplier in force."""
        return self.scale.im_multiplier

    def observe(self, market: MarketSnapshot, signals: RegimeSignals | None = None
                ) -> list[ParameterChange]:
        """Take the market after an update (and the update's signals); answer the parameter
        changes it triggers, in order. When one is ``in_effect``, :attr:`scale` has already
        moved to it: the caller puts ``scale`` in force (``LiveBook.set_margin_scale``)."""
        t = market.timestamp if market.timestamp.tzinfo else market.timestamp.replace(
            tzinfo=_dt.UTC)
        day = t.astimezone(_dt.UTC).date()
        out: list[ParameterChange] = []
        if self._day is not None and day < self._day:
            return []  # an update dated an earlier day: the controller's days are closed
        if self._day is not None and day > self._day:
            out = self._decide(self._day, t)
        self._day = day
        px = market.index.get(self.config.underlying)
        if px is not None and math.isfinite(px) and px > 0:
            self._closes[day] = float(px)
            self._fed.add(day)
        sig = signals or RegimeSignals()
        if sig.dvol is not None:
            self._dvol[day] = sig.dvol
        if sig.funding is not None:
            self._funding.setdefault(day, []).append(sig.funding)
        if sig.depth is not None:
            self._depth[day] = sig.depth
        if self.config.atm_iv:
            iv = atm_implied_vol(market, self.config.underlying, self.config.atm_days)
            if iv is not None:
                self._iv[day] = iv
        return out

    def inputs_for(self, day: _dt.date) -> RegimeInputs | None:
        """The controller's inputs on ``day`` from what was observed up to its close (None
        while fewer than ``min_history`` daily returns are known)."""
        cfg = self.config
        days = sorted(d for d in self._closes if d <= day)
        if len(days) < max(cfg.min_history, cfg.seed_window) + 1 or days[-1] != day:
            return None
        dates = np.array(days, dtype="datetime64[D]")
        prices = np.array([self._closes[d] for d in days])
        implied = {**self._iv, **self._dvol}  # DVOL wins over the ATM IV on a day with both
        aux = {
            "dvol": implied,
            "funding": {d: sum(v) / len(v) for d, v in self._funding.items()},
            "depth": self._depth,
        }
        pairs = {k: (np.array(sorted(v), dtype="datetime64[D]"),
                     np.array([v[d] for d in sorted(v)], dtype=np.float64)) if v else None
                 for k, v in aux.items()}
        try:
            rs = _series(dates, prices, decay=cfg.decay, seed_window=cfg.seed_window,
                         long_run_window=cfg.long_run_window, min_history=cfg.min_history,
                         funding_window=cfg.funding_window, dvol=pairs["dvol"],
                         funding=pairs["funding"], depth=pairs["depth"])
        except ValueError:
            return None
        return rs.inputs[-1]

    def _decide(self, day: _dt.date, now: _dt.datetime) -> list[ParameterChange]:
        inputs = self.inputs_for(day)
        ctl = self.controller
        if inputs is None:
            self.days.append((day, None, ctl.multiplier))
            return []
        before, n_log = ctl.state, len(ctl.log)
        ctl.adjust(day, 1.0, inputs)
        self.days.append((day, inputs, ctl.multiplier))
        ratio = ctl.vol_ratio(inputs)
        st = ctl.state
        regimes = ("stress" if st.vol_stress else "normal",
                   "stress" if st.liquidity_stress else "normal")
        out: list[ParameterChange] = []
        p = before.pending
        if p is not None and day >= p.effective_date:  # an announced increase comes due
            ann = self._announced  # kept across a restart (state_doc)
            self._put(p.new_multiplier)
            out.append(ParameterChange(
                now, "increase", "in_effect", before.multiplier, p.new_multiplier, now,
                ann[0] if ann is not None else now,
                f"in force as announced at {_iso(ann[0])}: {ann[1]}"
                if ann is not None else "announced increase in force",
                self.scale, day, ratio, *regimes, inputs))
        for entry in ctl.log[n_log:]:
            if entry.kind == "decrease" or (entry.kind == "increase"
                                            and ctl.state.pending is None):
                self._put(entry.new_multiplier)  # a decrease, or an increase without notice
                out.append(self._record(entry, now, now, "in_effect", self.scale, regimes))
            elif entry.kind == "increase":
                eff = _midnight(entry.effective_date) + _dt.timedelta(days=1)
                out.append(self._record(entry, now, eff, "announced", None, regimes,
                                        f"; on the feed: in force from {_iso(eff)}"))
                self._announced = (now, out[-1].reason)
            else:
                out.append(self._record(entry, now, now, "cancelled", None, regimes))
        self.records.extend(out)
        return out

    def _put(self, multiplier: float) -> None:
        self.scale = next_scale(self.scale, multiplier, mm_share=self.config.mm_share,
                                mm_cap=self.config.mm_cap)

    def _record(self, e: LogEntry, now: _dt.datetime, eff: _dt.datetime, phase: Phase,
                scale: MarginScale | None, regimes: tuple[str, str], note: str = ""
                ) -> ParameterChange:
        return ParameterChange(now, e.kind, phase, e.old_multiplier, e.new_multiplier, eff, now,
                               e.reason + note, scale, e.date, e.vol_ratio, *regimes, e.inputs)
