"""Dynamic margin adjustment: a rate-limited, logged margin multiplier driven by market regimes.

The controller sits on top of any margin model. Each day it receives the model's margin (the
*base* margin, a currency amount) and the day's regime observations (:class:`RegimeInputs`), and
returns the margin to collect::

    margin_t = max(base_t × m_t, floor_t)

- ``m_t`` is the controller's multiplier. It follows a *target* set by two regimes, each with
  hysteresis (separate enter and exit thresholds):

  * **volatility regime** — ``vol_ratio = max(ewma_vol / long_run_vol,
    dvol / sqrt(annualisation_days) / long_run_vol)``: realised (EWMA, ccp-standards §5.1)
    and implied (Deribit DVOL) volatility against the long-run level. In the *normal* regime
    the EMIR Art. 28(a) buffer is held (target ``1 + buffer``, default 1.25); in *stress*
    (``vol_ratio >= stress_enter`` until ``vol_ratio <= stress_exit``) it is released
    (target ``1 + stressed_buffer``, default 1.0) — the buffer is "temporarily exhausted when
    calculated margins rise significantly" (ccp-standards §3.1).
  * **liquidity regime** — funding stress ``|funding| >= funding_enter`` (crowded leverage) or
    a thin book ``depth <= depth_enter`` (depth relative to normal) starts it; it ends when every
    given indicator is back beyond its exit threshold. It multiplies the target by
    ``1 + liquidity_addon``.

  The multiplier moves towards the target under limits: at most one change every
  ``min_days_between_changes`` days (counted between effective dates), each change at most
  ``max_step_up`` / ``max_step_down`` (relative), always within ``[min_multiplier,
  max_multiplier]``, changes smaller than ``min_change`` ignored. Increases are announced and
  take effect ``notice_days`` later (an announced increase is cancelled, with a log entry, if the
  target falls back to or below the current multiplier before it takes effect); decreases take
  effect at once.
- ``floor_t`` is the APC floor (EMIR Art. 28(c), ccp-standards §3.1): the margin computed from a
  long look-back that contains the stressed periods, scaled by ``floor_fraction``. With
  ``floor="given"`` (default) it is ``RegimeInputs.floor_margin`` when the caller supplies it
  (the model run on the stressed look-back) and absent otherwise; with ``floor="volatility"``
  a missing ``floor_margin`` is replaced by the base margin rescaled to the long-run volatility,
  ``base_t × long_run_vol / ewma_vol`` — right only for models whose margin is proportional to
  the EWMA volatility forecast (filtered historical simulation, normal VaR), wrong for rule-based
  or unfiltered models; ``floor="off"`` disables it.

Every change of the multiplier is a frozen :class:`LogEntry` with the reason and the day's
inputs; every day is a frozen :class:`DayRecord` in :attr:`DynamicController.trace`.

Dates are calendar days (crypto trades every day): ``str`` (ISO), ``datetime.date`` or
``numpy.datetime64``; the controller must be called in strictly increasing date order.
"""

from __future__ import annotations

import datetime as _dt
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
from numpy.typing import ArrayLike, NDArray
from pydantic import BaseModel, ConfigDict, Field, model_validator

from margin_engine.maths.volatility import ewma_variance

FloatArray = NDArray[np.float64]
DateLike = str | _dt.date | np.datetime64
ChangeKind = Literal["increase", "decrease", "cancel"]
FloorMode = Literal["given", "volatility", "off"]

__all__ = [
    "ControllerState",
    "DayRecord",
    "DynamicConfig",
    "DynamicController",
    "DynamicRun",
    "LogEntry",
    "PendingChange",
    "RegimeInputs",
    "RegimeSeries",
    "daily_log_returns",
    "regime_inputs_series",
    "run_controller",
]

_EPS = 1e-12


def _as_date(value: object, name: str = "date") -> _dt.date:
    """A calendar day from an ISO string, ``datetime.date``/``datetime`` or ``datetime64``."""
    if isinstance(value, _dt.datetime):
        return value.date()
    if isinstance(value, _dt.date):
        return value
    if not isinstance(value, str | np.datetime64):
        raise ValueError(
            f"{name}: expected an ISO date string, datetime.date or numpy.datetime64, got "
            f"{type(value).__name__}"
        )
    try:
        d = np.asarray(value).astype("datetime64[D]")
    except (TypeError, ValueError):
        raise ValueError(f"{name}: cannot read {value!r} as a date") from None
    if np.isnat(d):
        raise ValueError(f"{name}: is NaT")
    out = d.item()
    if not isinstance(out, _dt.date):
        raise ValueError(f"{name}: {value!r} is outside the supported date range")
    return out


def _finite(value: float, name: str, *, positive: bool = False) -> float:
    v = float(value)
    if not math.isfinite(v):
        raise ValueError(f"{name}: must be a finite number, got {value!r}")
    if positive and v <= 0.0:
        raise ValueError(f"{name}: must be > 0, got {value!r}")
    return v


# --------------------------------------------------------------------------------------------
# inputs, configuration, log
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RegimeInputs:
    """One day's market observations, all known at that day's close (no look-ahead).

    Attributes
    ----------
    ewma_vol : float
        EWMA volatility forecast for the next day, daily return units (0.03 = 3 %/day), > 0.
    long_run_vol : float
        Long-run daily volatility (e.g. RMS of up to 10 years of daily returns), same units, > 0.
    dvol : float or None
        Implied volatility index (Deribit DVOL), annualised decimal (DVOL 62.5 -> 0.625), > 0.
    funding : float or None
        Perpetual funding rate, decimal per funding interval (8 h on Binance; 0.0001 = 0.01 %).
    depth : float or None
        Order-book depth relative to its normal level (1.0 = normal, 0.5 = half as deep), > 0.
    floor_margin : float or None
        APC floor amount in the base margin's currency (margin computed on the stressed
        look-back), >= 0. When None there is no floor, or the volatility-scaled one with
        ``DynamicConfig.floor="volatility"``.
    """

    ewma_vol: float
    long_run_vol: float
    dvol: float | None = None
    funding: float | None = None
    depth: float | None = None
    floor_margin: float | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "ewma_vol", _finite(self.ewma_vol, "ewma_vol", positive=True))
        object.__setattr__(
            self, "long_run_vol", _finite(self.long_run_vol, "long_run_vol", positive=True)
        )
        if self.dvol is not None:
            object.__setattr__(self, "dvol", _finite(self.dvol, "dvol", positive=True))
        if self.funding is not None:
            f = _finite(self.funding, "funding")
            if abs(f) >= 1.0:
                raise ValueError(f"funding: {f} is not a decimal per interval (|rate| must be < 1)")
            object.__setattr__(self, "funding", f)
        if self.depth is not None:
            object.__setattr__(self, "depth", _finite(self.depth, "depth", positive=True))
        if self.floor_margin is not None:
            fm = _finite(self.floor_margin, "floor_margin")
            if fm < 0.0:
                raise ValueError(f"floor_margin: must be >= 0, got {fm}")
            object.__setattr__(self, "floor_margin", fm)

    @property
    def realised_ratio(self) -> float:
        """``ewma_vol / long_run_vol`` (1 = the long-run level)."""
        return self.ewma_vol / self.long_run_vol

    def implied_ratio(self, annualisation_days: float = 365.0) -> float | None:
        """``dvol / sqrt(annualisation_days) / long_run_vol``, None without DVOL."""
        if self.dvol is None:
            return None
        return self.dvol / math.sqrt(annualisation_days) / self.long_run_vol


class DynamicConfig(BaseModel):
    """Frozen configuration of :class:`DynamicController` (unknown fields are rejected).

    Ratios are dimensionless; funding in decimal per funding interval; days are calendar days.
    The defaults are house choices documented in docs/dynamic-margin.md; only the 25 % buffer
    is a regulatory number (EMIR RTS 153/2013 Art. 28(a)).
    """

    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)

    # volatility regime
    stress_enter: float = Field(1.5, gt=0.0, description=(
        "Vol ratio (EWMA or implied vs long-run) at or above which the stress regime starts"))
    stress_exit: float = Field(1.1, gt=0.0, description=(
        "Vol ratio at or below which the stress regime ends (<= stress_enter: hysteresis)"))
    use_implied: bool = Field(True, description="Let DVOL (when given) raise the vol ratio")
    annualisation_days: float = Field(365.0, gt=0.0, description=(
        "Days per year to turn the annualised DVOL into a daily vol (crypto: 365)"))
    # liquidity regime
    funding_enter: float = Field(0.0005, gt=0.0, description=(
        "|funding| per interval at or above which liquidity stress starts (0.05 %/8 h)"))
    funding_exit: float = Field(0.0003, gt=0.0, description=(
        "|funding| at or below which the funding signal clears (<= funding_enter)"))
    depth_enter: float = Field(0.5, gt=0.0, description=(
        "Relative book depth at or below which liquidity stress starts"))
    depth_exit: float = Field(0.8, gt=0.0, description=(
        "Relative depth at or above which the depth signal clears (>= depth_enter)"))
    liquidity_addon: float = Field(0.10, ge=0.0, le=5.0, description=(
        "Relative multiplier add-on in liquidity stress"))
    # anti-procyclicality (EMIR Art. 28)
    buffer: float = Field(0.25, ge=0.0, le=5.0, description=(
        "APC buffer held outside stress, share of the base margin (EMIR Art. 28(a): >= 25 %)"))
    stressed_buffer: float = Field(0.0, ge=0.0, le=5.0, description=(
        "Buffer kept in the stress regime (0 = fully released)"))
    floor: FloorMode = Field("given", description=(
        "APC floor (EMIR Art. 28(c)): 'given' = RegimeInputs.floor_margin when supplied; "
        "'volatility' = that, else base × long_run_vol / ewma_vol (vol-proportional models "
        "only); 'off'"))
    floor_fraction: float = Field(1.0, ge=0.0, le=5.0, description=(
        "Floor = floor_fraction × the floor margin"))
    # limits
    initial_multiplier: float | None = Field(None, gt=0.0, description=(
        "Multiplier before the first day (None: 1 + buffer, the normal-regime target)"))
    min_multiplier: float = Field(1.0, gt=0.0, description="Lowest multiplier ever applied")
    max_multiplier: float = Field(2.0, gt=0.0, description="Highest multiplier ever applied")
    max_step_up: float = Field(0.25, gt=0.0, description=(
        "Largest relative increase per change: new <= old × (1 + max_step_up)"))
    max_step_down: float = Field(0.25, gt=0.0, lt=1.0, description=(
        "Largest relative decrease per change: new >= old × (1 - max_step_down)"))
    min_days_between_changes: int = Field(5, ge=0, le=3650, description=(
        "Least calendar days between the effective dates of two changes"))
    notice_days: int = Field(1, ge=0, le=365, description=(
        "An increase announced on day t takes effect on day t + notice_days"))
    min_change: float = Field(0.01, ge=0.0, lt=1.0, description=(
        "Relative moves of the target smaller than this are ignored"))

    @model_validator(mode="after")
    def _check(self) -> DynamicConfig:
        if self.stress_exit > self.stress_enter:
            raise ValueError(
                f"stress_exit: {self.stress_exit} must be <= stress_enter {self.stress_enter}"
            )
        if self.funding_exit > self.funding_enter:
            raise ValueError(
                f"funding_exit: {self.funding_exit} must be <= funding_enter {self.funding_enter}"
            )
        if self.depth_exit < self.depth_enter:
            raise ValueError(
                f"depth_exit: {self.depth_exit} must be >= depth_enter {self.depth_enter}"
            )
        if self.max_multiplier < self.min_multiplier:
            raise ValueError(
                f"max_multiplier: {self.max_multiplier} must be >= min_multiplier "
                f"{self.min_multiplier}"
            )
        m0 = self.start_multiplier
        if not (self.min_multiplier - _EPS <= m0 <= self.max_multiplier + _EPS):
            raise ValueError(
                f"initial_multiplier: {m0} must lie in [min_multiplier, max_multiplier] = "
                f"[{self.min_multiplier}, {self.max_multiplier}]"
            )
        return self

    @property
    def start_multiplier(self) -> float:
        """The multiplier before the first day: ``initial_multiplier`` or ``1 + buffer``."""
        if self.initial_multiplier is not None:
            return float(self.initial_multiplier)
        return min(max(1.0 + self.buffer, self.min_multiplier), self.max_multiplier)


@dataclass(frozen=True)
class LogEntry:
    """One decision of the controller.

    Attributes
    ----------
    date : datetime.date
        Day the decision was made (announced).
    kind : {"increase", "decrease", "cancel"}
        ``cancel`` withdraws a pending (announced, not yet effective) increase.
    old_multiplier : float
        Multiplier in force when the decision was made.
    new_multiplier : float
        Multiplier from ``effective_date`` on (for ``cancel``: the one that stays in force).
    effective_date : datetime.date
        First day the new multiplier applies (``date + notice_days`` for an increase).
    target : float
        The regime target the controller was moving towards.
    reason : str
        Human-readable reason: regimes, the indicator values and thresholds, limits that bound.
    vol_regime, liquidity_regime : str
        ``"normal"``/``"stress"`` and ``"normal"``/``"stress"`` after the day's update.
    vol_ratio : float
        The volatility-regime indicator of the day.
    inputs : RegimeInputs
        The day's observations.
    """

    date: _dt.date
    kind: ChangeKind
    old_multiplier: float
    new_multiplier: float
    effective_date: _dt.date
    target: float
    reason: str
    vol_regime: str
    liquidity_regime: str
    vol_ratio: float
    inputs: RegimeInputs


@dataclass(frozen=True)
class PendingChange:
    """An announced increase waiting for its effective date."""

    announced: _dt.date
    effective_date: _dt.date
    new_multiplier: float


@dataclass(frozen=True)
class ControllerState:
    """The controller's state after its last call (or the initial state)."""

    date: _dt.date | None
    multiplier: float
    vol_stress: bool
    liquidity_stress: bool
    pending: PendingChange | None
    last_change: _dt.date | None


@dataclass(frozen=True)
class DayRecord:
    """What the controller did on one day (amounts in the base margin's currency)."""

    date: _dt.date
    base_margin: float
    multiplier: float
    floor: float
    margin: float
    target: float
    vol_ratio: float
    vol_stress: bool
    liquidity_stress: bool
    floor_binding: bool
    pending: PendingChange | None


# --------------------------------------------------------------------------------------------
# the controller
# --------------------------------------------------------------------------------------------


def _fmt(x: float) -> str:
    return f"{x:.4g}"


class DynamicController:
    """Stateful multiplier controller; call :meth:`adjust` once per day in date order.

    Parameters
    ----------
    config : DynamicConfig, optional
        Thresholds, buffer, floor and limits (defaults documented on the fields).

    Examples
    --------
    >>> c = DynamicController()
    >>> margin, entry = c.adjust("2024-01-01", 100.0, RegimeInputs(0.02, 0.03))
    >>> margin  # normal regime: the 25 % buffer is held
    125.0
    >>> c = DynamicController(DynamicConfig(floor="volatility"))
    >>> c.adjust("2024-01-01", 100.0, RegimeInputs(0.02, 0.03))[0]  # floor 100 × 0.03 / 0.02
    150.0
    """

    def __init__(self, config: DynamicConfig | None = None) -> None:
        self.config = config if config is not None else DynamicConfig()
        self.reset()

    def reset(self) -> None:
        """Forget all state, log and trace; the next call may use any date."""
        self._date: _dt.date | None = None
        self._m = self.config.start_multiplier
        self._vol_stress = False
        self._liq_stress = False
        self._pending: PendingChange | None = None
        self._last_change: _dt.date | None = None
        self._log: list[LogEntry] = []
        self._trace: list[DayRecord] = []

    def restore(self, state: ControllerState, *, log: Sequence[LogEntry] = (),
                trace: Sequence[DayRecord] = ()) -> None:
        """Put back a state taken from :attr:`state` (after a restart, or to undo a step whose
        effect could not be stored), with the log and trace to keep (none by default).

        Raises
        ------
        ValueError
            A multiplier outside ``[min_multiplier, max_multiplier]`` or not finite.
        """
        cfg = self.config
        m = _finite(state.multiplier, "multiplier", positive=True)
        if not (cfg.min_multiplier - _EPS <= m <= cfg.max_multiplier + _EPS):
            raise ValueError(f"multiplier: {m} outside [{cfg.min_multiplier}, "
                             f"{cfg.max_multiplier}]")
        if state.pending is not None:
            _finite(state.pending.new_multiplier, "pending.new_multiplier", positive=True)
        self._date = state.date
        self._m = m
        self._vol_stress = bool(state.vol_stress)
        self._liq_stress = bool(state.liquidity_stress)
        self._pending = state.pending
        self._last_change = state.last_change
        self._log = list(log)
        self._trace = list(trace)

    # -- read-only views -----------------------------------------------------------------------

    @property
    def multiplier(self) -> float:
        """The multiplier in force after the last call."""
        return self._m

    @property
    def state(self) -> ControllerState:
        """A frozen snapshot of the state."""
        return ControllerState(
            self._date, self._m, self._vol_stress, self._liq_stress, self._pending,
            self._last_change,
        )

    @property
    def log(self) -> tuple[LogEntry, ...]:
        """Every decision so far, in order."""
        return tuple(self._log)

    @property
    def trace(self) -> tuple[DayRecord, ...]:
        """One record per call, in order."""
        return tuple(self._trace)

    # -- regimes ---------------------------------------------------------------------------------

    def vol_ratio(self, inputs: RegimeInputs) -> float:
        """The volatility-regime indicator: max of the realised and (if used) implied ratios."""
        ratio = inputs.realised_ratio
        if self.config.use_implied:
            implied = inputs.implied_ratio(self.config.annualisation_days)
            if implied is not None:
                ratio = max(ratio, implied)
        return ratio

    def _update_regimes(self, inputs: RegimeInputs, ratio: float) -> list[str]:
        cfg = self.config
        notes: list[str] = []
        if not self._vol_stress and ratio >= cfg.stress_enter:
            self._vol_stress = True
            notes.append(f"vol stress starts (ratio {_fmt(ratio)} >= {_fmt(cfg.stress_enter)})")
        elif self._vol_stress and ratio <= cfg.stress_exit:
            self._vol_stress = False
            notes.append(f"vol stress ends (ratio {_fmt(ratio)} <= {_fmt(cfg.stress_exit)})")
        f, d = inputs.funding, inputs.depth
        if not self._liq_stress:
            why = []
            if f is not None and abs(f) >= cfg.funding_enter:
                why.append(f"|funding| {_fmt(abs(f))} >= {_fmt(cfg.funding_enter)}")
            if d is not None and d <= cfg.depth_enter:
                why.append(f"depth {_fmt(d)} <= {_fmt(cfg.depth_enter)}")
            if why:
                self._liq_stress = True
                notes.append("liquidity stress starts (" + ", ".join(why) + ")")
        else:
            calm_f = f is None or abs(f) <= cfg.funding_exit
            calm_d = d is None or d >= cfg.depth_exit
            if calm_f and calm_d and (f is not None or d is not None):
                self._liq_stress = False
                shown = []
                if f is not None:
                    shown.append(f"|funding| {_fmt(abs(f))} <= {_fmt(cfg.funding_exit)}")
                if d is not None:
                    shown.append(f"depth {_fmt(d)} >= {_fmt(cfg.depth_exit)}")
                notes.append("liquidity stress ends (" + ", ".join(shown) + ")")
        return notes

    def target(self) -> float:
        """The multiplier the current regimes call for, within the overall floor and cap."""
        cfg = self.config
        t = 1.0 + (cfg.stressed_buffer if self._vol_stress else cfg.buffer)
        if self._liq_stress:
            t *= 1.0 + cfg.liquidity_addon
        return min(max(t, cfg.min_multiplier), cfg.max_multiplier)

    def _regime_text(self, ratio: float) -> str:
        v = "stress" if self._vol_stress else "normal"
        q = "stress" if self._liq_stress else "normal"
        return f"vol regime {v} (ratio {_fmt(ratio)}), liquidity regime {q}"

    # -- the daily step --------------------------------------------------------------------------

    def adjust(
        self, date: DateLike, base_margin: float, inputs: RegimeInputs
    ) -> tuple[float, LogEntry | None]:
        """Apply the controller to one day's base margin.

        Parameters
        ----------
        date : str, datetime.date or numpy.datetime64
            The day; strictly later than the previous call's.
        base_margin : float
            The model's margin for the day, >= 0, in any currency (the result is in the same).
        inputs : RegimeInputs
            The day's observations (known at the day's close).

        Returns
        -------
        margin : float
            ``max(base_margin × multiplier, floor)``.
        entry : LogEntry or None
            The decision made today (an increase announced, a decrease, a cancellation), if any.
        """
        day = _as_date(date)
        base = _finite(base_margin, "base_margin")
        if base < 0.0:
            raise ValueError(f"base_margin: must be >= 0, got {base_margin!r}")
        if not isinstance(inputs, RegimeInputs):
            raise ValueError(f"inputs: must be a RegimeInputs, got {type(inputs).__name__}")
        if self._date is not None and day <= self._date:
            raise ValueError(f"date: {day} is not after the previous call's {self._date}")
        cfg = self.config
        self._date = day

        # 1. an announced increase whose day has come takes effect
        if self._pending is not None and day >= self._pending.effective_date:
            self._m = self._pending.new_multiplier
            self._last_change = day
            self._pending = None

        # 2. regimes (hysteresis) and the target
        ratio = self.vol_ratio(inputs)
        notes = self._update_regimes(inputs, ratio)
        target = self.target()
        entry: LogEntry | None = None
        regime_text = self._regime_text(ratio)
        why_regime = "; ".join(notes) if notes else regime_text

        # 3. a pending increase no longer called for is withdrawn
        if self._pending is not None and target <= self._m * (1.0 + cfg.min_change):
            p = self._pending
            self._pending = None
            entry = self._entry(
                day, "cancel", self._m, self._m, day, target, ratio, inputs,
                f"cancel the increase to {_fmt(p.new_multiplier)} announced {p.announced} "
                f"(due {p.effective_date}): target {_fmt(target)}; {why_regime}",
            )

        # 4. a new decision, if allowed
        may_change = self._pending is None and (
            self._last_change is None
            or (day - self._last_change).days >= cfg.min_days_between_changes
        )
        if may_change and abs(target - self._m) > cfg.min_change * self._m:
            old = self._m
            if self._last_change is not None:
                why_regime += f"; previous change effective {self._last_change}"
            if target > old:
                cap = old * (1.0 + cfg.max_step_up)
                new = min(target, cap, cfg.max_multiplier)
                limited = " (step limited)" if new < target - _EPS else ""
                eff = day + _dt.timedelta(days=cfg.notice_days)
                reason = (
                    f"raise {_fmt(old)} -> {_fmt(new)}{limited} towards target {_fmt(target)}, "
                    f"effective {eff} ({cfg.notice_days} days notice); {why_regime}"
                )
                if cfg.notice_days == 0:
                    self._m = new
                    self._last_change = day
                else:
                    self._pending = PendingChange(day, eff, new)
                kind: ChangeKind = "increase"
            else:
                floor_step = old * (1.0 - cfg.max_step_down)
                new = max(target, floor_step, cfg.min_multiplier)
                limited = " (step limited)" if new > target + _EPS else ""
                eff = day
                reason = (
                    f"lower {_fmt(old)} -> {_fmt(new)}{limited} towards target {_fmt(target)}, "
                    f"effective at once; {why_regime}"
                )
                self._m = new
                self._last_change = day
                kind = "decrease"
            if entry is not None:  # cancelled and decided on one day: keep both in the log
                self._log.append(entry)
            entry = self._entry(day, kind, old, new, eff, target, ratio, inputs, reason)
        if entry is not None:
            self._log.append(entry)

        # 5. the margin: multiplier, then the APC floor
        floor = 0.0
        if cfg.floor != "off":
            if inputs.floor_margin is not None:
                floor = cfg.floor_fraction * inputs.floor_margin
            elif cfg.floor == "volatility":
                floor = cfg.floor_fraction * base * inputs.long_run_vol / inputs.ewma_vol
        scaled = base * self._m
        margin = max(scaled, floor)
        self._trace.append(
            DayRecord(
                date=day, base_margin=base, multiplier=self._m, floor=floor, margin=margin,
                target=target, vol_ratio=ratio, vol_stress=self._vol_stress,
                liquidity_stress=self._liq_stress, floor_binding=floor > scaled,
                pending=self._pending,
            )
        )
        return margin, entry

    def _entry(
        self, day: _dt.date, kind: ChangeKind, old: float, new: float, eff: _dt.date,
        target: float, ratio: float, inputs: RegimeInputs, reason: str,
    ) -> LogEntry:
        return LogEntry(
            date=day, kind=kind, old_multiplier=old, new_multiplier=new, effective_date=eff,
            target=target, reason=reason,
            vol_regime="stress" if self._vol_stress else "normal",
            liquidity_regime="stress" if self._liq_stress else "normal",
            vol_ratio=ratio, inputs=inputs,
        )


# --------------------------------------------------------------------------------------------
# a whole series at once
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class DynamicRun:
    """The controller applied to a series (arrays are read-only, aligned with ``dates``).

    ``margin``, ``base_margin`` and ``floor`` are in the base margin's currency.
    """

    dates: NDArray[np.datetime64]
    base_margin: FloatArray
    margin: FloatArray
    multiplier: FloatArray
    floor: FloatArray
    vol_stress: NDArray[np.bool_]
    liquidity_stress: NDArray[np.bool_]
    log: tuple[LogEntry, ...]


def run_controller(
    dates: Sequence[DateLike] | ArrayLike,
    base_margin: ArrayLike,
    inputs: Sequence[RegimeInputs],
    config: DynamicConfig | None = None,
) -> DynamicRun:
    """Run a fresh :class:`DynamicController` over a whole series (pure: no state kept).

    Parameters
    ----------
    dates : sequence of dates (n,)
        Strictly increasing days.
    base_margin : array (n,)
        The model's margin per day (>= 0, one currency).
    inputs : sequence of RegimeInputs (n,)
        The observations per day (none may be None: slice the burn-in off first).
    config : DynamicConfig, optional
    """
    base = np.asarray(base_margin, dtype=np.float64)
    if isinstance(dates, Sequence) and not isinstance(dates, str):
        seq: Sequence[object] = dates
    else:
        try:
            seq = np.asarray(dates).astype("datetime64[D]").tolist()
        except (TypeError, ValueError):
            raise ValueError("dates: cannot read the dates") from None
    days = [_as_date(d, "dates") for d in seq]
    if base.ndim != 1 or base.shape[0] != len(days) or len(inputs) != len(days):
        raise ValueError(
            f"base_margin, inputs: must be 1-D and as long as dates ({len(days)}), got "
            f"{base.shape} and {len(inputs)}"
        )
    ctl = DynamicController(config)
    out = np.empty(len(days))
    for i, (d, b, x) in enumerate(zip(days, base, inputs, strict=True)):
        if x is None:
            raise ValueError(f"inputs[{i}]: is None (slice the burn-in days off first)")
        out[i] = ctl.adjust(d, float(b), x)[0]
    tr = ctl.trace
    day_arr = np.array(days, dtype="datetime64[D]")
    base_arr = base.copy()
    mult = np.array([r.multiplier for r in tr], dtype=np.float64)
    floor = np.array([r.floor for r in tr], dtype=np.float64)
    vol_s = np.array([r.vol_stress for r in tr], dtype=np.bool_)
    liq_s = np.array([r.liquidity_stress for r in tr], dtype=np.bool_)
    for a in (day_arr, base_arr, out, mult, floor, vol_s, liq_s):
        a.setflags(write=False)
    return DynamicRun(
        dates=day_arr, base_margin=base_arr, margin=out, multiplier=mult, floor=floor,
        vol_stress=vol_s, liquidity_stress=liq_s, log=ctl.log,
    )


# --------------------------------------------------------------------------------------------
# regime inputs from history (no look-ahead)
# --------------------------------------------------------------------------------------------


def _day_axis(dates: ArrayLike, name: str) -> NDArray[np.int64]:
    try:
        d = np.asarray(dates).astype("datetime64[D]")
    except (TypeError, ValueError):
        raise ValueError(f"{name}: cannot read the dates") from None
    if d.ndim != 1:
        raise ValueError(f"{name}: must be 1-D")
    if np.any(np.isnat(d)):
        raise ValueError(f"{name}: contains NaT")
    days = d.astype(np.int64)
    if days.size > 1 and not bool(np.all(np.diff(days) > 0)):
        raise ValueError(f"{name}: must be strictly increasing days")
    return days


def daily_log_returns(dates: ArrayLike, prices: ArrayLike) -> tuple[FloatArray, NDArray[np.int64]]:
    """Per-day log returns between consecutive observations, and the gaps in days.

    ``r[i] = ln(P[i+1] / P[i]) / sqrt(gap[i])`` with ``gap[i]`` the calendar days between the two
    closes, so a missing day does not inflate the daily volatility (variance per day).

    Parameters
    ----------
    dates : array (n,)
        Strictly increasing days.
    prices : array (n,)
        Closes > 0 and finite (drop missing rows first).

    Returns
    -------
    r : array (n - 1,)
        Per-day log returns (decimal).
    gap : int array (n - 1,)
        Days between consecutive closes.
    """
    days = _day_axis(dates, "dates")
    p = np.asarray(prices, dtype=np.float64)
    if p.ndim != 1 or p.shape[0] != days.shape[0]:
        raise ValueError(f"prices: must be 1-D and as long as dates ({days.shape[0]})")
    if p.shape[0] < 2:
        raise ValueError("prices: need at least two closes")
    if not np.all(np.isfinite(p)) or np.any(p <= 0.0):
        raise ValueError("prices: every close must be finite and > 0 (drop missing rows first)")
    gap = np.diff(days)
    return np.log(p[1:] / p[:-1]) / np.sqrt(gap), gap


def _as_of(
    days: NDArray[np.int64], series: tuple[ArrayLike, ArrayLike] | None, name: str,
    staleness: int, window: int = 1,
) -> list[float | None]:
    """For each day: the mean of the observations dated in ``(last - window, last]``, where
    ``last`` is the last observation date on or before the day, if at most ``staleness`` days
    old (else None). ``window = 1`` gives the last observation itself."""
    if series is None:
        return [None] * days.size
    if not (isinstance(series, tuple | list) and len(series) == 2):
        raise ValueError(f"{name}: must be a (dates, values) pair")
    sd = _day_axis(series[0], f"{name}[0]")
    sv = np.asarray(series[1], dtype=np.float64)
    if sv.shape != sd.shape:
        raise ValueError(f"{name}[1]: must be as long as {name}[0] ({sd.shape[0]})")
    if np.any(np.isinf(sv)):
        raise ValueError(f"{name}[1]: contains an infinite value (use NaN for missing)")
    keep = ~np.isnan(sv)
    sd, sv = sd[keep], sv[keep]
    cs = np.concatenate([[0.0], np.cumsum(sv)])
    last = np.searchsorted(sd, days, side="right") - 1
    out: list[float | None] = []
    for day, i in zip(days.tolist(), last.tolist(), strict=True):
        if i < 0 or day - int(sd[i]) > staleness:
            out.append(None)
            continue
        j = int(np.searchsorted(sd, int(sd[i]) - window, side="right"))
        out.append(float(sv[i]) if j == i else float((cs[i + 1] - cs[j]) / (i + 1 - j)))
    return out


@dataclass(frozen=True, eq=False)
class RegimeSeries:
    """Regime inputs per day, aligned with ``dates``; None during the burn-in.

    Attributes
    ----------
    dates : datetime64[D] array (n,)
    inputs : tuple of RegimeInputs or None (n,)
    first : int
        Index of the first day with inputs (``min_history``).
    """

    dates: NDArray[np.datetime64]
    inputs: tuple[RegimeInputs | None, ...]
    first: int

    def at(self, date: DateLike) -> RegimeInputs | None:
        """The inputs on ``date``; ValueError when the date is not on the axis."""
        d = np.datetime64(_as_date(date), "D")
        i = int(np.searchsorted(self.dates, d))
        if i >= self.dates.size or self.dates[i] != d:
            raise ValueError(f"date: {date} is not in the series")
        return self.inputs[i]


def regime_inputs_series(
    dates: ArrayLike,
    prices: ArrayLike,
    *,
    decay: float = 0.94,
    seed_window: int = 30,
    long_run_window: int = 3650,
    min_history: int = 30,
    dvol: tuple[ArrayLike, ArrayLike] | None = None,
    funding: tuple[ArrayLike, ArrayLike] | None = None,
    depth: tuple[ArrayLike, ArrayLike] | None = None,
    depth_reference: float | None = None,
    floor_margin: ArrayLike | None = None,
    funding_window: int = 7,
    max_staleness_days: int = 3,
) -> RegimeSeries:
    """Build each day's :class:`RegimeInputs` from data up to that day only.

    Day ``i`` (close ``prices[i]``) gets

    - ``ewma_vol``: ``sqrt(sigma2[i])`` of :func:`margin_engine.maths.volatility.ewma_variance`
      on the per-day returns ending on days ``1..i`` (the forecast for day ``i + 1``), seeded with
      the variance of the first ``seed_window`` returns;
    - ``long_run_vol``: root mean square of the last ``min(i, long_run_window)`` per-day returns
      (zero mean, like the EWMA);
    - ``dvol``/``depth``: the last observation dated on or before day ``i`` and at most
      ``max_staleness_days`` old (else None); depth divided by ``depth_reference`` when given;
    - ``funding``: the mean of the funding observations of the ``funding_window`` days ending
      at the last one on or before day ``i`` (same staleness rule): daily funding is noisy and
      a regime signal should reflect *sustained* crowding;
    - ``floor_margin``: ``floor_margin[i]`` when an aligned array is given (NaN -> None).

    Days before ``max(min_history, seed_window)`` get None (the seed uses those returns).

    Parameters
    ----------
    dates : array (n,)
        Strictly increasing days (datetime64, ISO strings).
    prices : array (n,)
        Closes > 0 (quote currency per unit).
    decay : float
        EWMA λ (0.94 = RiskMetrics daily).
    seed_window : int
        Returns used for the EWMA seed (>= 2).
    long_run_window : int
        Returns in the long-run RMS (3650 ≈ 10 years, EMIR Art. 28(c)).
    min_history : int
        Least number of returns before inputs are produced.
    dvol, funding, depth : (dates, values) pairs, optional
        DVOL as an annualised decimal (``load_dvol`` gives that), funding in decimal per
        interval, depth in any unit (relative to ``depth_reference``) or already relative.
    depth_reference : float, optional
        Normal depth, in the depth series' unit.
    floor_margin : array (n,), optional
        APC floor amounts aligned with ``dates``.
    funding_window : int
        Days averaged in the funding signal (1 = the last observation).
    max_staleness_days : int
        Oldest auxiliary observation still used.
    """
    days = _day_axis(dates, "dates")
    r, _ = daily_log_returns(dates, prices)
    n = days.size
    if not (2 <= seed_window <= r.size):
        raise ValueError(f"seed_window: must lie in [2, {r.size}] (returns), got {seed_window}")
    if long_run_window < 1:
        raise ValueError(f"long_run_window: must be >= 1, got {long_run_window}")
    if min_history < 1:
        raise ValueError(f"min_history: must be >= 1, got {min_history}")
    if funding_window < 1:
        raise ValueError(f"funding_window: must be >= 1, got {funding_window}")
    if max_staleness_days < 0:
        raise ValueError(f"max_staleness_days: must be >= 0, got {max_staleness_days}")
    if depth_reference is not None:
        _finite(depth_reference, "depth_reference", positive=True)
    fm: FloatArray | None = None
    if floor_margin is not None:
        fm = np.asarray(floor_margin, dtype=np.float64)
        if fm.shape != (n,):
            raise ValueError(f"floor_margin: must be aligned with dates ({n},), got {fm.shape}")
    sigma = np.sqrt(ewma_variance(r, decay, seed_window=seed_window))  # (n,): row i <-> day i
    csum = np.concatenate([[0.0], np.cumsum(r * r)])
    dv = _as_of(days, dvol, "dvol", max_staleness_days)
    fu = _as_of(days, funding, "funding", max_staleness_days, funding_window)
    de = _as_of(days, depth, "depth", max_staleness_days)
    first = max(min_history, seed_window)
    out: list[RegimeInputs | None] = []
    for i in range(n):
        if i < first:
            out.append(None)
            continue
        lo = max(0, i - long_run_window)
        lr = math.sqrt((csum[i] - csum[lo]) / (i - lo))
        depth_i = de[i]
        if depth_i is not None and depth_reference is not None:
            depth_i = depth_i / depth_reference
        floor_i = None
        if fm is not None and not math.isnan(float(fm[i])):
            floor_i = float(fm[i])
        out.append(
            RegimeInputs(
                ewma_vol=float(sigma[i]),
                long_run_vol=lr,
                dvol=dv[i],
                funding=fu[i],
                depth=depth_i,
                floor_margin=floor_i,
            )
        )
    d = days.astype("datetime64[D]")
    d.setflags(write=False)
    return RegimeSeries(dates=d, inputs=tuple(out), first=min(first, n))
