"""Derive v2 Portfolio Margin Risk Manager (PMRM_2), research/crypto-venues.md §6.3–§6.4.

The account is one margin unit in USD. Its positions are grouped by underlying; each group is one
Derive PMRM_2 portfolio (Derive runs one manager per underlying) and is margined by the pure core
:mod:`margin_engine.models.venues.derive_pmrm_core`:

- linear (USDC-settled) perpetuals: ``position = size·contract_size`` at the perp mark;
- linear European options, cash-settled: grouped by expiry, forward ``market.forward``, vol
  ``market.implied_vol``, ``sec_to_expiry`` from the snapshot, rate ``params.rate`` (else
  ``market.rates[settle]``, else ``rates["USD"]``, else 0);
- the underlying held as collateral (``account.collateral[underlying] > 0``) enters the
  scenarios as *risk-cancelling* collateral when ``risk_cancelling_collateral`` is on;
- every oracle confidence is 1 (the snapshot carries none), so the confidence contingency is 0;
- the stablecoin price (``market.fx[stablecoin]``, default 1) drives the peg-loss IM add-on.

Requirements, in USD, excluding the mark-to-market Derive adds back (the engine's equity holds
it): ``IM = −minSPAN·(imFactor + peg) + IMcont + MMcont`` and ``MM = −minSPAN·mmFactor + MMcont``.

Attribution (per-position ``contribution``, adding up to the unit's IM): the scenario term is
split by each position's own P&L in the worst scenario (for an option, its shocked value times
the expiry's static discount minus its mark; signs flipped with its expiry in a skew scenario),
or by its share of the basis contingency when that is the worst; the P&L of risk-cancelling
collateral is shared among the group's positions in proportion to their own losses (equally
when none loses). Contingencies go to the positions that cause them: the perp contingency to
each perp by ``|position|``, the naked-short option contingency to the shorts of each strike in
proportion to their short amounts.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from margin_engine.domain.book import Account, MarginMode
from margin_engine.domain.instruments import Instrument, Kind
from margin_engine.domain.market import MarketSnapshot
from margin_engine.errors import InputError
from margin_engine.models.core.base import MarginModel, ModelParams
from margin_engine.models.core.registry import register
from margin_engine.models.core.results import PositionMargin, UnitMargin
from margin_engine.models.core.units import MarginUnit, Scope
from margin_engine.models.core.valuation import notional_usd
from margin_engine.models.venues import derive_pmrm_core as core

_CFG = ("config-mainnet.sol::getPMRM2Params, derivexyz/v2-core 42a4e48 (2025-06-10), read at "
        "7736900 (2026-01-21); research/crypto-venues.md §6.4")
_SCN = ("config-mainnet.sol::getDefaultPM2Scenarios, derivexyz/v2-core 42a4e48 (2025-06-10); "
        "research/crypto-venues.md §6.4")


class ScenarioSpec(BaseModel):
    """One PMRM_2 scenario as a parameter: spot multiplier, vol move, P&L dampening."""

    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)

    spot_shock: float = Field(gt=0.0, lt=10.0, description="spot multiplier (1.18 = +18 %)")
    vol_shock: Literal["up", "down", "none", "linear", "abs"] = Field(
        description="vol move: up/down multipliers, none, or linear/abs skew rotation")
    dampening: float = Field(1.0, ge=0.0, le=10.0, description="multiplier on the P&L")

    @model_validator(mode="after")
    def _skew_at_spot(self) -> ScenarioSpec:
        if self.vol_shock in ("linear", "abs") and self.spot_shock != 1.0:
            raise ValueError(f"spot_shock: a {self.vol_shock} skew scenario must have "
                             f"spot_shock 1 (Derive's setScenarios), got {self.spot_shock}")
        return self


def _default_scenarios() -> tuple[ScenarioSpec, ...]:
    out = [ScenarioSpec(spot_shock=1.18, vol_shock="up")]
    for s in (1.135, 1.09, 1.045, 1.0, 0.955, 0.91, 0.865):
        out += [ScenarioSpec(spot_shock=s, vol_shock=v) for v in ("down", "none", "up")]
    out.append(ScenarioSpec(spot_shock=0.82, vol_shock="up"))
    tails = ((0.34, 0.21), (0.67, 0.42), (1.5, 0.2772), (2.0, 0.1386), (3.0, 0.0693),
             (4.0, 0.0462), (5.0, 0.03465), (6.0, 0.02772))
    out += [ScenarioSpec(spot_shock=s, vol_shock="up", dampening=d) for s, d in tails]
    out += [ScenarioSpec(spot_shock=1.0, vol_shock=v) for v in ("linear", "abs")]
    return tuple(out)


def _f(default: float, lo: float | None, hi: float | None, text: str) -> Any:
    return Field(default, ge=lo, le=hi, description=f"{text} Default: {_CFG}.")


class DerivePmrmParams(ModelParams):
    """The PMRM_2 parameter set (Derive's ``IPMRMLib_2`` structs) and the mapping options.

    Bounds are those of Derive's setters (``PMRMLib_2.set*Params``).
    """

    # VolShockParameters
    vol_range_up: float = _f(0.5, 0.0, 10.0, "Vol-up range at 30 days (fraction).")
    vol_range_down: float = _f(0.3, 0.0, 10.0, "Vol-down range at 30 days (fraction).")
    short_term_power: float = _f(0.3, None, 10.0, "Power on 30d/T for expiries <= 30 days.")
    long_term_power: float = _f(0.13, None, 10.0, "Power on 30d/T for expiries > 30 days.")
    dte_floor_days: float = _f(1.0, 0.0, 400.0, "Floor on time to expiry in the vol shock "
                               "(days).")
    min_vol_up_shock: float = _f(0.4, 0.0, 20.0, "Floor on the vol in vol-up scenarios "
                                 "(annualised).")
    # MarginParameters
    im_factor: float = _f(1.0, 0.5, 10.0, "Multiplier on the worst loss for IM.")
    mm_factor: float = _f(0.8, 0.5, 10.0, "Multiplier on the worst loss for MM.")
    short_rate_mult_scale: float = _f(0.0, 0.0, 10.0, "Rate multiplier in the static discount "
                                      "of negative expiry MtM.")
    long_rate_mult_scale: float = _f(0.0, 0.0, 10.0, "Rate multiplier in the static discount "
                                     "of positive expiry MtM.")
    short_rate_add_scale: float = _f(0.16, 0.0, 10.0, "Rate add-on (per year) in the static "
                                     "discount of negative expiry MtM.")
    long_rate_add_scale: float = _f(0.16, 0.0, 10.0, "Rate add-on (per year) in the static "
                                    "discount of positive expiry MtM.")
    short_base_static_discount: float = _f(
        1.05, 0.0, 4.0, "Base static discount of negative expiry MtM. UNCONFIRMED: "
        "config-mainnet sets shortBaseStaticDiscount 0.95 / longBaseStaticDiscount 1.05, the "
        "opposite orientation to the struct comments and the published test suite (0.95 on "
        "positive, 1.04 on negative MtM); the config's magnitudes are used here with the test "
        "suite's orientation (research §6.4 flag).")
    long_base_static_discount: float = _f(
        0.95, 0.0, 4.0, "Base static discount of positive expiry MtM. UNCONFIRMED (see "
        "short_base_static_discount).")
    # BasisContingencyParameters
    basis_spot_up: float = _f(1.045, 1.0, 3.0, "Spot multiplier of the basis scenario up.")
    basis_spot_down: float = _f(0.955, 0.0, 1.0, "Spot multiplier of the basis scenario down.")
    basis_cont_add_factor: float = _f(0.5, 0.0, 20.0, "Basis contingency factor, constant.")
    basis_cont_mult_factor: float = _f(2.0, 0.0, 20.0, "Basis contingency factor per year to "
                                       "expiry.")
    # OtherContingencyParameters
    peg_loss_threshold: float = _f(0.99, 0.0, 100.0, "Stablecoin price below which the IM "
                                   "factor rises (USD).")
    peg_loss_factor: float = _f(4.0, 0.0, 10.0, "IM factor add-on per USD of depeg.")
    conf_threshold: float = _f(0.55, 0.0, 1.0, "Oracle confidence below which the confidence "
                               "contingency applies (not reached: confidences are 1 here).")
    conf_margin: float = _f(1.0, 0.0, 20.0, "Confidence contingency scale.")
    mm_perp_percent: float = _f(0.03, 0.0, 3.0, "MM perp contingency (fraction of |q|·spot).")
    im_perp_percent: float = _f(0.01, 0.0, 3.0, "IM perp contingency (fraction of |q|·spot), "
                                "charged on top of the MM one.")
    mm_option_percent: float = _f(0.003, 0.0, 2.0, "MM naked-short option contingency "
                                  "(fraction of naked shorts·spot).")
    im_option_percent: float = _f(0.002, 0.0, 2.0, "IM naked-short option contingency, "
                                  "charged on top of the MM one.")
    # SkewShockParameters
    linear_base_cap: float = _f(0.25, 0.0, 10.0, "Linear skew: cap on the vol multiplier "
                                "move at expiry.")
    abs_base_cap: float = _f(0.25, 0.0, 10.0, "Abs skew: cap on the vol multiplier move at "
                             "expiry.")
    linear_c_base: float = _f(-0.1, -10.0, 10.0, "Linear skew: cap change per √year.")
    abs_c_base: float = _f(-0.1, -10.0, 10.0, "Abs skew: cap change per √year.")
    min_k_star: float = _f(0.01, 0.0, 10.0, "Floor on k* (log-moneyness where the cap is "
                           "reached).")
    width_scale: float = _f(4.0, 0.0, 10.0, "k* width scale.")
    vol_param_static: float = _f(0.6, 0.0, 10.0, "k* vol parameter, constant.")
    vol_param_scale: float = _f(0.0, -20.0, 20.0, "k* vol parameter per √year.")
    scenarios: tuple[ScenarioSpec, ...] = Field(
        default_factory=_default_scenarios, min_length=1, max_length=40,
        description=f"The spot × vol scenarios (23 regular, 8 tail, 2 skew). Default: {_SCN}.")
    # Mapping options (not Derive parameters)
    rate: float | None = Field(None, ge=-1.0, le=10.0, description=(
        "Annual rate for discounting and the static discount; None: the snapshot's "
        "rates[settle] (else rates['USD'], else 0). Negative rates are floored at 0 as Derive "
        "does."))
    risk_cancelling_collateral: bool = Field(True, description=(
        "Whether the underlying held as collateral moves with spot in the scenarios (Derive's "
        "isRiskCancelling, e.g. ETH held in the ETH manager)."))
    stablecoin: str = Field("USDC", min_length=1, description=(
        "Settlement stablecoin whose fx price drives the peg-loss IM add-on (1 when absent)."))

    @model_validator(mode="after")
    def _im_above_mm(self) -> DerivePmrmParams:
        if self.im_factor < self.mm_factor:
            raise ValueError(f"im_factor: {self.im_factor} is below mm_factor "
                             f"{self.mm_factor}; the IM would fall below the MM")
        if self.basis_spot_down <= 0.0 or self.basis_spot_down >= 1.0:
            raise ValueError("basis_spot_down: must lie in (0, 1)")
        if self.basis_spot_up <= 1.0:
            raise ValueError("basis_spot_up: must be above 1")
        return self

    def core_params(self) -> core.CoreParams:
        """The core's parameter dataclass."""
        names = [f.name for f in core.CoreParams.__dataclass_fields__.values()]
        return core.CoreParams(**{n: getattr(self, n) for n in names})

    def core_scenarios(self) -> tuple[core.Scenario, ...]:
        return tuple(core.Scenario(s.spot_shock, s.vol_shock, s.dampening)
                     for s in self.scenarios)


# ---------------------------------------------------------------------------------------------
# Mapping the engine's account onto core portfolios


@dataclass(frozen=True)
class _Group:
    """One underlying: its core portfolio and where each position sits in it."""

    underlying: str
    portfolio: core.Portfolio
    perp_of: dict[int, int]
    """position index → index in ``portfolio.perps``."""
    option_of: dict[int, tuple[int, int]]
    """position index → (expiry index, option index)."""


def _rate(ins: Instrument, market: MarketSnapshot, params: DerivePmrmParams) -> float:
    if params.rate is not None:
        return params.rate
    return market.rates.get(ins.settle, market.rates.get("USD", 0.0))


def _groups(indices: Sequence[int], account: Account, market: MarketSnapshot,
            params: DerivePmrmParams, collateral: Mapping[str, float]) -> list[_Group]:
    """One core portfolio per underlying of the positions ``indices``; ``collateral`` holds the
    balances that may enter as risk-cancelling collateral (empty: none)."""
    by_und: dict[str, list[int]] = {}
    for j in indices:
        by_und.setdefault(market.instrument(account.positions[j].symbol).underlying,
                          []).append(j)
    stable = market.fx.get(params.stablecoin, 1.0)
    out = []
    for und, idx in by_und.items():
        perps: list[core.PerpHolding] = []
        perp_of: dict[int, int] = {}
        exp_keys: list[Any] = []
        exp_opts: dict[Any, list[tuple[int, core.OptionHolding]]] = {}
        exp_ins: dict[Any, Instrument] = {}
        for j in idx:
            pos = account.positions[j]
            ins = market.instrument(pos.symbol)
            q = pos.size * ins.contract_size
            if ins.kind is Kind.PERPETUAL:
                assert ins.mark_price is not None
                perp_of[j] = len(perps)
                perps.append(core.PerpHolding(q, ins.mark_price))
                continue
            assert ins.strike is not None and ins.expiry is not None
            if ins.expiry not in exp_opts:
                exp_keys.append(ins.expiry)
                exp_opts[ins.expiry] = []
                exp_ins[ins.expiry] = ins
            exp_opts[ins.expiry].append((j, core.OptionHolding(
                strike=ins.strike, is_call=ins.is_call, amount=q,
                vol=market.implied_vol(ins))))
        expiries = []
        option_of: dict[int, tuple[int, int]] = {}
        for e, key in enumerate(sorted(exp_keys)):
            first = exp_ins[key]
            sec = max((key - market.timestamp).total_seconds(), 0.0)
            for k, (j, _) in enumerate(exp_opts[key]):
                option_of[j] = (e, k)
            expiries.append(core.ExpiryHoldings(
                sec_to_expiry=sec, forward_fixed=0.0, forward_variable=market.forward(first),
                rate=_rate(first, market, params), options=tuple(o for _, o in exp_opts[key])))
        colls: tuple[core.CollateralHolding, ...] = ()
        held = collateral.get(und, 0.0)
        if params.risk_cancelling_collateral and held > 0.0:
            # Derive values collateral as amount·price/stable; the price is scaled by the
            # stable price so that the value is amount·index in USD.
            colls = (core.CollateralHolding(name=und, amount=held,
                                            price=market.index[und] * stable,
                                            risk_cancelling=True),)
        out.append(_Group(und, core.Portfolio(
            spot=market.index[und], stable_price=stable, perps=tuple(perps),
            expiries=tuple(expiries), collaterals=colls), perp_of, option_of))
    return out


def _scenario_shares(g: _Group, r: core.PMRMResult) -> dict[int, float]:
    """Each position's P&L in the worst scenario (or its basis-contingency share)."""
    out: dict[int, float] = {}
    n = len(r.scenarios)
    if r.worst_index == n:  # the basis contingency is the worst
        for j, (e, k) in g.option_of.items():
            ex = r.expiries[e]
            o = ex.options[k]
            up, down = ex.basis_up_mtm - ex.mtm, ex.basis_down_mtm - ex.mtm
            if min(up, down) >= 0.0:
                out[j] = 0.0
            elif up <= down:
                out[j] = (o.basis_up_value - o.mtm) * ex.basis_factor
            else:
                out[j] = (o.basis_down_value - o.mtm) * ex.basis_factor
        for j in g.perp_of:
            out[j] = 0.0
        return out
    i = r.worst_index
    s = r.scenarios[i]
    for j, h in g.perp_of.items():
        p = g.portfolio.perps[h]
        out[j] = p.position * ((s.spot_shock - 1.0) * p.price) * s.dampening
    for j, (e, k) in g.option_of.items():
        ex = r.expiries[e]
        raw = sum(o.values[i] for o in ex.options)
        disc = ex.static_discount_pos if raw >= 0.0 else ex.static_discount_neg
        x = (ex.options[k].values[i] * disc - ex.options[k].mtm) * s.dampening
        flip = s.kind == "skew" and (raw * disc - ex.mtm) * s.dampening > 0.0
        out[j] = -x if flip else x
    return out


def _contributions(g: _Group, r: core.PMRMResult, p: DerivePmrmParams) -> dict[int, float]:
    """Shares of the group's IM charge, adding up to ``r.im_charge``."""
    pnl = _scenario_shares(g, r)
    f = r.im_loss_factor
    contrib = {j: -v * f for j, v in pnl.items()}
    # risk-cancelling collateral's P&L in the worst scenario, shared by the positions' losses
    coll = 0.0 if r.worst_index == len(r.scenarios) else sum(
        c.pnl[r.worst_index] for c in r.collaterals)
    if coll != 0.0:
        losses = {j: max(-v, 0.0) for j, v in pnl.items()}
        total = sum(losses.values())
        for j in contrib:
            w = losses[j] / total if total > 0.0 else 1.0 / len(contrib)
            contrib[j] += -coll * f * w
    spot = g.portfolio.spot
    for j, h in g.perp_of.items():
        contrib[j] += abs(g.portfolio.perps[h].position) * spot * (p.mm_perp_percent
                                                                  + p.im_perp_percent)
    for e, ex in enumerate(g.portfolio.expiries):
        by_strike: dict[float, list[int]] = {}
        for j, (ee, k) in g.option_of.items():
            if ee == e:
                by_strike.setdefault(ex.options[k].strike, []).append(j)
        for js in by_strike.values():
            amounts = {j: ex.options[g.option_of[j][1]].amount for j in js}
            shorts = sum(-a for a in amounts.values() if a < 0)
            naked = max(shorts - sum(a for a in amounts.values() if a > 0), 0.0)
            if naked == 0.0:
                continue
            for j, a in amounts.items():
                if a < 0:
                    contrib[j] += naked * (-a / shorts) * spot * (p.mm_option_percent
                                                                  + p.im_option_percent)
    return contrib


def _details(g: _Group, r: core.PMRMResult) -> dict[str, Any]:
    """JSON-able intermediates of one underlying's calculation."""
    worst = ("basis_contingency" if r.worst_index == len(r.scenarios)
             else _scenario_dict(r.scenarios[r.worst_index]))
    return {
        "spot": g.portfolio.spot,
        "stable_price": g.portfolio.stable_price,
        "worst_scenario": worst,
        "worst_index": r.worst_index,
        "min_span": r.min_span,
        "basis_contingency": r.basis_contingency,
        "scenario_pnl": [[s.spot_shock, s.vol_shock, s.dampening, v]
                         for s, v in zip(r.scenarios, r.scenario_pnl, strict=True)],
        "worst_regular": r.scenario_pnl[r.worst_regular] if r.worst_regular is not None else None,
        "worst_tail": r.scenario_pnl[r.worst_tail] if r.worst_tail is not None else None,
        "worst_skew": r.scenario_pnl[r.worst_skew] if r.worst_skew is not None else None,
        "mm_loss_factor": r.mm_loss_factor,
        "im_loss_factor": r.im_loss_factor,
        "mark_to_market": {"options": r.option_mtm, "collateral": r.collateral_mtm},
        "contingencies": {
            "mm_perp": r.mm_perp_contingency, "im_perp": r.im_perp_contingency,
            "mm_option": r.mm_option_contingency, "im_option": r.im_option_contingency,
            "oracle": r.oracle_contingency},
        "expiries": [{
            "sec_to_expiry": e.sec_to_expiry, "forward": e.forward, "rate": e.rate,
            "discount": e.discount, "mtm": e.mtm, "discounted_mtm": e.discounted_mtm,
            "basis_up_mtm": e.basis_up_mtm, "basis_down_mtm": e.basis_down_mtm,
            "basis_contingency": e.basis_contingency, "vol_shock_up": e.vol_shock_up,
            "vol_shock_down": e.vol_shock_down, "static_discount_pos": e.static_discount_pos,
            "static_discount_neg": e.static_discount_neg, "naked_shorts": e.naked_shorts}
            for e in r.expiries],
        "initial_charge": r.im_charge,
        "maintenance_charge": r.mm_charge,
    }


def _scenario_dict(s: core.Scenario) -> dict[str, Any]:
    return {"spot_shock": s.spot_shock, "vol_shock": s.vol_shock, "dampening": s.dampening,
            "kind": s.kind}


def _charges(g: _Group, inputs: tuple[core.CoreParams, tuple[core.Scenario, ...]]
             ) -> core.PMRMResult:
    try:
        return core.compute(g.portfolio, *inputs)
    except ValueError as exc:  # e.g. a non-positive forward
        raise InputError("positions", f"{g.underlying}: {exc}") from None


@register
class DerivePmrm(MarginModel):
    name = "derive-pmrm"
    version = "2025-06.1"
    source = ("derivexyz/v2-core PMRMLib_2.sol / PMRM_2.sol (7736900, 2026-01-21) and "
              "config-mainnet.sol (42a4e48, 2025-06-10); research/crypto-venues.md §6")
    summary = ("Derive v2 portfolio margin (PMRM_2): spot × vol scenarios with skew and tail "
               "shocks, static discounts, basis/perp/option contingencies, MM/IM loss factors.")
    Params = DerivePmrmParams
    modes = frozenset({MarginMode.PORTFOLIO, MarginMode.CROSS})
    params: DerivePmrmParams

    def cross_scope(self, account: Account) -> Scope:
        return "account"

    def check_instrument(self, ins: Instrument) -> str | None:
        if ins.inverse:
            return "derive-pmrm margins only linear (USDC-settled) perpetuals and options"
        if ins.kind not in (Kind.PERPETUAL, Kind.OPTION):
            return f"derive-pmrm margins perpetuals and options, not a {ins.kind.value}"
        return None

    def _core_inputs(self) -> tuple[core.CoreParams, tuple[core.Scenario, ...]]:
        """The core's parameters and scenarios, built once per parameter object (frozen):
        building them again for every portfolio and every position alone was 40 % of
        ``margin_unit``'s time."""
        memo = self.__dict__.get("_core_memo")
        if memo is None or memo[0] is not self.params:
            memo = (self.params, (self.params.core_params(), self.params.core_scenarios()))
            self.__dict__["_core_memo"] = memo
        return memo[1]

    def margin_unit(self, unit: MarginUnit, account: Account,
                    market: MarketSnapshot) -> UnitMargin:
        p = self.params
        inputs = self._core_inputs()
        groups = _groups(unit.position_indices, account, market, p, unit.collateral)
        im = mm = 0.0
        comps = {"scenario_loss": 0.0, "perp_contingency": 0.0, "option_contingency": 0.0}
        contrib: dict[int, float] = {}
        details: dict[str, Any] = {}
        worst_pnl: dict[int, float] = {}
        for g in groups:
            r = _charges(g, inputs)
            im += r.im_charge
            mm += r.mm_charge
            comps["scenario_loss"] += -r.min_span * r.im_loss_factor
            comps["perp_contingency"] += r.mm_perp_contingency + r.im_perp_contingency
            comps["option_contingency"] += r.mm_option_contingency + r.im_option_contingency
            contrib.update(_contributions(g, r, p))
            worst_pnl.update(_scenario_shares(g, r))
            details[g.underlying] = _details(g, r)
        rows = []
        for j in unit.position_indices:
            pos = account.positions[j]
            ins = market.instrument(pos.symbol)
            alone = _groups((j,), account, market, p, {})[0]
            ra = _charges(alone, inputs)
            rows.append(PositionMargin(
                index=j, symbol=pos.symbol, size=pos.size, initial_margin=ra.im_charge,
                maintenance_margin=ra.mm_charge, contribution=contrib[j],
                notional=notional_usd(ins, pos.size, market),
                details={"worst_scenario_pnl": worst_pnl[j]}))
        # IM >= MM >= 0 holds in float too: minSPAN <= 0, im_factor >= mm_factor and the
        # contingencies are >= 0, and rounding is monotone.
        return UnitMargin(id=unit.id, currency=unit.currency, initial_margin=im,
                          maintenance_margin=mm, components=comps, positions=tuple(rows),
                          details={"underlyings": details})
