"""Derive v2 Portfolio Margin Risk Manager (PMRM_2): the pure computation core.

This module re-derives, from the published methodology (research/crypto-venues.md §6.3–§6.4),
the margin of one Derive PMRM_2 portfolio: one underlying with its cash, perpetual(s), options
grouped by expiry and collateral assets. It works on the portfolio-case structure that Derive
publishes with its test suite (``derivexyz/v2-core``, ``test/risk-managers/unit-tests/PMRM_2/
portfolio_cases``) and returns every intermediate. The registered model
(:mod:`margin_engine.models.venues.derive_pmrm`) maps the engine's market and account onto it.

Units: money in USD (the stablecoin the portfolio settles in), ``spot``/``forward``/``strike``
in USD per unit of underlying, ``amount`` in units of underlying (long > 0), times in seconds
(ACT/365: one year = 31 536 000 s), vols and rates annualised decimals.

Sign convention (Derive's, §6.1): a *margin* is signed — ``>= 0`` means the portfolio is
sufficiently collateralised, ``-100`` means 100 USD more is needed. Scenario P&Ls are relative to
the unshocked mark-to-market. Contingencies are reported as non-negative charges.

The margin of the portfolio::

    minSPAN  = min(basis contingency, P&L of every scenario)                 (<= 0)
    factor   = mmFactor (MM) | imFactor + max(pegLossThreshold − stable, 0)·pegLossFactor (IM)
    MM       = minSPAN·mmFactor − MMcont + MtM + cash
    IM       = minSPAN·factor_IM − IMcont − MMcont + MtM + cash

Numbers are float64: the published cases are produced by a float64 reference model and checked
by the protocol's Solidity test to 1e-8 relative (``assertApproxEqRel(.., 1e10)`` on 1e18 fixed
point); this implementation reproduces them to about 1e-12 relative (see the tests).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields
from typing import Any, Literal

from margin_engine.maths.black76 import price_usd

SECONDS_PER_YEAR = 31_536_000.0
"""Derive's ``Black76.annualise``: 365 days."""
THIRTY_DAYS = 30.0 * 86_400.0
FORWARD_PORTION_WINDOW = 1_800.0
"""Seconds before expiry over which part of the forward is already fixed by the settlement
average (the case loader splits the forward over this window, as Derive's test harness does)."""

REGULAR_SPOT_RANGE = 0.18 + 1e-12
"""Largest spot move (as a fraction) of a *regular* scenario in Derive's grid (reporting only)."""

VolShock = Literal["up", "down", "none", "linear", "abs"]
ScenarioKind = Literal["regular", "tail", "skew"]
_VOL_SHOCKS: tuple[str, ...] = ("up", "down", "none", "linear", "abs")


# ---------------------------------------------------------------------------------------------
# Inputs


@dataclass(frozen=True)
class Scenario:
    """One spot × vol scenario.

    Attributes
    ----------
    spot_shock : float
        Multiplier on the spot (1.18 = spot up 18 %); applied to the variable part of every
        forward, to the perp price and to risk-cancelling collateral.
    vol_shock : {"up", "down", "none", "linear", "abs"}
        Vol move: the per-expiry up/down multipliers, none, or a skew rotation.
    dampening : float
        Multiplier on the scenario's P&L (tail scenarios < 1).
    """

    spot_shock: float
    vol_shock: VolShock
    dampening: float = 1.0

    def __post_init__(self) -> None:
        if self.vol_shock not in _VOL_SHOCKS:
            raise ValueError(f"vol_shock: {self.vol_shock!r} is not one of {_VOL_SHOCKS}")
        if not (math.isfinite(self.spot_shock) and self.spot_shock > 0.0):
            raise ValueError(f"spot_shock: must be a finite number > 0, got {self.spot_shock!r}")
        if not (math.isfinite(self.dampening) and self.dampening >= 0.0):
            raise ValueError(f"dampening: must be a finite number >= 0, got {self.dampening!r}")

    @property
    def kind(self) -> ScenarioKind:
        """For reporting only: ``skew`` (linear/abs vol shock), ``regular`` (undampened, spot
        within ±18 %, the range of Derive's regular grid), else ``tail``."""
        if self.vol_shock in ("linear", "abs"):
            return "skew"
        regular = self.dampening == 1.0 and abs(self.spot_shock - 1.0) <= REGULAR_SPOT_RANGE
        return "regular" if regular else "tail"


@dataclass(frozen=True)
class OptionHolding:
    """A European option position of the portfolio (cash-settled in USD)."""

    strike: float
    is_call: bool
    amount: float
    vol: float

    def __post_init__(self) -> None:
        if not (math.isfinite(self.strike) and self.strike > 0.0):
            raise ValueError(f"strike: must be a finite number > 0, got {self.strike!r}")
        if not math.isfinite(self.amount):
            raise ValueError(f"amount: not a finite number ({self.amount!r})")
        if not (math.isfinite(self.vol) and self.vol >= 0.0):
            raise ValueError(f"vol: must be a finite number >= 0, got {self.vol!r}")


@dataclass(frozen=True)
class ExpiryHoldings:
    """The options of one expiry with that expiry's feeds.

    Attributes
    ----------
    sec_to_expiry : float
        Seconds to expiry (0 once expired).
    forward_fixed, forward_variable : float
        The forward split into the part already fixed by the settlement average and the part
        that moves with spot (``forward = fixed + variable``; shocked: ``fixed + variable·s``).
    rate : float
        Annual rate of the expiry's feed (floored at 0, as Derive does).
    """

    sec_to_expiry: float
    forward_fixed: float
    forward_variable: float
    rate: float
    options: tuple[OptionHolding, ...]
    forward_confidence: float = 1.0
    rate_confidence: float = 1.0
    vol_confidence: float = 1.0

    def __post_init__(self) -> None:
        if not (math.isfinite(self.sec_to_expiry) and self.sec_to_expiry >= 0.0):
            raise ValueError(f"sec_to_expiry: must be >= 0, got {self.sec_to_expiry!r}")
        if not (self.forward_fixed >= 0.0 and self.forward_variable >= 0.0
                and self.forward_fixed + self.forward_variable > 0.0):
            raise ValueError("forward_fixed, forward_variable: must be >= 0 with a sum > 0")
        if not math.isfinite(self.rate):
            raise ValueError(f"rate: not a finite number ({self.rate!r})")

    @property
    def forward(self) -> float:
        return self.forward_variable + self.forward_fixed

    @property
    def tau(self) -> float:
        """Years to expiry (``sec / 31 536 000``)."""
        return self.sec_to_expiry / SECONDS_PER_YEAR


@dataclass(frozen=True)
class PerpHolding:
    """A perpetual position: ``position`` units at ``price`` (the perp mark, USD)."""

    position: float
    price: float
    confidence: float = 1.0


@dataclass(frozen=True)
class CollateralHolding:
    """A collateral asset: ``amount`` units at ``price`` USD, with Derive's collateral params.

    ``risk_cancelling`` collateral (the underlying itself, or a token tracking it) moves with the
    spot shock in every scenario; haircuts are charged as MM/IM contingencies.
    """

    name: str
    amount: float
    price: float
    confidence: float = 1.0
    risk_cancelling: bool = False
    mm_haircut: float = 0.0
    im_haircut: float = 0.0


@dataclass(frozen=True)
class Portfolio:
    """One PMRM_2 portfolio (one underlying).

    ``perp_value`` is the perps' unsettled P&L plus funding (USD), part of the MtM only.
    """

    spot: float
    cash: float = 0.0
    spot_confidence: float = 1.0
    stable_price: float = 1.0
    perps: tuple[PerpHolding, ...] = ()
    perp_value: float = 0.0
    expiries: tuple[ExpiryHoldings, ...] = ()
    collaterals: tuple[CollateralHolding, ...] = ()

    def __post_init__(self) -> None:
        if not (math.isfinite(self.spot) and self.spot > 0.0):
            raise ValueError(f"spot: must be a finite number > 0, got {self.spot!r}")
        if not (math.isfinite(self.stable_price) and self.stable_price > 0.0):
            raise ValueError(f"stable_price: must be > 0, got {self.stable_price!r}")


@dataclass(frozen=True)
class CoreParams:
    """Every PMRM_2 parameter (Derive's ``IPMRMLib_2`` structs, flattened, snake_case)."""

    # VolShockParameters
    vol_range_up: float = 0.5
    vol_range_down: float = 0.3
    short_term_power: float = 0.3
    long_term_power: float = 0.13
    dte_floor_days: float = 1.0
    min_vol_up_shock: float = 0.4
    # MarginParameters
    im_factor: float = 1.0
    mm_factor: float = 0.8
    short_rate_mult_scale: float = 0.0
    long_rate_mult_scale: float = 0.0
    short_rate_add_scale: float = 0.16
    long_rate_add_scale: float = 0.16
    short_base_static_discount: float = 1.05
    long_base_static_discount: float = 0.95
    # BasisContingencyParameters
    basis_spot_up: float = 1.045
    basis_spot_down: float = 0.955
    basis_cont_add_factor: float = 0.5
    basis_cont_mult_factor: float = 2.0
    # OtherContingencyParameters
    peg_loss_threshold: float = 0.99
    peg_loss_factor: float = 4.0
    conf_threshold: float = 0.55
    conf_margin: float = 1.0
    mm_perp_percent: float = 0.03
    im_perp_percent: float = 0.01
    mm_option_percent: float = 0.003
    im_option_percent: float = 0.002
    # SkewShockParameters
    linear_base_cap: float = 0.25
    abs_base_cap: float = 0.25
    linear_c_base: float = -0.1
    abs_c_base: float = -0.1
    min_k_star: float = 0.01
    width_scale: float = 4.0
    vol_param_static: float = 0.6
    vol_param_scale: float = 0.0

    def __post_init__(self) -> None:
        for f in fields(self):
            v = getattr(self, f.name)
            if not math.isfinite(v):
                raise ValueError(f"{f.name}: not a finite number ({v!r})")


# ---------------------------------------------------------------------------------------------
# Results


@dataclass(frozen=True)
class OptionResult:
    """Per-option intermediates: marks, shocked vols, skew rotation, scenario values."""

    strike: float
    is_call: bool
    amount: float
    vol: float
    mtm: float
    """``amount × price`` at the unshocked forward and vol (discounted at the feed rate)."""
    vol_up: float
    """Vol used in vol-up scenarios: ``max(minVolUpShock, vol·volShockUp)``."""
    vol_down: float
    """Vol used in vol-down scenarios: ``vol·volShockDown``."""
    k: float
    """``ln(K/F)`` at the unshocked forward."""
    k_star: float
    linear_mult_cap: float
    abs_mult_cap: float
    linear_multiplier: float
    abs_multiplier: float
    values: tuple[float, ...]
    """``amount × price`` in each scenario, before the static discount."""
    basis_up_value: float
    basis_down_value: float


@dataclass(frozen=True)
class ExpiryResult:
    """Per-expiry intermediates."""

    sec_to_expiry: float
    tau: float
    forward: float
    rate: float
    """The feed's rate floored at 0 (Derive's ``_initialiseExpiries``)."""
    feed_rate: float
    """The feed's rate as given."""
    discount: float
    """``exp(−rate·tau)``."""
    mtm: float
    discounted_mtm: float
    """``mtm`` times the static discount of its sign (``OptionMTMPerExpiryDiscounted``)."""
    basis_up_mtm: float
    basis_down_mtm: float
    basis_factor: float
    """``basisContAddFactor + basisContMultFactor·tau``."""
    basis_contingency: float
    """``min(up − mtm, down − mtm, 0)·basis_factor`` (<= 0)."""
    vol_shock_up: float
    vol_shock_down: float
    static_discount_pos: float
    static_discount_neg: float
    net_options: float
    """``Σ|amount|``."""
    naked_shorts: float
    """Short amount per strike not offset by a long at the same strike, summed."""
    min_confidence: float
    mm_option_contingency: float
    im_option_contingency: float
    oracle_contingency: float
    shocked_mtm: tuple[float, ...]
    """Scenario MtM of the expiry after the static discount."""
    pnl: tuple[float, ...]
    """``(shocked_mtm − mtm)·dampening`` per scenario; skew scenarios ``−|·|``."""
    options: tuple[OptionResult, ...]


@dataclass(frozen=True)
class CollateralResult:
    name: str
    value: float
    """``amount·price / stable_price`` (USD of the settlement stablecoin)."""
    min_confidence: float
    mm_contingency: float
    im_contingency: float
    oracle_contingency: float
    pnl: tuple[float, ...]
    """``value·(spot_shock − 1)·dampening`` per scenario when risk-cancelling, else 0."""


@dataclass(frozen=True)
class PMRMResult:
    """Every intermediate of a PMRM_2 margin calculation (Derive's sign convention)."""

    scenarios: tuple[Scenario, ...]
    scenario_pnl: tuple[float, ...]
    """``getScenarioPnL`` for each scenario: perp + expiries + collateral, relative to MtM."""
    perp_pnl: tuple[float, ...]
    basis_contingency: float
    """Σ over expiries (<= 0); the initial value of ``minSPAN``."""
    min_span: float
    worst_index: int
    """Index of the worst scenario; ``len(scenarios)`` when the basis contingency is worst."""
    worst_regular: int | None
    worst_tail: int | None
    worst_skew: int | None
    expiries: tuple[ExpiryResult, ...]
    collaterals: tuple[CollateralResult, ...]
    option_mtm: float
    perp_value: float
    collateral_mtm: float
    cash: float
    total_mtm: float
    """``perp_value + option_mtm + collateral_mtm`` (cash is added separately)."""
    portfolio_min_confidence: float
    mm_perp_contingency: float
    im_perp_contingency: float
    mm_option_contingency: float
    im_option_contingency: float
    mm_collateral_contingency: float
    im_collateral_contingency: float
    oracle_contingency: float
    """Confidence contingency (IM only): perp, per-expiry options and collateral parts."""
    perp_oracle_contingency: float
    mm_contingency: float
    im_contingency: float
    """IM-only contingencies (the IM additionally pays ``mm_contingency``)."""
    mm_loss_factor: float
    im_loss_factor: float
    """``imFactor`` plus the stablecoin peg-loss add-on."""
    maintenance_margin: float
    initial_margin: float

    @property
    def mm_charge(self) -> float:
        """Maintenance requirement excluding MtM and cash: ``MtM + cash − MM`` (>= 0)."""
        return -self.min_span * self.mm_loss_factor + self.mm_contingency

    @property
    def im_charge(self) -> float:
        """Initial requirement excluding MtM and cash: ``MtM + cash − IM`` (>= 0)."""
        return -self.min_span * self.im_loss_factor + self.im_contingency + self.mm_contingency


# ---------------------------------------------------------------------------------------------
# Computation


def _price(forward: float, strike: float, tau: float, vol: float, is_call: bool,
           discount: float) -> float:
    """Black-76 price (USD per unit), discounted with the expiry's factor."""
    return discount * price_usd(forward, strike, tau, vol, is_call, 0.0)


def vol_shock_multipliers(sec_to_expiry: float, p: CoreParams) -> tuple[float, float]:
    """Derive's ``_addVolShocks``: ``(up, down)`` vol multipliers of an expiry.

    ``mult = (30 d / max(sec, dteFloor))^(shortTermPower if sec <= 30 d else longTermPower)``;
    ``up = 1 + volRangeUp·mult``; ``down = max(0, 1 − volRangeDown·mult)``.
    """
    floor = p.dte_floor_days * 86_400.0
    if max(sec_to_expiry, floor) <= 0.0:
        raise ValueError("dte_floor_days: 0 with an expired expiry leaves 30 d / 0 undefined "
                         "(Derive's _addVolShocks reverts)")
    base = THIRTY_DAYS / max(sec_to_expiry, floor)
    power = p.short_term_power if sec_to_expiry <= THIRTY_DAYS else p.long_term_power
    mult = base ** power
    return 1.0 + p.vol_range_up * mult, max(0.0, 1.0 - p.vol_range_down * mult)


def static_discounts(tau: float, rate: float, discount: float,
                     p: CoreParams) -> tuple[float, float]:
    """Derive's ``_addStaticDiscount``: ``(pos, neg)`` factors on a shocked expiry MtM.

    ``pos = longBase·exp(−tau·(rate·longMult + longAdd))`` for MtM >= 0;
    ``neg = min(1/discount, shortBase / exp(−tau·(rate·shortMult + shortAdd)))`` for MtM < 0.
    """
    pos = p.long_base_static_discount * math.exp(
        -(tau * (rate * p.long_rate_mult_scale + p.long_rate_add_scale)))
    neg = p.short_base_static_discount / math.exp(
        -(tau * (rate * p.short_rate_mult_scale + p.short_rate_add_scale)))
    return pos, min(1.0 / discount, neg)


def skew_terms(strike: float, forward: float, tau: float,
               p: CoreParams) -> tuple[float, float, float, float, float, float]:
    """Derive's skew rotation for one strike (``_getKStar``, ``_getExpirySkewedShockedMTM``).

    Returns ``(k, k_star, linear_cap, abs_cap, linear_multiplier, abs_multiplier)`` with
    ``k = ln(K/F)``, ``cap = CBase·√tau + BaseCap``,
    ``k* = max(minKStar, √tau·widthScale·(volParamStatic + √tau·volParamScale))`` and
    ``multiplier = 1 + clamp(x·cap/k*, ±cap)`` with ``x = k`` (linear) or ``|k|`` (abs).
    """
    sqrt_tau = math.sqrt(tau)
    k = math.log(strike / forward)
    lin_cap = p.linear_c_base * sqrt_tau + p.linear_base_cap
    abs_cap = p.abs_c_base * sqrt_tau + p.abs_base_cap
    k_star = max(p.min_k_star,
                 sqrt_tau * p.width_scale * (p.vol_param_static + sqrt_tau * p.vol_param_scale))

    def mult(x: float, cap: float) -> float:
        r = x * cap / k_star
        return 1.0 + (min(cap, r) if x >= 0.0 else max(-cap, r))

    return k, k_star, lin_cap, abs_cap, mult(k, lin_cap), mult(abs(k), abs_cap)


def naked_shorts(options: Sequence[OptionHolding]) -> float:
    """Short amount not offset by a long at the same strike (calls and puts pooled), summed.

    Derive's ``_addOptionContingency``: per strike, ``max(shorts − longs, 0)`` where the pairing
    is between holdings at the same strike regardless of call/put.
    """
    by_strike: dict[float, tuple[float, float]] = {}
    for o in options:
        longs, shorts = by_strike.get(o.strike, (0.0, 0.0))
        if o.amount > 0:
            longs += o.amount
        elif o.amount < 0:
            shorts -= o.amount
        by_strike[o.strike] = (longs, shorts)
    return sum(max(s - lg, 0.0) for lg, s in by_strike.values())


def _confidence_contingency(min_conf: float, notional: float, p: CoreParams) -> float:
    if min_conf < p.conf_threshold:
        return (1.0 - min_conf) * p.conf_margin * notional
    return 0.0


def _expiry(e: ExpiryHoldings, scenarios: Sequence[Scenario], portfolio_conf: float,
            spot: float, p: CoreParams) -> ExpiryResult:
    tau = e.tau
    rate = max(e.rate, 0.0)
    discount = math.exp(-rate * e.sec_to_expiry / SECONDS_PER_YEAR)
    fwd = e.forward
    up, down = vol_shock_multipliers(e.sec_to_expiry, p)
    pos, neg = static_discounts(tau, rate, discount, p)

    def fwd_at(shock: float) -> float:
        return e.forward_variable * shock + e.forward_fixed

    f_up, f_down = fwd_at(p.basis_spot_up), fwd_at(p.basis_spot_down)
    opts: list[OptionResult] = []
    for o in e.options:
        v_up = max(p.min_vol_up_shock, o.vol * up)
        v_down = o.vol * down
        k, k_star, lin_cap, abs_cap, lin_m, abs_m = skew_terms(o.strike, fwd, tau, p)
        vals: list[float] = []
        for s in scenarios:
            if s.vol_shock in ("linear", "abs"):
                # Skew scenarios rotate the vol and price at the unshocked forward.
                if s.spot_shock == 1.0:
                    m = lin_m if s.vol_shock == "linear" else abs_m
                else:  # only reachable with spot_shocked_skew="reference" (see compute)
                    m = _reference_spot_shocked_multiplier(s, k, k_star, lin_cap, abs_cap)
                vol = o.vol * max(m, 0.0)
                f = fwd
            else:
                vol = v_up if s.vol_shock == "up" else v_down if s.vol_shock == "down" else o.vol
                f = fwd_at(s.spot_shock)
            vals.append(o.amount * _price(f, o.strike, tau, vol, o.is_call, discount))
        opts.append(OptionResult(
            strike=o.strike, is_call=o.is_call, amount=o.amount, vol=o.vol,
            mtm=o.amount * _price(fwd, o.strike, tau, o.vol, o.is_call, discount),
            vol_up=v_up, vol_down=v_down, k=k, k_star=k_star, linear_mult_cap=lin_cap,
            abs_mult_cap=abs_cap, linear_multiplier=lin_m, abs_multiplier=abs_m,
            values=tuple(vals),
            basis_up_value=o.amount * _price(f_up, o.strike, tau, o.vol, o.is_call, discount),
            basis_down_value=o.amount * _price(f_down, o.strike, tau, o.vol, o.is_call,
                                               discount)))
    mtm = sum(r.mtm for r in opts)
    b_up = sum(r.basis_up_value for r in opts)
    b_down = sum(r.basis_down_value for r in opts)
    factor = p.basis_cont_add_factor + p.basis_cont_mult_factor * tau
    basis = min(b_up - mtm, b_down - mtm, 0.0) * factor
    shocked: list[float] = []
    pnl: list[float] = []
    for i, s in enumerate(scenarios):
        raw = sum(r.values[i] for r in opts)
        disc = raw * (pos if raw >= 0.0 else neg)
        x = (disc - mtm) * s.dampening
        shocked.append(disc)
        pnl.append(-abs(x) if s.kind == "skew" else x)
    min_conf = min(e.forward_confidence, e.rate_confidence, e.vol_confidence, portfolio_conf)
    net = sum(abs(o.amount) for o in e.options)
    naked = naked_shorts(e.options)
    return ExpiryResult(
        sec_to_expiry=e.sec_to_expiry, tau=tau, forward=fwd, rate=rate, feed_rate=e.rate,
        discount=discount,
        mtm=mtm, discounted_mtm=mtm * (pos if mtm >= 0.0 else neg), basis_up_mtm=b_up,
        basis_down_mtm=b_down, basis_factor=factor, basis_contingency=basis,
        vol_shock_up=up, vol_shock_down=down, static_discount_pos=pos,
        static_discount_neg=neg, net_options=net, naked_shorts=naked, min_confidence=min_conf,
        mm_option_contingency=naked * spot * p.mm_option_percent,
        im_option_contingency=naked * spot * p.im_option_percent,
        oracle_contingency=_confidence_contingency(min_conf, net * spot, p),
        shocked_mtm=tuple(shocked), pnl=tuple(pnl), options=tuple(opts))


def _reference_spot_shocked_multiplier(s: Scenario, k: float, k_star: float, lin_cap: float,
                                       abs_cap: float) -> float:
    """The vol multiplier Derive's reference model applies in a skew scenario that also moves
    spot (portfolio case test_67, which the protocol's own test skips as an invalid set-up): the
    moneyness is ``|k|`` only for ABS, and the cap is the linear one only for LINEAR, both
    compared by name, so a spot-shocked LINEAR scenario ("LINEAR_SPOT_SHOCK") rotates the signed
    ``k`` with the ABS cap, and a spot-shocked ABS one rotates ``|k|`` with the ABS cap."""
    x = abs(k) if s.vol_shock == "abs" else k
    r = x * abs_cap / k_star
    return 1.0 + (min(abs_cap, r) if x >= 0.0 else max(-abs_cap, r))


def _argmin(values: Sequence[float], idx: Sequence[int]) -> int | None:
    """First index (among ``idx``) of the smallest value; ``None`` when ``idx`` is empty."""
    best: int | None = None
    for i in idx:
        if best is None or values[i] < values[best]:
            best = i
    return best


def compute(portfolio: Portfolio, params: CoreParams, scenarios: Sequence[Scenario], *,
            spot_shocked_skew: Literal["reject", "reference"] = "reject") -> PMRMResult:
    """Margin of one PMRM_2 portfolio with every intermediate.

    Parameters
    ----------
    portfolio : Portfolio
        Cash, perps, options by expiry and collateral of one underlying (USD).
    params : CoreParams
        The PMRM_2 parameter set.
    scenarios : sequence of Scenario
        The spot × vol scenarios (at least one).
    spot_shocked_skew : {"reject", "reference"}
        A skew (linear/abs) scenario whose spot shock is not 1: ``"reject"`` raises
        ``ValueError`` as Derive's ``setScenarios`` does; ``"reference"`` reproduces Derive's
        reference model (see :func:`_reference_spot_shocked_multiplier`).

    Returns
    -------
    PMRMResult
        Signed IM/MM (Derive convention) and every intermediate.
    """
    scen = tuple(scenarios)
    if not scen:
        raise ValueError("scenarios: at least one scenario is needed")
    if spot_shocked_skew not in ("reject", "reference"):
        raise ValueError(f"spot_shocked_skew: {spot_shocked_skew!r} is not 'reject' or "
                         "'reference'")
    for i, s in enumerate(scen):
        if s.kind == "skew" and s.spot_shock != 1.0 and spot_shocked_skew == "reject":
            raise ValueError(f"scenarios[{i}].spot_shock: a {s.vol_shock} skew scenario must "
                             f"have spot_shock 1 (Derive's setScenarios), got {s.spot_shock}")
    p = params
    spot = portfolio.spot
    n = len(scen)
    # Derive: the spot confidence, lowered by the perp's when a perp is held (collateral is
    # compared with the spot confidence alone, as in _arrangeAssets).
    held_perps = [h for h in portfolio.perps if h.position != 0.0]
    port_conf = portfolio.spot_confidence
    for h in held_perps:
        port_conf = min(port_conf, h.confidence)

    perp_notional = sum(abs(h.position) for h in held_perps) * spot
    mm_perp = perp_notional * p.mm_perp_percent
    im_perp = perp_notional * p.im_perp_percent
    perp_oracle = _confidence_contingency(port_conf, perp_notional, p)
    perp_pnl = tuple(sum(h.position * ((s.spot_shock - 1.0) * h.price) for h in held_perps)
                     * s.dampening for s in scen)

    expiries = tuple(_expiry(e, scen, port_conf, spot, p) for e in portfolio.expiries)

    colls: list[CollateralResult] = []
    for c in portfolio.collaterals:
        value = c.amount * c.price / portfolio.stable_price
        conf = min(c.confidence, portfolio.spot_confidence)
        cp = tuple(value * (s.spot_shock - 1.0) * s.dampening if c.risk_cancelling else 0.0
                   for s in scen)
        colls.append(CollateralResult(
            name=c.name, value=value, min_confidence=conf, mm_contingency=value * c.mm_haircut,
            im_contingency=value * c.im_haircut,
            oracle_contingency=_confidence_contingency(conf, value, p), pnl=cp))

    scenario_pnl = tuple(perp_pnl[i] + sum(e.pnl[i] for e in expiries)
                         + sum(c.pnl[i] for c in colls) for i in range(n))
    basis = sum(e.basis_contingency for e in expiries)
    min_span = basis
    worst = n
    for i, v in enumerate(scenario_pnl):
        if v < min_span:
            min_span, worst = v, i

    option_mtm = sum(e.mtm for e in expiries)
    collateral_mtm = sum(c.value for c in colls)
    total_mtm = portfolio.perp_value + option_mtm + collateral_mtm
    mm_option = sum(e.mm_option_contingency for e in expiries)
    im_option = sum(e.im_option_contingency for e in expiries)
    mm_coll = sum(c.mm_contingency for c in colls)
    im_coll = sum(c.im_contingency for c in colls)
    oracle = perp_oracle + sum(e.oracle_contingency for e in expiries) + sum(
        c.oracle_contingency for c in colls)
    mm_cont = mm_perp + mm_option + mm_coll
    im_cont = im_perp + im_option + im_coll + oracle
    peg = max(p.peg_loss_threshold - portfolio.stable_price, 0.0) * p.peg_loss_factor
    im_factor = p.im_factor + peg
    mm = min_span * p.mm_factor - mm_cont + total_mtm + portfolio.cash
    im = min_span * im_factor - im_cont - mm_cont + total_mtm + portfolio.cash
    kinds = [s.kind for s in scen]
    return PMRMResult(
        scenarios=scen, scenario_pnl=scenario_pnl, perp_pnl=perp_pnl, basis_contingency=basis,
        min_span=min_span, worst_index=worst,
        worst_regular=_argmin(scenario_pnl, [i for i, k in enumerate(kinds) if k == "regular"]),
        worst_tail=_argmin(scenario_pnl, [i for i, k in enumerate(kinds) if k == "tail"]),
        worst_skew=_argmin(scenario_pnl, [i for i, k in enumerate(kinds) if k == "skew"]),
        expiries=expiries, collaterals=tuple(colls), option_mtm=option_mtm,
        perp_value=portfolio.perp_value, collateral_mtm=collateral_mtm, cash=portfolio.cash,
        total_mtm=total_mtm, portfolio_min_confidence=port_conf, mm_perp_contingency=mm_perp,
        im_perp_contingency=im_perp, mm_option_contingency=mm_option,
        im_option_contingency=im_option, mm_collateral_contingency=mm_coll,
        im_collateral_contingency=im_coll, oracle_contingency=oracle,
        perp_oracle_contingency=perp_oracle, mm_contingency=mm_cont, im_contingency=im_cont,
        mm_loss_factor=p.mm_factor, im_loss_factor=im_factor, maintenance_margin=mm,
        initial_margin=im)


# ---------------------------------------------------------------------------------------------
# Derive's published portfolio cases (``portfolio_cases/*.json``)

_CASE_VOL_SHOCK: dict[str, VolShock] = {"Up": "up", "Down": "down", "None": "none",
                                        "LINEAR": "linear", "ABS": "abs"}
_CASE_PARAMS: dict[str, tuple[str, str]] = {
    # core field: (parameter block, case key)
    "vol_range_up": ("VolShock", "VOLRANGEUP"),
    "vol_range_down": ("VolShock", "VOLRANGEDOWN"),
    "short_term_power": ("VolShock", "SHORTTERMPOWER"),
    "long_term_power": ("VolShock", "LONGTERMPOWER"),
    "dte_floor_days": ("VolShock", "DTE_FLOOR"),
    "min_vol_up_shock": ("VolShock", "MIN_VOL_EVAL_SHOCKED"),
    "im_factor": ("Margin", "IM_LOSS_FACTOR"),
    "mm_factor": ("Margin", "MM_LOSS_FACTOR"),
    "short_rate_mult_scale": ("Margin", "SHORT_RATE_MULTSCALE"),
    "long_rate_mult_scale": ("Margin", "LONG_RATE_MULTSCALE"),
    "short_rate_add_scale": ("Margin", "SHORT_RATE_ADDSCALE"),
    "long_rate_add_scale": ("Margin", "LONG_RATE_ADDSCALE"),
    "short_base_static_discount": ("Margin", "BASE_STATIC_DISCOUNT_NEG"),
    "long_base_static_discount": ("Margin", "BASE_STATIC_DISCOUNT"),
    "basis_spot_up": ("BasisContingency", "SCENARIO_SPOT_UP"),
    "basis_spot_down": ("BasisContingency", "SCENARIO_SPOT_DOWN"),
    "basis_cont_add_factor": ("BasisContingency", "BASIS_CONT_ADD_FACTOR"),
    "basis_cont_mult_factor": ("BasisContingency", "BASIS_CONT_MULT_FACTOR"),
    "peg_loss_threshold": ("OtherContingency", "PEG_LOSS_THRESHOLD"),
    "peg_loss_factor": ("OtherContingency", "PEG_LOSS_FACTOR"),
    "conf_threshold": ("OtherContingency", "CONF_THRESHOLD"),
    "conf_margin": ("OtherContingency", "CONF_MARGIN"),
    "mm_perp_percent": ("OtherContingency", "MM_PERP_PERCENT"),
    "im_perp_percent": ("OtherContingency", "IM_PERP_PERCENT"),
    "mm_option_percent": ("OtherContingency", "MM_OPTION_PERCENT"),
    "im_option_percent": ("OtherContingency", "IM_OPTION_PERCENT"),
    "linear_base_cap": ("SkewShock", "LINEAR_SCALE_CAP"),
    "abs_base_cap": ("SkewShock", "ABS_SCALE_CAP"),
    "linear_c_base": ("SkewShock", "LINEAR_CBASE"),
    "abs_c_base": ("SkewShock", "ABS_CBASE"),
    "min_k_star": ("SkewShock", "MIN_K_STAR"),
    "width_scale": ("SkewShock", "MIN_WIDTH_SCALE"),
    "vol_param_static": ("SkewShock", "VOL_PARAM_STATIC"),
    "vol_param_scale": ("SkewShock", "VOL_PARAM_SCALE"),
}


def _num(x: Any, path: str) -> float:
    """A case number (JSON number or decimal string) as float; ``ValueError`` names the path."""
    try:
        v = float(x)
    except (TypeError, ValueError):
        raise ValueError(f"{path}: not a number ({x!r})") from None
    if not math.isfinite(v):
        raise ValueError(f"{path}: not a finite number ({x!r})")
    return v


def case_params(case: Mapping[str, Any]) -> CoreParams:
    """The :class:`CoreParams` of a published case (``Parameters`` block)."""
    blocks = case["Parameters"]
    return CoreParams(**{name: _num(blocks[b][key], f"Parameters.{b}.{key}")
                         for name, (b, key) in _CASE_PARAMS.items()})


def case_scenarios(case: Mapping[str, Any]) -> tuple[Scenario, ...]:
    """The scenarios of a published case (``Parameters.Scenarios``, in order)."""
    out = []
    for i, s in enumerate(case["Parameters"]["Scenarios"]):
        at = f"Parameters.Scenarios[{i}]"
        direction = s["VolShockDirection"]
        if direction not in _CASE_VOL_SHOCK:
            raise ValueError(f"{at}.VolShockDirection: unknown {direction!r}")
        out.append(Scenario(_num(s["SpotShock"], f"{at}.SpotShock"), _CASE_VOL_SHOCK[direction],
                            _num(s["DampeningFactor"], f"{at}.DampeningFactor")))
    return tuple(out)


def case_portfolio(case: Mapping[str, Any]) -> tuple[Portfolio, tuple[tuple[int, int], ...]]:
    """The :class:`Portfolio` of a published case (``Scenario`` block).

    Expiries follow the order of ``OptionFeeds``; options keep their order within an expiry. A
    feed less than 30 minutes from expiry has its forward split as Derive's test harness does:
    ``fixed = F·(1800 − sec)/1800``, ``variable = F·sec/1800``.

    Returns
    -------
    (Portfolio, where)
        ``where[j] = (expiry index, option index)`` of the case's ``Options[j]``.
    """
    sc = case["Scenario"]
    feeds = list(sc["OptionFeeds"])
    by_exp: dict[float, list[tuple[int, OptionHolding]]] = {
        _num(f["FeedExpiry"], f"Scenario.OptionFeeds[{i}].FeedExpiry"): []
        for i, f in enumerate(feeds)}
    for j, o in enumerate(sc["Options"]):
        at = f"Scenario.Options[{j}]"
        exp = _num(o["Expiry"], f"{at}.Expiry")
        if exp not in by_exp:
            raise ValueError(f"{at}.Expiry: no OptionFeeds entry for expiry {exp}")
        by_exp[exp].append((j, OptionHolding(
            strike=_num(o["Strike"], f"{at}.Strike"), is_call=bool(int(o["IsCall"])),
            amount=_num(o["Amount"], f"{at}.Amount"), vol=_num(o["MarkVol"], f"{at}.MarkVol"))))
    where: dict[int, tuple[int, int]] = {}
    expiries = []
    for i, f in enumerate(feeds):
        at = f"Scenario.OptionFeeds[{i}]"
        sec = _num(f["FeedExpiry"], f"{at}.FeedExpiry")
        fwd = _num(f["Forward"], f"{at}.Forward")
        if sec < FORWARD_PORTION_WINDOW:
            fixed = fwd * (FORWARD_PORTION_WINDOW - sec) / FORWARD_PORTION_WINDOW
            variable = fwd * sec / FORWARD_PORTION_WINDOW
        else:
            fixed, variable = 0.0, fwd
        held = by_exp[sec]
        for k, (j, _) in enumerate(held):
            where[j] = (i, k)
        expiries.append(ExpiryHoldings(
            sec_to_expiry=sec, forward_fixed=fixed, forward_variable=variable,
            rate=_num(f["Rate"], f"{at}.Rate"), options=tuple(o for _, o in held),
            forward_confidence=_num(f["ForwardConfidence"], f"{at}.ForwardConfidence"),
            rate_confidence=_num(f["RateConfidence"], f"{at}.RateConfidence"),
            vol_confidence=_num(f["OptionVolConfidences"], f"{at}.OptionVolConfidences")))
    colls = tuple(CollateralHolding(
        name=str(c["Name"]), amount=_num(c["Amount"], f"Scenario.Collaterals[{i}].Amount"),
        price=_num(c["Price"], f"Scenario.Collaterals[{i}].Price"),
        confidence=_num(c["Confidence"], f"Scenario.Collaterals[{i}].Confidence"),
        risk_cancelling=bool(c["IsRiskCancelling"]),
        mm_haircut=_num(c["MMHaircut"], f"Scenario.Collaterals[{i}].MMHaircut"),
        im_haircut=_num(c["IMHaircut"], f"Scenario.Collaterals[{i}].IMHaircut"))
        for i, c in enumerate(sc["Collaterals"]))
    n_perps = _num(sc["NumPerps"], "Scenario.NumPerps")
    perps = ((PerpHolding(n_perps, _num(sc["PerpPrice"], "Scenario.PerpPrice"),
                          _num(sc["PerpConfidence"], "Scenario.PerpConfidence")),)
             if n_perps != 0.0 else ())
    portfolio = Portfolio(
        spot=_num(sc["SpotPrice"], "Scenario.SpotPrice"), cash=_num(sc["Cash"], "Scenario.Cash"),
        spot_confidence=_num(sc["SpotConfidence"], "Scenario.SpotConfidence"),
        stable_price=_num(sc["StablePrice"], "Scenario.StablePrice"), perps=perps,
        perp_value=_num(sc["UnrealisedPerpPNL"], "Scenario.UnrealisedPerpPNL")
        + _num(sc["UnrealisedFunding"], "Scenario.UnrealisedFunding"),
        expiries=tuple(expiries), collaterals=colls)
    return portfolio, tuple(where[j] for j in range(len(sc["Options"])))


_DIRECTION = {"up": 1, "down": -1, "none": 0}


def _skew_name(s: Scenario) -> str:
    name = s.vol_shock.upper()
    return name if s.spot_shock == 1.0 else f"{name}_SPOT_SHOCK"


def reference_view(result: PMRMResult, case: Mapping[str, Any],
                   where: Sequence[tuple[int, int]]) -> dict[str, Any]:
    """``result`` laid out like a case's ``Result`` block (its names, order and signs).

    Contingencies become negative numbers, scenario rows ``[spot_shock − 1, direction, loss]``
    (direction 1 up, −1 down, 0 none), per-option lists follow the case's ``Options`` order,
    and expired expiries report the static discount factors ``[1, 1]`` as the reference does.
    ``where`` is the second value returned by :func:`case_portfolio`.
    """
    r = result
    sc = case["Scenario"]
    reg = [i for i, s in enumerate(r.scenarios) if s.kind == "regular"]
    tail = [i for i, s in enumerate(r.scenarios) if s.kind == "tail"]
    skew = [i for i, s in enumerate(r.scenarios) if s.kind == "skew"]

    def row(i: int) -> list[Any]:
        s = r.scenarios[i]
        return [s.spot_shock - 1.0, _DIRECTION[s.vol_shock], r.scenario_pnl[i]]

    def worst_of(i: int | None) -> float:
        return r.scenario_pnl[i] if i is not None else 0.0

    # The reference labels the overall worst by comparing the category minima in this order,
    # the first of equal values winning.
    categories = [("regular", worst_of(r.worst_regular)), ("tail", worst_of(r.worst_tail)),
                  ("skew", worst_of(r.worst_skew)), ("fwd_contingency", r.basis_contingency)]
    worst_all = min(categories, key=lambda c: c[1])[0]
    opts = [r.expiries[e].options[k] for e, k in where]
    exps = [r.expiries[e] for e, _ in where]
    mm_base, im_base = r.mm_collateral_contingency, r.im_collateral_contingency
    out: dict[str, Any] = {
        "worst_reg_loss": worst_of(r.worst_regular),
        "worst_tail_loss": worst_of(r.worst_tail),
        "worst_skew_loss": worst_of(r.worst_skew),
        "reg_losses": [row(i) for i in reg],
        "tail_losses": [row(i) for i in tail],
        "skew_losses": [[_skew_name(r.scenarios[i]), r.scenario_pnl[i]] for i in skew],
        "worst_reg_scenario": row(r.worst_regular)[:2] if r.worst_regular is not None else None,
        "worst_tail_scenario": ([*row(r.worst_tail)[:2], r.scenarios[r.worst_tail].dampening]
                                if r.worst_tail is not None else None),
        "worst_skew_scenario": (_skew_name(r.scenarios[r.worst_skew])
                                if r.worst_skew is not None else None),
        "ForwardContingency": r.basis_contingency,
        "Cash": r.cash,
        "PortfolioMTM": r.total_mtm + r.cash,
        "OptionMTM": r.option_mtm,
        "OptionMTMPerExpiry": [e.mtm for e in r.expiries],
        "OptionMTMPerExpiryDiscounted": [e.discounted_mtm if e.sec_to_expiry > 0 else e.mtm
                                         for e in r.expiries],
        "CollateralMTM": r.collateral_mtm,
        "PerpMTM": _num(sc["UnrealisedPerpPNL"], "Scenario.UnrealisedPerpPNL"),
        "MMLossFactor": r.mm_loss_factor,
        "IMLossFactor": r.im_loss_factor,
        "im_loss_factor": r.im_loss_factor,
        "MMPerpCont": -r.mm_perp_contingency,
        "IMPerpCont": -r.im_perp_contingency,
        "IMPerpContNormal": -(r.mm_perp_contingency + r.im_perp_contingency),
        "MMBaseCont": -mm_base,
        "IMBaseCont": -im_base,
        "IMBaseContNormal": -(mm_base + im_base),
        "MMOptionCont": -r.mm_option_contingency,
        "IMOptionCont": -r.im_option_contingency,
        "IMOptionContNormal": -(r.mm_option_contingency + r.im_option_contingency),
        "OracleCont": -r.oracle_contingency,
        "discount_factors": [[e.static_discount_pos, e.static_discount_neg]
                             if e.sec_to_expiry > 0 else [1.0, 1.0] for e in r.expiries],
        "UnrealisedFunding": _num(sc["UnrealisedFunding"], "Scenario.UnrealisedFunding"),
        "UnrealisedPerpPNL": _num(sc["UnrealisedPerpPNL"], "Scenario.UnrealisedPerpPNL"),
        "IM": r.initial_margin,
        "MM": r.maintenance_margin,
        "IMHand": r.initial_margin,
        "MMHand": r.maintenance_margin,
        "worst_all_scenarios": worst_all,
        "VolShockUpMultiplier": [e.vol_shock_up for e in exps],
        "VolShockDownMultiplier": [e.vol_shock_down for e in exps],
        "VolShockUpEvaluated": [o.vol_up for o in opts],
        "VolShockDownEvaluated": [o.vol_down for o in opts],
    }
    return out


def option_view(result: PMRMResult, where: Sequence[tuple[int, int]]) -> list[dict[str, Any]]:
    """Per-option intermediates laid out like a case's ``Scenario.Options`` entries.

    ``MarkDiscount`` is the feed's discount factor ``exp(−feed_rate·tau)`` before Derive floors
    the rate at 0 (the margin itself uses ``ExpiryResult.discount``); for an expired option the
    reference writes 0 for the skew terms (``k`` is still given).
    """
    out = []
    for e, k in where:
        ex = result.expiries[e]
        o = ex.options[k]
        live = ex.sec_to_expiry > 0
        mark_discount = math.exp(-ex.feed_rate * ex.sec_to_expiry / SECONDS_PER_YEAR)
        out.append({"MarkDiscount": mark_discount, "k": o.k,
                    "linear_mult_cap": o.linear_mult_cap if live else 0.0,
                    "abs_mult_cap": o.abs_mult_cap if live else 0.0,
                    "k_star": o.k_star if live else 0.0,
                    "linear_multiplier": o.linear_multiplier if live else 0.0,
                    "abs_multiplier": o.abs_multiplier if live else 0.0})
    return out


# ---------------------------------------------------------------------------------------------
# The project's own JSON layout of a core portfolio (tests/golden/derive-pmrm/*.json)


def portfolio_from_dict(d: Mapping[str, Any]) -> Portfolio:
    """A :class:`Portfolio` from its snake_case JSON form (the dataclass fields, nested).

    ``expiries[i].options`` and ``perps``/``collaterals`` are lists of the field mappings of
    :class:`OptionHolding`, :class:`PerpHolding` and :class:`CollateralHolding`.
    """
    expiries = tuple(ExpiryHoldings(**{**e, "options": tuple(OptionHolding(**o)
                                                               for o in e["options"])})
                     for e in d.get("expiries", ()))
    return Portfolio(**{**d, "perps": tuple(PerpHolding(**h) for h in d.get("perps", ())),
                        "expiries": expiries,
                        "collaterals": tuple(CollateralHolding(**c)
                                             for c in d.get("collaterals", ()))})


def scenarios_from_list(items: Sequence[Mapping[str, Any]]) -> tuple[Scenario, ...]:
    """Scenarios from ``[{"spot_shock": .., "vol_shock": .., "dampening": ..}, ...]``."""
    return tuple(Scenario(**s) for s in items)
