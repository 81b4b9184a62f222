"""Risk-based margin: a tail measure over joint scenarios, plus add-ons (DESIGN §1).

``IM = market risk + diversification-cap add-on + liquidity + concentration + credit
+ minimum-charge top-up + anti-procyclicality``, ``MM = mm_fraction × IM``.

- market risk: VaR, ES or worst loss of the unit's scenario P&L (each instrument revalued once
  per scenario, options fully repriced), at ``confidence`` over ``horizon_days``;
- diversification cap: offsets across underlyings count for at most ``diversification_cap`` of
  (Σ standalone per underlying − portfolio) (EMIR RTS 153/2013 Art. 27: 80%);
- liquidity: cost of closing each position into its order book (walk the depth, square-root
  impact beyond it) when its notional exceeds ``liquidity_threshold_usd``;
- concentration: ``rate·notional·max(0, share of open interest − threshold)``;
- credit: ``(market risk + liquidity) × table[rating]``; an account without a rating pays
  ``credit_unrated`` (0 unless configured: opt-in);
- minimum charge: top-up to ``short_option_min_rate × short-option notional + per-contract``;
- anti-procyclicality (EMIR Art. 28), one of: ``buffer`` (25% of market risk, released in stress
  when ``apc_buffer_released``), ``floor`` (market risk over ``apc_floor_lookback_days`` of
  unfiltered history, ten years by default: the stressed look-back), ``stressed_weight`` (the
  named crash-day stresses weighted 25%).

CCP defaults (set 2026-12-06, issue 11; each parameter's description gives its source): a 2-day
margin period of risk, VaR 99% / ES 97.5%, the ten-year floor on, and for the filtered and
Monte Carlo models λ = 0.99 and empirical residual marginals. ``docs/risk-based.md`` shows the
old (pre-CCP) configuration as explicit parameters.

Horizon scaling: historical scenarios use actual overlapping ``h``-day returns; filtered and
Monte Carlo scenarios scale the daily standardised draw by √h.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Annotated, Any, ClassVar, Literal

import numpy as np
from pydantic import ConfigDict, Field, field_serializer, field_validator

from margin_engine.domain.book import Account, MarginMode, Position
from margin_engine.domain.history import PriceSeries
from margin_engine.domain.instruments import Instrument
from margin_engine.domain.market import MarketSnapshot
from margin_engine.errors import InputError
from margin_engine.maths import addons, risk_measures, scenarios
from margin_engine.maths.scenarios import ScenarioSet
from margin_engine.maths.stress_library import CORE_STRESSES, get_stress
from margin_engine.models.core.base import MarginModel, ModelParams
from margin_engine.models.core.registry import register
from margin_engine.models.core.results import PositionMargin, UnitMargin
from margin_engine.models.core.scenario_pnl import instrument_pnl
from margin_engine.models.core.units import MarginUnit, Scope
from margin_engine.models.core.valuation import notional_usd
from margin_engine.models.risk_based.vol_params import VolFactorParams
from margin_engine.models.risk_based.vol_scenarios import joint_scenario_set

Measure = Literal["var", "es", "worst_loss"]
APC = Literal["none", "buffer", "floor", "stressed_weight"]
#: A history whose last return ends more than this many days before the market is stale.
MAX_STALE_DAYS = 7
COMPONENTS = ("market_risk", "diversification_cap", "liquidity", "concentration", "credit",
              "minimum_charge", "anti_procyclicality")


class RiskBasedParams(VolFactorParams):
    """Parameters shared by the risk-based family (each model sets its own defaults)."""

    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False,
                              arbitrary_types_allowed=True)

    history: PriceSeries | None = Field(
        None, description="Daily closes per underlying (CLI: --history FILE ...; the embedded "
                          "synthetic history when none is given). Hashed by content.")
    measure: Measure = Field("es", description="var | es | worst_loss")
    confidence: float = Field(0.99, gt=0.5, lt=1.0, description="Confidence level")
    horizon_days: int = Field(2, ge=1, le=30, strict=True, description=(
        "Margin period of risk, days. Default 2 (CCP default set 2026-12-06): EMIR RTS "
        "153/2013 Art. 26(1)(b), two business days for instruments other than OTC derivatives"))
    lookback_days: int = Field(365, ge=30, le=20000, strict=True,
                               description="Calendar days of daily returns used")
    vol_beta: float = Field(1.0, ge=0.0, le=5.0, description=(
        "Implied-vol shift per log price move: Δσ = −β·ln(1+x) (house assumption)"))
    vol_tenor_power: float = Field(0.5, ge=0.0, le=1.0, description=(
        "Vol shifts scale as (30d/T)^power across tenors (house assumption; the Deribit BTC "
        "daily chains 2025-12-30…2026-08-22 fit 0.453, docs/vol-factors.md)"))
    cross_scope: Literal["account", "currency"] = Field(
        "account", description="Cross/portfolio units: whole account in USD, or per currency")
    mm_fraction: float = Field(0.8, gt=0.0, le=1.0, description="MM = mm_fraction × IM")
    diversification_cap: float | None = Field(
        0.8, ge=0.0, le=1.0, description="Share of cross-underlying offsets allowed (EMIR 80%)")
    liquidity: bool = Field(True, description="Charge the order-book close-out cost")
    liquidity_threshold_usd: float = Field(0.0, ge=0.0, description=(
        "Positions with a larger USD notional pay the close-out cost"))
    open_interest: dict[str, Annotated[float, Field(gt=0)]] = Field(default_factory=dict,
                                                                    description=(
        "Open interest per symbol, contracts (for the concentration charge)"))
    concentration_threshold: float = Field(0.05, ge=0.0, le=1.0,
                                           description="Free share of open interest")
    concentration_rate: float = Field(0.5, ge=0.0, description=(
        "Charge per unit of share above the threshold, × notional"))
    credit_table: dict[str, float] = Field(default_factory=lambda: dict(addons.CREDIT_ADDON),
                                           description=(
        "Credit add-on fraction of (market risk + liquidity) by credit_rating (house table: "
        "AAA/AA 0, A 5%, BBB 10%, BB 25%, B 50%, CCC 100%)"))
    credit_unrated: float = Field(0.0, ge=0.0, le=10.0, description=(
        "Credit add-on fraction for accounts without a credit_rating: 0 (none) unless set; "
        "opt-in, e.g. 0.10 to charge unrated accounts like BBB"))
    short_option_min_rate: float = Field(0.0, ge=0.0, le=1.0, description=(
        "Minimum charge per short option, fraction of underlying notional"))
    min_per_contract_usd: float = Field(0.0, ge=0.0, description="Minimum charge per contract")
    apc: APC = Field("floor", description=(
        "none | buffer | floor | stressed_weight (EMIR Art. 41; RTS 153/2013 Art. 28). Default "
        "floor (CCP default set 2026-12-06): Art. 28(1)(c), margin not below the measure on a "
        "ten-year look-back that holds the stressed periods (apc_floor_lookback_days)"))
    apc_floor_lookback_days: int = Field(3650, ge=30, le=20000, strict=True, description=(
        "Look-back of the floor, calendar days (RTS 153/2013 Art. 28(1)(c): ten years; the "
        "whole history when shorter; CCP default set 2026-12-06)"))
    apc_buffer: float = Field(0.25, ge=0.0, le=1.0, description="Buffer share of market risk")
    apc_buffer_released: bool = Field(False, description="Buffer released (stress)")
    apc_stressed_share: float = Field(0.25, ge=0.0, lt=1.0,
                                      description="Weight on stressed observations")

    @field_serializer("history")
    def _hash_history(self, h: PriceSeries | None) -> dict[str, Any] | None:
        if h is None:
            return None
        return {"source": h.source, "sha256": h.content_hash(), "symbols": list(h.symbols),
                "first": str(h.dates[0]), "last": str(h.dates[-1])}

    @field_validator("credit_table")
    @classmethod
    def _fractions(cls, v: dict[str, float]) -> dict[str, float]:
        if "unrated" in v:
            raise ValueError("credit_table: the add-on of accounts without a rating is the "
                             "credit_unrated parameter, not an 'unrated' row")
        bad = [k for k, x in v.items() if not 0.0 <= x <= 10.0]
        if bad:
            raise ValueError(f"credit_table: fractions must lie in [0, 10] ({', '.join(bad)})")
        return v


class HistoricalVarParams(RiskBasedParams):
    measure: Measure = "var"
    confidence: float = Field(0.99, gt=0.5, lt=1.0, description=(
        "Confidence level (99%: EMIR RTS 153/2013 Art. 24(1)(b) for instruments other than "
        "OTC derivatives)"))
    lookback_days: int = Field(365, ge=30, le=20000, strict=True, description=(
        "Calendar days of daily returns used (RTS 153/2013 Art. 25(1): at least the latest "
        "12 months)"))


#: ES at 97.5% matches VaR at 99% under normality (BCBS FRTB, d457 §181(b)); house choice.
_ES_CONFIDENCE = ("Confidence level (ES 97.5%, the FRTB equivalent of 99% VaR: BCBS d457 "
                  "§181(b); coverage backtested at 99%)")
#: The CCP default decay, with the reason it is not RiskMetrics' 0.94.
_CCP_DECAY = ("EWMA decay λ. Default 0.99 (CCP default set 2026-12-06, house calibration, "
              "studies/ccp_perpetuals.py): with RiskMetrics' 0.94 (J.P. Morgan 1996) the "
              "filtered ES on BTC/ETH perpetuals 2016–2026 has peak-to-trough 3.3–6.7× even "
              "with the ten-year floor; 0.99 holds it under 4× (RTS 153/2013 Art. 28 aim)")


class FilteredEsParams(RiskBasedParams):
    measure: Measure = "es"
    confidence: float = Field(0.975, gt=0.5, lt=1.0, description=_ES_CONFIDENCE)
    lookback_days: int = Field(1000, ge=30, le=20000, strict=True, description=(
        "Calendar days of daily returns used (≥ 12 months: RTS 153/2013 Art. 25(1); 1,000 "
        "days, house choice, keeps 2022's crashes in view until 2025)"))
    vol_model: Literal["ewma", "garch"] = Field("ewma", description="Filter: ewma | garch")
    decay: float = Field(0.99, gt=0.0, lt=1.0, description=_CCP_DECAY)
    vol_floor_ratio: float = Field(0.0, ge=0.0, le=2.0, description=(
        "Today's σ floored at this × the lookback's mean σ (APC option)"))


class MonteCarloEsParams(RiskBasedParams):
    measure: Measure = "es"
    confidence: float = Field(0.975, gt=0.5, lt=1.0, description=_ES_CONFIDENCE)
    lookback_days: int = Field(1000, ge=30, le=20000, strict=True, description=(
        "Calendar days of daily returns used (as filtered-es)"))
    n_paths: int = Field(10000, ge=100, le=2_000_000, strict=True,
                         description="Simulated scenarios")
    seed: int = Field(7, ge=0, strict=True, description="Random seed (bit-identical results)")
    dof: float = Field(4.0, gt=2.0, le=100.0, description="Student-t copula degrees of freedom")
    marginals: Literal["t", "empirical"] = Field("empirical", description=(
        "t | empirical. Default empirical (set 2026-12-06, studies/ccp_perpetuals.py): the "
        "standardised residuals' own tails; a unit-variance t(4) puts the 1% quantile at "
        "2.65σ, thinner than BTC's filtered residuals, and under-covered (BTC 2016–2026, 1 day: "
        "55 exceedances in 3,696 days, Kupiec p 0.005)"))
    decay: float = Field(0.99, gt=0.0, lt=1.0, description=_CCP_DECAY)


def _counting_weights(weights: np.ndarray) -> np.ndarray | None:
    """``None`` when every scenario weighs the same (finite, positive), else ``weights``.

    The measures take equal weights as ``None`` anyway (:func:`risk_measures.normalise_weights`);
    deciding once per unit spares each of its dozen measures the check."""
    first = weights[0] if weights.size else 0.0
    if np.isfinite(first) and first > 0.0 and bool((weights == first).all()):
        return None
    return weights


def _measure_rows(pnl: np.ndarray, p: RiskBasedParams,
                  weights: np.ndarray | None) -> np.ndarray:
    """The model's measure of each row of a [rows × scenarios] P&L matrix."""
    if p.measure == "worst_loss":
        return risk_measures.worst_loss_rows(pnl)
    if p.measure == "var":
        return risk_measures.value_at_risk_rows(pnl, p.confidence, weights)
    return risk_measures.expected_shortfall_rows(pnl, p.confidence, weights)


def _measure(pnl: np.ndarray, p: RiskBasedParams, weights: np.ndarray | None) -> float:
    return float(_measure_rows(pnl[None, :], p, weights)[0])


def _attribute(position_pnl: np.ndarray, p: RiskBasedParams, weights: np.ndarray | None,
               total: float) -> risk_measures.Attribution:
    """The model's attribution of ``total``, the measure of the summed P&L."""
    if p.measure == "worst_loss":
        return risk_measures.worst_scenario_contributions(position_pnl, total=total)
    if p.measure == "var":
        return risk_measures.var_contributions(position_pnl, p.confidence, weights,
                                               total=total)
    return risk_measures.euler_es_contributions(position_pnl, p.confidence, weights,
                                                total=total)


def _pro_rata(amount: float, basis: np.ndarray) -> np.ndarray:
    pos = np.maximum(basis, 0.0)
    total = pos.sum()
    if amount == 0.0:
        return np.zeros_like(basis)
    if total > 0:
        return amount * pos / total
    return np.full(basis.shape, amount / max(basis.size, 1))


@dataclass(frozen=True)
class _UnitRisk:
    """One unit's scenario P&L and IM components (internal to :class:`RiskBasedModel`)."""

    pos: list[Position]
    ins: list[Instrument]
    sizes: np.ndarray
    unds: tuple[str, ...]
    scen: ScenarioSet
    position_pnl: np.ndarray
    attr: risk_measures.Attribution | None
    standalone_und: dict[str, float]
    standalone_pos: np.ndarray | None  # each position's measure alone (with the attribution)
    liq: np.ndarray
    conc: np.ndarray
    notionals: np.ndarray
    usd_to_unit: float
    comps: dict[str, float]


class RiskBasedModel(MarginModel):
    """The shared machinery; subclasses say how scenarios are generated."""

    params: RiskBasedParams
    modes = frozenset(MarginMode)
    kind: ClassVar[str]

    def __init__(self, params: ModelParams | None = None) -> None:
        super().__init__(params)
        self._scenario_cache: dict[tuple[Any, ...], ScenarioSet] = {}
        # whole-book path: instrument P&L per (currency, underlyings) for one market object
        self._pnl_market: MarketSnapshot | None = None
        self._pnl_memo: dict[tuple[str, tuple[str, ...]], tuple[dict[str, int], np.ndarray]] = {}
        # the anti-procyclicality floor's whole-history P&L per (currency, underlyings, symbol),
        # for one market object: each unit on it reads its rows instead of revaluing
        self._stressed_market: MarketSnapshot | None = None
        self._stressed_rows: dict[tuple[str, tuple[str, ...], str], np.ndarray] = {}

    # -- scenarios ----------------------------------------------------------------------------
    def generate(self, returns: np.ndarray, labels: list[str],
                 underlyings: tuple[str, ...]) -> ScenarioSet:
        raise NotImplementedError

    def _returns(self, market: MarketSnapshot, underlyings: tuple[str, ...],
                 lookback: int | None) -> tuple[np.ndarray, list[str]]:
        h = self.params.history
        if h is None:
            raise InputError("--history", f"{self.name} needs a price history "
                             "(margin-engine compute ... --history FILE)")
        until = np.datetime64(market.timestamp.date(), "D") - np.timedelta64(1, "D")
        try:
            r, labels = h.log_returns(underlyings, until)
        except KeyError as exc:
            raise InputError("--history", f"no price history for {exc.args[0]} "
                             f"(history has {', '.join(h.symbols)})") from None
        ends = np.array(labels, dtype="datetime64[D]")
        if ends.size and until - ends[-1] > np.timedelta64(MAX_STALE_DAYS, "D"):
            raise InputError("--history", f"ends on {ends[-1]}, {(until - ends[-1]).astype(int)}"
                             f" days before the market date {until + 1}: stale (limit "
                             f"{MAX_STALE_DAYS} days)")
        if lookback is not None:
            keep = ends > until - np.timedelta64(lookback, "D")
            r, labels = r[keep], [lab for lab, k in zip(labels, keep.tolist(), strict=True)
                                  if k]
        complete = int(np.isfinite(r).all(axis=1).sum())
        if complete < 30:
            raise InputError("--history", f"only {complete} complete daily returns of "
                             f"{', '.join(underlyings)} before {until} (need ≥ 30)")
        return r, labels

    def scenario_set(self, market: MarketSnapshot, underlyings: tuple[str, ...]) -> ScenarioSet:
        """The model's scenarios for these underlyings at the market date (cached)."""
        key = (market.timestamp, underlyings)
        if key not in self._scenario_cache:
            r, labels = self._returns(market, underlyings, self.params.lookback_days)
            try:
                scen = joint_scenario_set(self, market, underlyings, r, labels)
            except ValueError as exc:  # e.g. a constant price: zero variance to filter by
                raise InputError("--history", f"{self.name} cannot build scenarios from the "
                                 f"returns of {', '.join(underlyings)}: {exc}") from None
            if self.params.apc == "stressed_weight":
                stress = scenarios.from_stresses(
                    underlyings, [get_stress(n) for n in CORE_STRESSES],
                    horizon_days=scen.horizon_days)
                scen = scen.concat(stress, self.params.apc_stressed_share)
            self._scenario_cache[key] = scen
        return self._scenario_cache[key]

    def stressed_scenario_set(self, market: MarketSnapshot, underlyings: tuple[str, ...]
                              ) -> ScenarioSet:
        """The APC floor's scenarios: unfiltered historical over ``apc_floor_lookback_days``
        (the stressed periods included), the vol factor too if any; cached per market date."""
        key = ("stressed", market.timestamp, underlyings)
        if key not in self._scenario_cache:  # the whole-history set, built once per date
            r, labels = self._returns(market, underlyings, self.params.apc_floor_lookback_days)
            self._scenario_cache[key] = joint_scenario_set(
                self, market, underlyings, r, labels,
                lambda r_, lab_, u_: historical_cached(self, r_, lab_, u_))
        return self._scenario_cache[key]

    def _stressed_market_risk(self, market: MarketSnapshot, underlyings: tuple[str, ...],
                              instruments: list[Instrument], sizes: np.ndarray,
                              currency: str) -> float:
        scen = self.stressed_scenario_set(market, underlyings)
        if self._stressed_market is not market:
            self._stressed_market, self._stressed_rows = market, {}
        memo = self._stressed_rows
        missing = [i for i in instruments if (currency, underlyings, i.symbol) not in memo]
        if missing:  # each instrument's row is its own (instrument_pnl revalues row by row)
            fresh = instrument_pnl(missing, market, scen, currency,
                                   vol_tenor_power=self.params.vol_tenor_power)
            memo.update({(currency, underlyings, i.symbol): row
                         for i, row in zip(missing, fresh, strict=True)})
        per_contract = np.empty((len(instruments), scen.n))
        for k, i in enumerate(instruments):
            per_contract[k] = memo[currency, underlyings, i.symbol]
        return _measure(sizes @ per_contract, self.params, _counting_weights(scen.weights))

    # -- whole-book path -----------------------------------------------------------------------
    def prepare(self, pairs: Sequence[tuple[MarginUnit, Account]],
                market: MarketSnapshot) -> None:
        """Revalue every instrument the units hold once per scenario set (per currency and
        set of underlyings, the set a unit on them gets); ``margin_unit`` then reads rows."""
        groups: dict[tuple[str, tuple[str, ...]], set[str]] = {}
        for unit, account in pairs:
            syms = [account.positions[j].symbol for j in unit.position_indices]
            unds = tuple(sorted({market.instrument(s).underlying for s in syms}))
            if unds:
                groups.setdefault((unit.currency, unds), set()).update(syms)
        if self._pnl_market is not market:
            self._pnl_market, self._pnl_memo = market, {}
        for (ccy, unds), held in groups.items():
            have = self._pnl_memo.get((ccy, unds))
            missing = sorted(held - set(have[0]) if have else held)
            if not missing:
                continue
            pnl = instrument_pnl([market.instrument(s) for s in missing], market,
                                 self.scenario_set(market, unds), ccy,
                                 vol_tenor_power=self.params.vol_tenor_power)
            rows, mat = have if have else ({}, np.empty((0, pnl.shape[1])))
            rows = {**rows, **{s: mat.shape[0] + k for k, s in enumerate(missing)}}
            self._pnl_memo[ccy, unds] = (rows, np.vstack([mat, pnl]))

    def _unit_pnl(self, ins: list[Instrument], market: MarketSnapshot, scen: ScenarioSet,
                  ccy: str, unds: tuple[str, ...]) -> np.ndarray:
        """Per-contract scenario P&L of ``ins``: prepared rows when there are, else revalued."""
        memo = self._pnl_memo.get((ccy, unds)) if self._pnl_market is market else None
        if memo is not None and all(i.symbol in memo[0] for i in ins):
            return memo[1][[memo[0][i.symbol] for i in ins]]
        return instrument_pnl(ins, market, scen, ccy, vol_tenor_power=self.params.vol_tenor_power)

    # -- margin -------------------------------------------------------------------------------
    def cross_scope(self, account: Account) -> Scope:
        return self.params.cross_scope

    def margin_unit(self, unit: MarginUnit, account: Account,
                    market: MarketSnapshot) -> UnitMargin:
        p = self.params
        ccy = unit.currency
        idx = list(unit.position_indices)
        if not idx:
            return UnitMargin(unit.id, ccy, 0.0, 0.0, dict.fromkeys(COMPONENTS, 0.0), ())
        c = self._unit_risk(unit, account, market, attribute=True)
        attr, comps = c.attr, c.comps
        assert attr is not None
        contrib = {"market_risk": attr.contributions.copy()}
        contrib["diversification_cap"] = _pro_rata(comps["diversification_cap"],
                                                   attr.contributions)
        contrib["liquidity"], contrib["concentration"] = c.liq, c.conc
        contrib["credit"] = _pro_rata(comps["credit"], contrib["market_risk"] + c.liq)
        contrib["minimum_charge"] = _pro_rata(comps["minimum_charge"], np.abs(c.sizes))
        contrib["anti_procyclicality"] = _pro_rata(comps["anti_procyclicality"],
                                                   contrib["market_risk"])
        im = float(sum(comps.values()))
        total_contrib = np.sum(list(contrib.values()), axis=0)
        position_pnl, scen = c.position_pnl, c.scen
        assert c.standalone_pos is not None
        standalone = c.standalone_pos + c.liq + c.conc
        # each per-position column as Python floats at once (the same values as float(v[k]))
        columns = {name: v.tolist() for name, v in contrib.items()}
        names = list(columns)
        per_position = zip(idx, c.pos, standalone.tolist(), (p.mm_fraction * standalone).tolist(),
                           total_contrib.tolist(), (c.notionals * c.usd_to_unit).tolist(),
                           zip(*columns.values(), strict=True), strict=True)
        margins = tuple(PositionMargin(
            index=j, symbol=q.symbol, size=q.size, initial_margin=im, maintenance_margin=mm,
            contribution=share, notional=notional, details=dict(zip(names, row, strict=True)))
            for j, q, im, mm, share, notional, row in per_position)
        drivers = [{"label": scen.labels[s], "share": float(sh),
                    "pnl": float(position_pnl[:, s].sum())}
                   for s, sh in list(zip(attr.scenarios, attr.shares, strict=True))[:5]]
        details: dict[str, Any] = {
            "measure": p.measure, "confidence": p.confidence, "horizon_days": p.horizon_days,
            "scenario_kind": scen.kind, "n_scenarios": scen.n, "underlyings": list(c.unds),
            "driving_scenarios": drivers, "standalone_by_underlying": c.standalone_und,
            "history": self._history_detail()}
        details |= self.extra_details(position_pnl.sum(axis=0), scen)
        return UnitMargin(unit.id, ccy, im, p.mm_fraction * im, comps, margins, details)

    def maintenance_margin(self, unit: MarginUnit, account: Account,
                           market: MarketSnapshot) -> float:
        """``margin_unit(...).maintenance_margin`` without the per-position breakdown, the
        attribution and the standard error (the liquidation solver calls this many times)."""
        if not unit.position_indices:
            return 0.0
        c = self._unit_risk(unit, account, market, attribute=False)
        return self.params.mm_fraction * float(sum(c.comps.values()))

    def _unit_risk(self, unit: MarginUnit, account: Account, market: MarketSnapshot, *,
                   attribute: bool) -> _UnitRisk:
        """The unit's scenario P&L and IM components (shared by the two paths above, so that
        both give the same maintenance margin to the last bit)."""
        p = self.params
        ccy = unit.currency
        pos = [account.positions[j] for j in unit.position_indices]
        ins = [market.instrument(q.symbol) for q in pos]
        sizes = np.array([q.size for q in pos])
        unds = tuple(sorted({i.underlying for i in ins}))
        scen = self.scenario_set(market, unds)
        per_contract = self._unit_pnl(ins, market, scen, ccy, unds)
        position_pnl = sizes[:, None] * per_contract
        w = _counting_weights(scen.weights)
        # one rows call measures the unit, each underlying alone (for the diversification cap)
        # and, with the attribution, each position alone: every row exactly as alone
        cap = p.diversification_cap if len(unds) > 1 else None
        und_pnl = [position_pnl[[k for k, i in enumerate(ins) if i.underlying == u]].sum(axis=0)
                   for u in (unds if cap is not None else ())]
        measured = _measure_rows(np.vstack([position_pnl.sum(axis=0), *und_pnl,
                                            *([position_pnl] if attribute else [])]), p, w)
        market_risk = float(measured[0])
        attr = _attribute(position_pnl, p, w, market_risk) if attribute else None
        standalone_pos = measured[1 + len(und_pnl):] if attribute else None

        # diversification cap across underlyings
        cap_addon, standalone_und = 0.0, {}
        if cap is not None:
            standalone_und = {u: float(v) for u, v in zip(unds, measured[1:1 + len(und_pnl)],
                                                          strict=True)}
            cap_addon = addons.capped_offset(market_risk, sum(standalone_und.values()), cap)

        # liquidity and concentration, per position
        usd_to_unit = market.convert(1.0, "USD", ccy)
        liq = np.zeros(len(pos))
        conc = np.zeros(len(pos))
        notionals = np.array([notional_usd(i, q.size, market) for i, q in zip(ins, pos,
                                                                            strict=True)])
        for k, (i, q) in enumerate(zip(ins, pos, strict=True)):
            if p.liquidity and notionals[k] > p.liquidity_threshold_usd:
                liq[k] = self._close_out_cost(i, q.size, market) * usd_to_unit
            oi = p.open_interest.get(i.symbol)
            if oi:
                conc[k] = addons.concentration_charge(
                    notionals[k] * usd_to_unit, abs(q.size) / oi,
                    threshold=p.concentration_threshold, rate=p.concentration_rate)

        # credit
        try:
            credit = addons.credit_addon(market_risk + float(liq.sum()), account.credit_rating,
                                         p.credit_table, unrated=p.credit_unrated)
        except ValueError as exc:
            raise InputError("credit_rating", str(exc).split(": ", 1)[1]) from None

        # minimum charges (a floor, topped up)
        short_opt = [notionals[k] * usd_to_unit for k, i in enumerate(ins)
                     if i.is_option and pos[k].size < 0]
        minimum = addons.minimum_charge(short_opt, float(np.abs(sizes).sum()),
                                        short_option_rate=p.short_option_min_rate,
                                        per_contract=p.min_per_contract_usd * usd_to_unit)
        so_far = market_risk + cap_addon + liq.sum() + conc.sum()
        top_up = max(0.0, minimum - so_far)

        # anti-procyclicality
        apc = 0.0
        if p.apc == "buffer" and not p.apc_buffer_released:
            apc = p.apc_buffer * market_risk
        elif p.apc == "floor":
            stressed = self._stressed_market_risk(market, unds, ins, sizes, ccy)
            apc = max(0.0, stressed - market_risk)

        comps = {"market_risk": market_risk, "diversification_cap": cap_addon,
                 "liquidity": float(liq.sum()), "concentration": float(conc.sum()),
                 "credit": credit, "minimum_charge": top_up, "anti_procyclicality": apc}
        return _UnitRisk(pos, ins, sizes, unds, scen, position_pnl, attr, standalone_und,
                         standalone_pos, liq, conc, notionals, usd_to_unit, comps)

    def extra_details(self, pnl: np.ndarray, scen: ScenarioSet) -> dict[str, Any]:
        return {}

    def _history_detail(self) -> dict[str, Any] | None:
        """The history as the parameters serialise it (source, content hash, symbols, first and
        last date), hashed once per parameter object; each unit gets its own copy."""
        memo = self.__dict__.get("_history_detail_memo")
        if memo is None or memo[0] is not self.params:
            memo = (self.params, self.params.model_dump(mode="json")["history"])
            self.__dict__["_history_detail_memo"] = memo
        h = memo[1]
        return None if h is None else {k: list(v) if isinstance(v, list) else v
                                       for k, v in h.items()}

    def clear_cache(self) -> None:
        """Forget cached scenario sets (one per market timestamp; a backtest calls this daily)
        and the whole-book instrument P&L."""
        self._scenario_cache.clear()
        self._pnl_market, self._pnl_memo = None, {}
        self._stressed_market, self._stressed_rows = None, {}

    @staticmethod
    def _close_out_cost(ins: Instrument, size: float, market: MarketSnapshot) -> float:
        """USD cost of closing the position into its book (0 without a book)."""
        book = market.order_books.get(ins.symbol)
        if book is None or not book.bids or not book.asks or size == 0:
            return 0.0
        mid = 0.5 * (book.bids[0][0] + book.asks[0][0])
        side = book.bids if size > 0 else book.asks
        cost = addons.close_out_cost(side, abs(size), mid).cost  # book price units × contracts
        if ins.inverse and not ins.is_option:
            return cost * ins.contract_size / mid  # USD face: relative cost × face
        # linear contracts: quote currency; inverse options: the book is quoted in coin
        return cost * ins.contract_size * market.usd_price(ins.settle)


def historical_cached(model: RiskBasedModel, r: np.ndarray, labels: list[str],
                      underlyings: tuple[str, ...]) -> ScenarioSet:
    """Unfiltered historical scenarios over the whole history (the APC stressed lookback)."""
    return _historical(tuple(map(tuple, np.nan_to_num(r, nan=np.inf).tolist())),
                       tuple(labels), underlyings, model.params.horizon_days,
                       model.params.vol_beta)


@lru_cache(maxsize=16)
def _historical(r: tuple[tuple[float, ...], ...], labels: tuple[str, ...],
                underlyings: tuple[str, ...], horizon: int, beta: float) -> ScenarioSet:
    arr = np.array(r)
    arr[~np.isfinite(arr)] = np.nan
    return scenarios.historical(underlyings, arr, list(labels), horizon_days=horizon,
                                vol_beta=beta)


@register
class HistoricalVar(RiskBasedModel):
    name = "historical-var"
    version = "1.0"
    kind = "historical"
    source = "Historical simulation (ccp-standards §2, §5); EMIR RTS 153/2013 Art. 24-28"
    summary = ("VaR of joint historical h-day moves over a lookback, full revaluation, "
               "add-ons and APC")
    Params = HistoricalVarParams

    def generate(self, returns: np.ndarray, labels: list[str],
                 underlyings: tuple[str, ...]) -> ScenarioSet:
        return scenarios.historical(underlyings, returns, labels,
                                    horizon_days=self.params.horizon_days,
                                    vol_beta=self.params.vol_beta)


@register
class FilteredEs(RiskBasedModel):
    name = "filtered-es"
    version = "1.0"
    kind = "filtered-historical"
    source = "Filtered historical simulation (Barone-Adesi et al.; ccp-standards §5)"
    summary = "ES of EWMA/GARCH-filtered historical moves revolatilised by today's vol"
    Params = FilteredEsParams
    params: FilteredEsParams

    def generate(self, returns: np.ndarray, labels: list[str],
                 underlyings: tuple[str, ...]) -> ScenarioSet:
        p = self.params
        return scenarios.filtered_historical(underlyings, returns, labels,
                                             horizon_days=p.horizon_days, vol_model=p.vol_model,
                                             decay=p.decay, vol_floor_ratio=p.vol_floor_ratio,
                                             vol_beta=p.vol_beta)


@register
class MonteCarloEs(RiskBasedModel):
    name = "monte-carlo-es"
    version = "1.0"
    kind = "monte-carlo"
    source = "Student-t copula Monte Carlo on EWMA-scaled marginals (ccp-standards §5)"
    summary = "ES of correlated fat-tailed simulated moves; seeded, with its standard error"
    Params = MonteCarloEsParams
    params: MonteCarloEsParams

    def generate(self, returns: np.ndarray, labels: list[str],
                 underlyings: tuple[str, ...]) -> ScenarioSet:
        p = self.params
        return scenarios.monte_carlo(underlyings, returns, n_paths=p.n_paths, seed=p.seed,
                                     horizon_days=p.horizon_days, dof=p.dof,
                                     marginals=p.marginals, decay=p.decay,
                                     vol_beta=p.vol_beta)

    def extra_details(self, pnl: np.ndarray, scen: ScenarioSet) -> dict[str, Any]:
        """Standard error of the measure from 10 equal batches of paths."""
        if pnl.size % 10 == 0 and _counting_weights(scen.weights) is None:
            # equal batches, equal weights: one call on the [10 × n/10] matrix measures each
            # row exactly as alone (row-wise partition, sort and running sum)
            vals = _measure_rows(pnl.reshape(10, -1), self.params, None)
        else:
            batches = np.array_split(np.arange(pnl.size), 10)
            vals = np.array([_measure(pnl[b], self.params, scen.weights[b]) for b in batches])
        return {"standard_error": float(vals.std(ddof=1) / np.sqrt(len(vals)))}
