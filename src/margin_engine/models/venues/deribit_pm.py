"""Deribit portfolio margin (S:PM per settlement currency, X:PM cross) — crypto-venues.md §1.5.

The risk matrix of one currency pair (e.g. ``btc_usd``) has ``2·buckets_count + 1`` price buckets
``x ∈ {−r, …, 0, …, +r}`` (``r = price_range``) × 3 volatility scenarios (up, same, down) — the
27 *standard* scenarios, bucket-major — followed by the *extended* moves (−66% … +500%) in the
vol-up scenario. Every instrument is revalued once per scenario (a ``[instruments × scenarios]``
matrix, NumPy-vectorised):

- inverse futures/perpetuals, ``q`` coin (USD size / mark): ``P&L = q·x/(1+x)`` coin (§8.1);
  linear ones ``q·P·x``;
- options: Black-76 full revaluation on the forward ``F·(1+x)`` at the shocked vol; inverse
  options in coin (``V_usd/F``). Vol shocks ``up·(30/DTE)^p`` and ``down·(30/DTE)^p`` with
  ``p`` the short-term power up to 30 days and the long-term power beyond;
- extended entries: "only a fraction of simulated P&L" [D4], ``P&L(x)·e/x`` with ``e`` the edge
  of the standard range (``±r``), coin-settled ones valued at the edge price (``× (1+x)/(1+e)``;
  for futures exactly the ``±r`` entry, as published), × ``extended_table_factor``.

Per vector (pair × settlement currency, e.g. ``btc_btc``) the positions' P&L are summed
(``pre_aggregated_risk_vectors``); the extended entries are dampened (``extended_dampener`` USD,
converted at the edge price) and gains are multiplied by ``pnl_offset``
(``aggregated_risk_vectors``). Then

``worst_case = −min(aggregated)``; ``risk_matrix_margin = worst_case + roll_shock (+ delta_shock
+ correlation_contingency, both 0 here)``; ``MM = mm_factor·risk_matrix_margin``;
``IM = risk_matrix_margin + open_orders_margin + mmp_margin + spot_margin``.

``roll_shock = Σ|q_i|·max(min_annualised_move, annualised_move_risk·T_i)`` over futures.
Reproduces Deribit's published ``private/pme/simulate`` examples TV-D5 and TV-D6 (research §1.8)
with every intermediate vector. X:PM (one USD stress test over the account) is in
:mod:`margin_engine.models.venues.deribit_pm_cross`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
from numpy.typing import NDArray
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from margin_engine.domain.book import Account, MarginMode
from margin_engine.domain.instruments import Instrument
from margin_engine.domain.market import MarketSnapshot
from margin_engine.models.core.base import MarginModel, ModelParams
from margin_engine.models.core.registry import register
from margin_engine.models.core.results import PositionMargin, UnitMargin
from margin_engine.models.core.units import MarginUnit, Scope
from margin_engine.models.core.valuation import notional
from margin_engine.models.venues.deribit_common import (
    FloatArray,
    base_size,
    currency_key,
    future_pnl,
    instrument_problem,
    option_pnl,
    pair_key,
    pro_rata,
)

VolScenario = Literal["up", "same", "down"]
_VOL_CODE = {"up": 1, "same": 0, "down": -1}
_VOL_NAME = {1: "up", 0: "same", -1: "down"}
_FROZEN = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)


# ------------------------------------------------------------------------------------------
# parameters (Deribit's own ``model_params`` field names)


class PairParams(BaseModel):
    """``model_params.currency_pair.<pair>`` of ``private/pme/simulate``."""

    model_config = _FROZEN

    price_range: float = Field(gt=0.0, lt=1.0, description="largest standard price move")
    volatility_range_up: float = Field(ge=0.0, description="vol shock up at 30 days")
    volatility_range_down: float = Field(ge=0.0, description="vol shock down at 30 days")
    short_term_vega_power: float = Field(ge=0.0, description="power p for DTE ≤ 30 days")
    long_term_vega_power: float = Field(ge=0.0, description="power p for DTE > 30 days")
    min_volatility_for_shock_up: float = Field(ge=0.0, description="see min_vol_rule")
    extended_table_factor: float = Field(ge=0.0, description="multiplier on every extended "
                                         "entry, on top of the price_range/|move| fraction "
                                         "(published value 1 [D7, D8])")
    max_delta_shock: float = Field(0.1, ge=0.0, description="carried, not used: the "
                                   "delta-shock formula is UNCONFIRMED")
    delta_total_liq_shock_threshold: float = Field(2e7, ge=0.0, description="carried, not "
                                                   "used: delta-shock formula UNCONFIRMED")
    m_inc: float = Field(0.0, ge=0.0, description="carried, not used: role UNCONFIRMED")


class CurrencyParams(BaseModel):
    """``model_params.currency.<ccy>`` of ``private/pme/simulate`` (amounts in that currency
    unless ``currency_amounts_in_usd``)."""

    model_config = _FROZEN

    min_annualised_move: float = Field(ge=0.0, description="roll-shock floor per unit of size")
    annualised_move_risk: float = Field(ge=0.0, description="roll-shock move per year")
    pnl_offset: float = Field(ge=0.0, le=1.0, description="fraction of scenario gains credited")
    extended_dampener: float = Field(ge=0.0, description="extended-table dampener: |P&L| of "
                                     "an extended entry reduced by (|move|/price_range − 1)·"
                                     "extended_dampener USD (UNCONFIRMED formula and unit: "
                                     "third-party reading, see currency_amounts_in_usd)")
    max_offsetable_pnl: float = Field(ge=0.0, description="cap on each credited gain "
                                      "(role and unit UNCONFIRMED)")
    haircut: float = Field(0.0, ge=0.0, lt=1.0, description="X:PM: fraction of this coin's "
                           "balance added to IM, and withheld from its scenario gains "
                           "(semantics UNCONFIRMED; [D6] names an IM haircut)")
    equity_side_impact: Literal["both", "up", "down", "none"] = Field(
        "both", description="X:PM: in which price scenarios of its pair a balance in this "
        "currency is revalued ('both', 'up' = rising moves only, 'down', 'none'); reading of "
        "the published field name, UNCONFIRMED")
    correlation_set: bool = Field(False, description="X:PM with cross_pair_scenarios="
                                  "'correlation_set': pairs of currencies flagged true move "
                                  "together (same scenario index); the others are stressed "
                                  "independently. Reading of the field name, UNCONFIRMED")


class OrderMargins(BaseModel):
    """IM items that come from orders and quoting, not from positions (venue-reported)."""

    model_config = _FROZEN

    open_orders_margin: float = Field(0.0, ge=0.0)
    mmp_margin: float = Field(0.0, ge=0.0)
    spot_margin: float = Field(0.0, ge=0.0)


def default_pairs() -> dict[str, PairParams]:
    """btc_usd: Deribit API example of 2024-06-17 [D7]; eth_usd: mainnet response of
    2026-02-15 [D8]."""
    return {
        "btc_usd": PairParams(price_range=0.16, volatility_range_up=0.5,
                              volatility_range_down=0.25, short_term_vega_power=0.3,
                              long_term_vega_power=0.13, min_volatility_for_shock_up=0.5,
                              extended_table_factor=1.0, max_delta_shock=0.1,
                              delta_total_liq_shock_threshold=2e7, m_inc=0.00005),
        "eth_usd": PairParams(price_range=0.18, volatility_range_up=0.4,
                              volatility_range_down=0.25, short_term_vega_power=0.3,
                              long_term_vega_power=0.13, min_volatility_for_shock_up=0.5,
                              extended_table_factor=1.0, max_delta_shock=0.1,
                              delta_total_liq_shock_threshold=2e7, m_inc=0.000004)}


def default_currencies() -> dict[str, CurrencyParams]:
    """btc: 2024-06-17 [D7] (the latest published); eth and usd: 2026-02-15 [D8]."""
    return {
        "btc": CurrencyParams(min_annualised_move=0.01, annualised_move_risk=0.075,
                              pnl_offset=0.0, extended_dampener=100000.0,
                              max_offsetable_pnl=0.0, haircut=0.0, equity_side_impact="both"),
        "eth": CurrencyParams(min_annualised_move=0.005, annualised_move_risk=0.05,
                              pnl_offset=0.6, extended_dampener=200000.0,
                              max_offsetable_pnl=2e7, haircut=0.0, equity_side_impact="both"),
        "usd": CurrencyParams(min_annualised_move=0.01, annualised_move_risk=0.1,
                              pnl_offset=0.4, extended_dampener=25000.0,
                              max_offsetable_pnl=1e6, haircut=0.0, equity_side_impact="none")}


def _merge(defaults: dict[str, BaseModel], given: Any) -> Any:
    """Per-key, per-field merge of user entries over the defaults (keys lower-cased)."""
    if not isinstance(given, dict):
        return given
    out: dict[str, Any] = dict(defaults)
    for key, val in given.items():
        k = str(key).lower()
        if isinstance(val, dict) and k in defaults:
            out[k] = {**defaults[k].model_dump(), **val}
        else:
            out[k] = val
    return out


class DeribitPmParams(ModelParams):
    collateral: Literal["segregated", "cross"] = Field(
        "segregated",
        description="'segregated' = S:PM, one risk matrix and margin per settlement currency; "
                    "'cross' = X:PM, one USD unit over the account: per currency pair one USD "
                    "risk vector over every settlement currency (coin P&L valued at the "
                    "scenario's price) and the coin collateral revalued in the same scenarios "
                    "[D5: 'assesses the entire portfolio for all available assets', D6]; pairs "
                    "combined per cross_pair_scenarios. The X:PM algorithm is not published: "
                    "UNCONFIRMED reading, see docs/models/deribit-pm.md.")
    mm_factor: float = Field(0.8, gt=0.0, le=1.0,
                             description="MM = mm_factor × risk_matrix_margin [D7, D8].")
    buckets_count: int = Field(4, ge=1, le=50,
                               description="price buckets per side of 0 [D7, D8].")
    currency_pair: dict[str, PairParams] = Field(
        default_factory=default_pairs,
        description="Per currency pair (Deribit model_params.currency_pair): btc_usd of "
                    "2024-06-17 [D7], eth_usd of 2026-02-15 [D8]. Given entries are merged "
                    "field by field over the defaults; add e.g. sol_usd for other underlyings.")
    currency: dict[str, CurrencyParams] = Field(
        default_factory=default_currencies,
        description="Per settlement currency (Deribit model_params.currency; usd = stablecoin "
                    "settled): btc of 2024-06-17 [D7], eth and usd of 2026-02-15 [D8]. Merged "
                    "field by field over the defaults. max_offsetable_pnl as a cap on each "
                    "credited gain: UNCONFIRMED; haircut applied as an X:PM IM add-on: "
                    "UNCONFIRMED.")
    extended_moves: tuple[float, ...] = Field(
        (-0.66, -0.33, 0.5, 1.0, 2.0, 3.0, 4.0, 5.0), min_length=0, max_length=32,
        description="Extended-table price moves, run in the vol-up scenario only [D4].")
    vol_scenario_order: tuple[VolScenario, VolScenario, VolScenario] = Field(
        ("up", "same", "down"),
        description="Order of the vol scenarios inside each bucket's triplet. UNCONFIRMED "
                    "(futures-only examples cannot tell).")
    vol_shock_mode: Literal["multiplicative", "additive"] = Field(
        "multiplicative",
        description="'multiplicative': σ·(1 + up·m), σ·max(0, 1 − down·m); 'additive': σ ± "
                    "vol points, floored at 0; m = (30/DTE)^p. UNCONFIRMED at Deribit "
                    "(multiplicative as in Derive's analogous PMRM).")
    dte_floor_days: float = Field(
        1.0, gt=0.0,
        description="Floor on days to expiry in (30/DTE)^p. UNCONFIRMED (Derive uses 1 day).")
    vega_power_switch_days: float = Field(
        30.0, gt=0.0,
        description="The 30 in (30/DTE)^p and the short/long-term power switch (legacy "
                    "Deribit PM page [D10]).")
    min_vol_rule: Literal["floor_shocked", "floor_base", "off"] = Field(
        "floor_shocked",
        description="How min_volatility_for_shock_up applies: 'floor_shocked' = max(σ_up, "
                    "min) (as Derive's minVolUpShock), 'floor_base' = shock max(σ, min), 'off'. "
                    "UNCONFIRMED.")
    extended_pnl_scaling: Literal["range_over_move", "off"] = Field(
        "range_over_move",
        description="'range_over_move' (\"only a fraction of simulated P&L\" [D4]): an extended "
                    "entry is the P&L at move x times factor·e/x, e = ±min(|x|, price_range) "
                    "the edge of the standard range, and coin-settled entries also times "
                    "(1+x)/(1+e), i.e. valued at the edge price. Third-party implementation "
                    "(public Deribit PM simulator, repository unnamed); DERIVED check: it gives "
                    "every published futures extended entry [D7, D8] exactly; UNCONFIRMED for "
                    "options and linear products. 'off': full P&L (the pre-2026-12 reading).")
    extended_futures_clip: bool = Field(
        True,
        description="extended_pnl_scaling='off' only: futures take the extended moves clipped "
                    "to ±price_range (reproduces [D7, D8] in that mode).")
    extended_dampener_rule: Literal["deductible", "off"] = Field(
        "deductible",
        description="'deductible': |P&L| of an extended entry reduced by min((|x|/price_range "
                    "− 1)·extended_dampener, |P&L|), gains and losses alike (third-party "
                    "reading, UNCONFIRMED; zeroes both published extended vectors); 'off'.")
    currency_amounts_in_usd: bool = Field(
        True,
        description="extended_dampener and max_offsetable_pnl are USD amounts: in a coin "
                    "vector the dampener is converted at the edge price S·(1+e) of each "
                    "extended move, the cap at the index (third-party reading; a coin unit "
                    "would make btc's 100,000 a 100,000-BTC deductible that no book reaches). "
                    "UNCONFIRMED. false = settlement-currency amounts (the pre-2026-12 "
                    "reading, under which the extended table never binds).")
    cross_pair_scenarios: Literal["correlation_set", "joint", "independent"] = Field(
        "correlation_set",
        description="X:PM: how the currency pairs' scenarios combine. 'joint': every pair takes "
                    "scenario s of its own grid at once (same bucket, vol and extended index); "
                    "'independent': each pair's worst case counts in full (no offset between "
                    "pairs); 'correlation_set': joint for pairs whose coin currency has "
                    "correlation_set true, independent for the rest (false for every published "
                    "currency [D7, D8]). UNCONFIRMED.")
    collateral_revaluation: Literal["position_pairs", "all", "off"] = Field(
        "position_pairs",
        description="X:PM: which coin balances are revalued in the scenarios of their pair "
                    "(balance·S·move, gains less the currency's haircut): 'position_pairs' = "
                    "coins whose pair holds a position of the account, 'all', 'off'. "
                    "UNCONFIRMED ([D6] describes collateral valued in USD and offset "
                    "currencies that 'offset upside risk').")
    roll_shock_term: Literal["linear", "sqrt", "floor_only"] = Field(
        "linear",
        description="Roll shock per future: |q|·max(min_annualised_move, annualised_move_risk·"
                    "g(T)) with g(T) = T ('linear'), √T ('sqrt'), or the floor only. Only the "
                    "floor is exercised by the published examples: UNCONFIRMED.")
    linear_reference_price: Literal["mark", "index"] = Field(
        "mark",
        description="Price P in the linear-future P&L q·P·x and its roll shock (research §1.5 "
                    "writes S; DERIVED, no published linear vector).")
    worst_case_decimals: int | None = Field(
        9, ge=0, le=15,
        description="worst_case is rounded to this many decimals before adding the roll shock "
                    "(DERIVED: reproduces risk_matrix_margin of TV-D5 and TV-D6 exactly); "
                    "null = no rounding.")
    initial_margin_decimals: int | None = Field(
        9, ge=0, le=15,
        description="IM is rounded to this many decimals (as published in TV-D5/TV-D6; never "
                    "below MM); null = no rounding.")
    order_margins: dict[str, dict[str, OrderMargins]] = Field(
        default_factory=dict,
        description="Account id → settlement currency → open_orders_margin, mmp_margin, "
                    "spot_margin (settlement-currency amounts the venue reports; a book holds "
                    "no orders). Added to IM, not MM [D7].")

    @field_validator("currency_pair", mode="before")
    @classmethod
    def _merge_pairs(cls, v: Any) -> Any:
        return _merge(dict(default_pairs()), v)

    @field_validator("currency", mode="before")
    @classmethod
    def _merge_currencies(cls, v: Any) -> Any:
        return _merge(dict(default_currencies()), v)

    @model_validator(mode="after")
    def _distinct_vol_order(self) -> DeribitPmParams:
        if len(set(self.vol_scenario_order)) != 3:
            raise ValueError("vol_scenario_order: must name up, same and down once each")
        if any(not x > -1.0 for x in self.extended_moves):
            raise ValueError("extended_moves: every move must be > -1")
        return self


# ------------------------------------------------------------------------------------------
# scenario grid and revaluation ([instruments × scenarios], NumPy)


@dataclass(frozen=True)
class ScenarioGrid:
    """The scenarios of one currency pair: standard (bucket-major) then extended.

    ``moves[s]`` is the relative price move of scenario ``s``; ``vol[s]`` is +1 (up), 0 (same)
    or −1 (down); ``futures_moves`` the moves futures take (extended clipped to ±price_range
    when clipping is on); ``edge[s]`` the move at the edge of the standard range,
    ``sign(x)·min(|x|, price_range)`` (``x`` itself for standard scenarios).
    """

    pair: str
    price_range: float
    moves: FloatArray
    vol: NDArray[np.int8]
    futures_moves: FloatArray
    n_standard: int
    scan_order: NDArray[np.intp]
    edge: FloatArray

    @property
    def n_scenarios(self) -> int:
        return int(self.moves.size)

    def describe(self, s: int) -> dict[str, Any]:
        """Deribit-style location of scenario ``s``: source, index, bucket, side, move, vol."""
        x = float(self.moves[s])
        side = "left" if x < 0 else "right" if x > 0 else "center"
        if s < self.n_standard:
            return {"source": "standard", "index": s, "bucket": s // 3 + 1, "side": side,
                    "price_move": x, "vol_scenario": _VOL_NAME[int(self.vol[s])]}
        k = s - self.n_standard
        return {"source": "extended", "index": k, "bucket": k + 1, "side": side,
                "price_move": x, "vol_scenario": "up"}


def scenario_grid(pair: str, price_range: float, buckets_count: int,
                  extended_moves: Sequence[float], vol_order: Sequence[str],
                  clip_futures: bool = True) -> ScenarioGrid:
    """Build a pair's grid. The worst-scenario scan order visits buckets from the left and, in
    a bucket, the 'same'-vol scenario first (DERIVED: Deribit reports the middle of a tied
    triplet in TV-D5 and TV-D6), then the extended scenarios."""
    n = buckets_count
    codes = [_VOL_CODE[v] for v in vol_order]
    std_moves = [price_range * (b - n) / n for b in range(2 * n + 1) for _ in codes]
    std_vol = [c for _ in range(2 * n + 1) for c in codes]
    ext = [float(x) for x in extended_moves]
    moves = np.array(std_moves + ext, dtype=np.float64)
    vol = np.array(std_vol + [1] * len(ext), dtype=np.int8)
    edge = moves.copy()
    edge[len(std_moves):] = np.clip(edge[len(std_moves):], -price_range, price_range)
    fut = edge.copy() if clip_futures else moves.copy()
    same = codes.index(0)
    tri = [same] + [i for i in range(3) if i != same]
    scan = [3 * b + i for b in range(2 * n + 1) for i in tri] + \
        list(range(len(std_moves), len(std_moves) + len(ext)))
    return ScenarioGrid(pair, price_range, moves, vol, fut, len(std_moves),
                        np.array(scan, dtype=np.intp), edge)


def shocked_vols(years: FloatArray, vol: FloatArray, pair: PairParams, *,
                 mode: str = "multiplicative", dte_floor_days: float = 1.0,
                 switch_days: float = 30.0, min_vol_rule: str = "floor_shocked",
                 ) -> tuple[FloatArray, FloatArray]:
    """Vol-up and vol-down implied vols per option (annualised decimals).

    ``m = (switch/DTE)^p``, ``DTE = max(365·T, dte_floor_days)``, ``p`` the short-term power for
    ``DTE ≤ switch`` and the long-term power beyond.
    """
    T = np.asarray(years, dtype=np.float64)
    sig = np.asarray(vol, dtype=np.float64)
    dte = np.maximum(T * 365.0, dte_floor_days)
    p = np.where(dte <= switch_days, pair.short_term_vega_power, pair.long_term_vega_power)
    m = (switch_days / dte) ** p
    base = np.maximum(sig, pair.min_volatility_for_shock_up) if min_vol_rule == "floor_base" \
        else sig
    if mode == "multiplicative":
        up = base * (1.0 + pair.volatility_range_up * m)
        down = sig * np.maximum(0.0, 1.0 - pair.volatility_range_down * m)
    else:
        up = base + pair.volatility_range_up * m
        down = np.maximum(0.0, sig - pair.volatility_range_down * m)
    if min_vol_rule == "floor_shocked":
        up = np.maximum(up, pair.min_volatility_for_shock_up)
    return up, down


@dataclass(frozen=True)
class RiskVectors:
    """P&L per unit of base size of each instrument in each scenario of one pair's grid, in the
    instrument's settlement currency: ``pnl[i, s]`` (``[instruments × scenarios]``)."""

    grid: ScenarioGrid
    symbols: tuple[str, ...]
    pnl: FloatArray
    vol: FloatArray
    vol_up: FloatArray
    vol_down: FloatArray


def revalue(instruments: Sequence[Instrument], market: MarketSnapshot, grid: ScenarioGrid,
            pair: PairParams, params: DeribitPmParams) -> RiskVectors:
    """Revalue instruments of one pair on ``grid`` (vectorised over instruments × scenarios).

    Futures rows are per coin (inverse) or per unit of underlying (linear); option rows per
    unit of underlying. Extended columns: with ``extended_pnl_scaling='range_over_move'`` the
    P&L at move ``x`` times ``e/x`` (``e`` = ``grid.edge``), coin-settled rows also times
    ``(1+x)/(1+e)``; futures get the same by taking the move ``e`` (``q·x/(1+x)·(e/x)·
    (1+x)/(1+e) = q·e/(1+e)``, linear ``q·P·x·e/x = q·P·e``). Then every extended column is
    multiplied by ``extended_table_factor``.
    """
    n, S = len(instruments), grid.n_scenarios
    out = np.zeros((n, S))
    vol = np.full(n, np.nan)
    up = np.full(n, np.nan)
    down = np.full(n, np.nan)
    fut = [i for i, ins in enumerate(instruments) if not ins.is_option]
    opt = [i for i, ins in enumerate(instruments) if ins.is_option]
    if fut:
        inv = np.array([instruments[i].inverse for i in fut])
        ref = np.array([_linear_ref(instruments[i], market, params) for i in fut])
        out[fut] = future_pnl(inv, ref, grid.futures_moves)
    if opt:
        o = [instruments[i] for i in opt]
        T = np.array([market.years_to_expiry(x) for x in o])
        sig = np.array([market.implied_vol(x) for x in o])
        u, d = shocked_vols(T, sig, pair, mode=params.vol_shock_mode,
                            dte_floor_days=params.dte_floor_days,
                            switch_days=params.vega_power_switch_days,
                            min_vol_rule=params.min_vol_rule)
        code = grid.vol[None, :]
        shocked = np.where(code == 1, u[:, None], np.where(code == -1, d[:, None], sig[:, None]))
        inv = np.array([x.inverse for x in o])
        pnl = option_pnl(inv, np.array(market.forwards(o)),
                         np.array([x.strike for x in o], dtype=np.float64), T, sig,
                         np.array([x.is_call for x in o]), grid.moves, shocked)
        if params.extended_pnl_scaling == "range_over_move":
            pnl[:, grid.n_standard:] *= extended_scale(grid)[None, :] * np.where(
                inv[:, None], coin_edge_factor(grid)[None, :], 1.0)
        out[opt] = pnl
        vol[opt], up[opt], down[opt] = sig, u, d
    out[:, grid.n_standard:] *= pair.extended_table_factor
    return RiskVectors(grid, tuple(x.symbol for x in instruments), out, vol, up, down)


def extended_scale(grid: ScenarioGrid) -> FloatArray:
    """``e/x`` per extended scenario (1 where ``x = 0``): the fraction of simulated P&L."""
    x = grid.moves[grid.n_standard:]
    e = grid.edge[grid.n_standard:]
    return np.divide(e, x, out=np.ones_like(x), where=x != 0.0)


def coin_edge_factor(grid: ScenarioGrid) -> FloatArray:
    """``(1+x)/(1+e)`` per extended scenario: a coin amount valued at the shocked price ``x``
    re-expressed in coin at the edge price ``e``."""
    x = grid.moves[grid.n_standard:]
    e = grid.edge[grid.n_standard:]
    return (1.0 + x) / (1.0 + e)


def _linear_ref(ins: Instrument, market: MarketSnapshot, params: DeribitPmParams) -> float:
    if ins.inverse:
        return 1.0
    if params.linear_reference_price == "index":
        return market.index[ins.underlying] / market.usd_price(ins.settle)
    assert ins.mark_price is not None
    return ins.mark_price


def aggregate(pre: FloatArray, grid: ScenarioGrid, *, pnl_offset: FloatArray,
              max_offsetable: FloatArray, dampener: FloatArray, rule: str) -> FloatArray:
    """``aggregated_risk_vectors`` from ``pre_aggregated`` rows ``[r × scenarios]``.

    Extended entries: ``|P&L|`` reduced by ``min(max(|x|/price_range − 1, 0)·dampener, |P&L|)``
    (``rule='deductible'``). Then every gain becomes ``min(pnl_offset·gain, max_offsetable)``;
    losses are unchanged. ``pnl_offset`` and ``max_offsetable`` are per row; ``dampener`` per
    row (``[r]``) or per row and extended scenario (``[r, n_extended]``), in the rows' unit.
    """
    agg = np.array(pre, dtype=np.float64, copy=True)
    ns = grid.n_standard
    if rule == "deductible" and agg.shape[1] > ns:
        ext = agg[:, ns:]
        ratio = np.maximum(np.abs(grid.moves[ns:]) / grid.price_range - 1.0, 0.0)
        damp = np.asarray(dampener, dtype=np.float64)
        damp = damp[:, None] if damp.ndim == 1 else damp
        adj = np.minimum(ratio[None, :] * damp, np.abs(ext))
        agg[:, ns:] = ext - np.sign(ext) * adj
    gains = np.minimum(agg * np.asarray(pnl_offset)[:, None], np.asarray(max_offsetable)[:, None])
    return np.where(agg > 0.0, gains, agg)


def worst_index(agg: FloatArray, grid: ScenarioGrid) -> NDArray[np.intp]:
    """Per row, the scenario of the smallest aggregated P&L; ties go to the first in
    ``grid.scan_order``."""
    scanned = agg[:, grid.scan_order]
    first = np.argmax(scanned == scanned.min(axis=1, keepdims=True), axis=1)
    return grid.scan_order[first]


def split(v: FloatArray, g: ScenarioGrid) -> dict[str, list[float]]:
    """A risk vector as Deribit reports it: ``{"standard": [...], "extended": [...]}``."""
    return {"standard": v[:g.n_standard].tolist(), "extended": v[g.n_standard:].tolist()}


def scenario_details(vectors: dict[str, RiskVectors]) -> dict[str, Any]:
    """Per pair: the price moves, vol scenarios and each option's shocked vols."""
    scen = {}
    for pk, rv in vectors.items():
        g = rv.grid
        shocks = {s: {"vol": float(rv.vol[i]), "vol_up": float(rv.vol_up[i]),
                      "vol_down": float(rv.vol_down[i])}
                  for i, s in enumerate(rv.symbols) if not math.isnan(rv.vol[i])}
        scen[pk] = {"price_range": g.price_range,
                    "standard": {"price_move": g.moves[:g.n_standard].tolist(),
                                 "vol_scenario": [_VOL_NAME[int(c)]
                                                  for c in g.vol[:g.n_standard]]},
                    "extended": {"price_move": g.moves[g.n_standard:].tolist(),
                                 "edge_price_move": g.edge[g.n_standard:].tolist(),
                                 "futures_price_move": g.futures_moves[g.n_standard:].tolist(),
                                 "vol_scenario": "up"},
                    "option_vols": shocks}
    return scen


def _round(x: float, decimals: int | None) -> float:
    return x if decimals is None else round(x, decimals)


def _years_move(T: float, cp: CurrencyParams, term: str) -> float:
    g = T if term == "linear" else math.sqrt(T) if term == "sqrt" else 0.0
    return max(cp.min_annualised_move, cp.annualised_move_risk * g)


# ------------------------------------------------------------------------------------------
# the model


@dataclass
class PositionRisk:
    """One position of a unit: its risk vector ``row`` (settlement currency, per scenario of
    its pair's grid), roll shock and the attribution filled in by the margin step."""

    j: int
    ins: Instrument
    size: float
    q: float
    vkey: str
    ccy: str
    row: FloatArray
    roll: float = 0.0
    worst_share: float = 0.0
    pnl_worst: float = 0.0
    extra: float = 0.0


def _amount(value: float, settle: str, in_usd: bool, market: MarketSnapshot) -> float:
    return market.convert(value, "USD", settle) if in_usd else value


@register
class DeribitPm(MarginModel):
    name = "deribit-pm"
    version = "2026-02.2"
    source = ("Deribit support 'Portfolio Margin', 'Margin types and usage', 'Cross-collateral "
              "specifications'; API private/pme/simulate (example of 2024-06-17) and a captured "
              "mainnet response of 2026-02-15; API changelog on pre_aggregated_risk_vectors; "
              "extended-table formula from a third-party PM simulator — research/"
              "crypto-venues.md §1.5, §1.8, §8.1; docs/models/deribit-pm.md")
    summary = ("Deribit portfolio margin: price buckets × vol scenarios + extended table, "
               "pnl_offset, roll shock; MM = 0.8 × risk matrix; S:PM or X:PM.")
    Params = DeribitPmParams
    #: Deribit PM is cross-margined within its unit (a currency for S:PM, the account for
    #: X:PM); 'portfolio' and 'cross' accounts both get the risk matrix, isolated has none.
    modes = frozenset({MarginMode.PORTFOLIO, MarginMode.CROSS})
    params: DeribitPmParams
    #: rows revalued by :meth:`prepare`: (the market they belong to, symbol -> (vectors, row))
    _rv_memo: tuple[MarketSnapshot, dict[str, tuple[RiskVectors, int]]] | None = None

    def cross_scope(self, account: Account) -> Scope:
        return "account" if self.params.collateral == "cross" else "currency"

    def check_instrument(self, ins: Instrument) -> str | None:
        why = instrument_problem(ins)
        if why:
            return why
        pk, ck = pair_key(ins.underlying), currency_key(ins.settle)
        if pk not in self.params.currency_pair:
            return (f"no currency_pair parameters for {pk!r} (known: "
                    f"{', '.join(sorted(self.params.currency_pair))}; pass --param "
                    f"currency_pair=...)")
        if ck not in self.params.currency:
            return (f"no currency parameters for {ck!r} (known: "
                    f"{', '.join(sorted(self.params.currency))}; pass --param currency=...)")
        return None

    def grid(self, underlying: str) -> ScenarioGrid:
        """The scenario grid of ``underlying``'s currency pair under these parameters."""
        pk = pair_key(underlying)
        p = self.params
        clip = p.extended_futures_clip or p.extended_pnl_scaling == "range_over_move"
        return scenario_grid(pk, p.currency_pair[pk].price_range, p.buckets_count,
                             p.extended_moves, p.vol_scenario_order, clip)

    def risk_vectors(self, instruments: Sequence[Instrument],
                     market: MarketSnapshot) -> dict[str, RiskVectors]:
        """Per currency pair, the ``[instruments × scenarios]`` P&L per unit of base size
        (rows prepared by :meth:`prepare` for this market are reused: each row depends only on
        its own instrument)."""
        by_pair: dict[str, list[Instrument]] = {}
        for ins in instruments:
            by_pair.setdefault(ins.underlying, []).append(ins)
        memo = self._rv_memo
        if memo is not None and memo[0] is market and all(
                i.symbol in memo[1] for i in instruments):
            out = {}
            for und, group in by_pair.items():
                got = [memo[1][i.symbol] for i in group]
                rv0 = got[0][0]
                out[pair_key(und)] = RiskVectors(rv0.grid, tuple(i.symbol for i in group),
                                                 np.stack([g.pnl[j] for g, j in got]),
                                                 np.array([g.vol[j] for g, j in got]),
                                                 np.array([g.vol_up[j] for g, j in got]),
                                                 np.array([g.vol_down[j] for g, j in got]))
            return out
        return {pair_key(und): revalue(group, market, self.grid(und),
                                       self.params.currency_pair[pair_key(und)], self.params)
                for und, group in by_pair.items()}

    def prepare(self, pairs: Sequence[tuple[MarginUnit, Account]],
                market: MarketSnapshot) -> None:
        """Revalue every held instrument once on its pair's grid (the whole-book path)."""
        syms = sorted({a.positions[j].symbol for u, a in pairs for j in u.position_indices})
        vectors = self.risk_vectors([market.instrument(s) for s in syms], market)
        rows = {sym: (rv, j) for rv in vectors.values() for j, sym in enumerate(rv.symbols)}
        self._rv_memo = (market, rows)

    def positions(self, unit: MarginUnit, account: Account, market: MarketSnapshot,
                  ) -> tuple[dict[str, RiskVectors], list[PositionRisk]]:
        """One revaluation per distinct instrument of ``unit``; each position's risk vector
        (settlement currency) with its roll shock."""
        syms = list(dict.fromkeys(account.positions[j].symbol for j in unit.position_indices))
        instruments = [market.instrument(s) for s in syms]
        vectors = self.risk_vectors(instruments, market)
        rows: dict[str, FloatArray] = {}
        for rv in vectors.values():
            for i, s in enumerate(rv.symbols):
                rows[s] = rv.pnl[i]
        pos: list[PositionRisk] = []
        for j in unit.position_indices:
            ps = account.positions[j]
            ins = market.instrument(ps.symbol)
            q = base_size(ins, ps.size)
            x = PositionRisk(j, ins, ps.size, q, f"{ins.underlying.lower()}_{ins.settle.lower()}",
                     ins.settle, q * rows[ins.symbol])
            if not ins.is_option:
                cp = self.params.currency[currency_key(ins.settle)]
                x.roll = abs(q) * _linear_ref(ins, market, self.params) * _years_move(
                    market.years_to_expiry(ins), cp, self.params.roll_shock_term)
            pos.append(x)
        return vectors, pos

    def margin_unit(self, unit: MarginUnit, account: Account,
                    market: MarketSnapshot) -> UnitMargin:
        if unit.scope == "account":
            from margin_engine.models.venues.deribit_pm_cross import cross_margin_unit
            return cross_margin_unit(self, unit, account, market)
        p = self.params
        vectors, pos = self.positions(unit, account, market)
        vkeys = list(dict.fromkeys(x.vkey for x in pos))
        members = {k: [x for x in pos if x.vkey == k] for k in vkeys}
        grids = {k: vectors[pair_key(members[k][0].ins.underlying)].grid for k in vkeys}
        settle_of = {k: members[k][0].ccy for k in vkeys}
        pre = {k: np.sum([x.row for x in members[k]], axis=0) for k in vkeys}
        # 3. aggregate, worst case, roll shock per vector
        vdet: dict[str, dict[str, Any]] = {}
        agg_vec: dict[str, FloatArray] = {}
        for k in vkeys:
            settle, g = settle_of[k], grids[k]
            cp = p.currency[currency_key(settle)]
            agg = self._aggregate(pre[k][None, :], g, cp, settle, market)[0]
            agg_vec[k] = agg
            w = int(worst_index(agg[None, :], g)[0])
            worst = max(0.0, -float(agg[w]))
            worst_used = _round(worst, p.worst_case_decimals)
            pre_w = float(pre[k][w])
            scale = worst_used / -pre_w if pre_w != 0.0 else 1.0
            roll = 0.0
            for x in members[k]:
                x.pnl_worst = float(x.row[w])
                x.worst_share = -x.pnl_worst * scale
                roll += x.roll
            vdet[k] = {"worst_case": worst, "worst_case_bucket": g.describe(w),
                       "roll_shock": roll, "delta_shock": 0.0, "correlation_contingency": 0.0,
                       "risk_matrix_margin": worst_used + roll}
        # 4. per settlement currency: MM, IM with order margins and rounding
        ccys = list(dict.fromkeys(settle_of[k] for k in vkeys))
        margins: dict[str, dict[str, Any]] = {}
        im_unit = mm_unit = 0.0
        comps = {"worst_case": 0.0, "roll_shock": 0.0, "order_margins": 0.0, "rounding": 0.0}
        orders = {c.upper(): m for c, m in p.order_margins.get(account.id, {}).items()}
        for c in ccys:
            ks = [k for k in vkeys if settle_of[k] == c]
            worst_c = sum(vdet[k]["worst_case"] for k in ks)
            roll_c = sum(vdet[k]["roll_shock"] for k in ks)
            rmm = sum(vdet[k]["risk_matrix_margin"] for k in ks)
            om = orders.get(c.upper(), OrderMargins())
            extra = om.open_orders_margin + om.mmp_margin + om.spot_margin
            mm = p.mm_factor * rmm
            im = max(_round(rmm + extra, p.initial_margin_decimals), mm)
            rounding = im - (worst_c + roll_c + extra)
            fx = market.convert(1.0, c, unit.currency)
            members_c = [x for x in pos if x.ccy == c]
            for x, share in zip(members_c, pro_rata(im - rmm, [x.worst_share + x.roll
                                                                for x in members_c]),
                                strict=True):
                x.extra = share
            im_unit += im * fx
            mm_unit += mm * fx
            comps["worst_case"] += worst_c * fx
            comps["roll_shock"] += roll_c * fx
            comps["order_margins"] += extra * fx
            comps["rounding"] += rounding * fx
            margins[c.lower()] = {
                "maintenance_margin": mm, "initial_margin": im,
                "initial_margin_details": {
                    "open_orders_margin": om.open_orders_margin, "mmp_margin": om.mmp_margin,
                    "spot_margin": om.spot_margin, "risk_matrix_margin": rmm,
                    "risk_matrix_margin_details": {k: vdet[k] for k in ks}}}
        # 5. each position alone (its own risk matrix, no order margins)
        own = self._alone(pos, grids, market)
        positions = []
        for x, (own_im, own_mm, own_det) in zip(pos, own, strict=True):
            fx = market.convert(1.0, x.ccy, unit.currency)
            contribution = (x.worst_share + x.roll + x.extra) * fx
            positions.append(PositionMargin(
                index=x.j, symbol=x.ins.symbol, size=x.size, initial_margin=own_im * fx,
                maintenance_margin=own_mm * fx, contribution=contribution,
                notional=market.convert(notional(x.ins, x.size, market), x.ins.settle,
                                        unit.currency),
                details={"size_base": x.q, "risk_vector": x.vkey, "settle": x.ccy,
                         "pnl_worst_scenario": x.pnl_worst, "worst_case_share": x.worst_share,
                         "roll_shock": x.roll, "order_margin_and_rounding_share": x.extra,
                         **own_det}))
        details = self._details(vectors, pos, pre, agg_vec, grids, margins)
        return UnitMargin(id=unit.id, currency=unit.currency, initial_margin=im_unit,
                          maintenance_margin=mm_unit, components=comps,
                          positions=tuple(positions), details=details)

    # -- helpers ------------------------------------------------------------------------------
    def _aggregate(self, pre: FloatArray, g: ScenarioGrid, cp: CurrencyParams, settle: str,
                   market: MarketSnapshot) -> FloatArray:
        p = self.params
        usd = p.currency_amounts_in_usd
        r = pre.shape[0]
        damp = np.full(g.n_scenarios - g.n_standard,
                       _amount(cp.extended_dampener, settle, usd, market))
        if usd and currency_key(settle) != "usd":   # a coin: USD at the edge price S·(1+e)
            damp = damp / (1.0 + g.edge[g.n_standard:])
        return aggregate(
            pre, g, pnl_offset=np.full(r, cp.pnl_offset),
            max_offsetable=np.full(r, _amount(cp.max_offsetable_pnl, settle, usd, market)),
            dampener=np.broadcast_to(damp, (r, damp.size)), rule=p.extended_dampener_rule)

    def _alone(self, pos: list[PositionRisk], grids: dict[str, ScenarioGrid],
               market: MarketSnapshot) -> list[tuple[float, float, dict[str, Any]]]:
        """IM, MM (settlement currency) of each position margined on its own: the positions
        of one risk vector (one grid, one settlement currency) aggregated as the rows of one
        array (row by row, the same numbers as one call per position)."""
        p = self.params
        out: list[tuple[float, float, dict[str, Any]]] = [(0.0, 0.0, {})] * len(pos)
        by_vkey: dict[str, list[int]] = {}
        for i, x in enumerate(pos):
            by_vkey.setdefault(x.vkey, []).append(i)
        for k, idx in by_vkey.items():
            g, ccy = grids[k], pos[idx[0]].ccy
            agg = self._aggregate(np.stack([pos[i].row for i in idx]), g,
                                  p.currency[currency_key(ccy)], ccy, market)
            ws = worst_index(agg, g).tolist()
            for r, (i, w) in enumerate(zip(idx, ws, strict=True)):
                worst = max(0.0, -float(agg[r, w]))
                rmm = _round(worst, p.worst_case_decimals) + pos[i].roll
                mm = p.mm_factor * rmm
                im = max(_round(rmm, p.initial_margin_decimals), mm)
                out[i] = (im, mm, {"alone_worst_case": worst, "alone_risk_matrix_margin": rmm,
                                   "alone_worst_case_bucket": g.describe(w)})
        return out

    @staticmethod
    def _details(vectors: dict[str, RiskVectors], pos: list[PositionRisk],
                 pre: dict[str, FloatArray], agg: dict[str, FloatArray],
                 grids: dict[str, ScenarioGrid],
                 margins: dict[str, dict[str, Any]]) -> dict[str, Any]:
        initial: dict[str, FloatArray] = {}
        grid_of: dict[str, ScenarioGrid] = {}
        for x in pos:
            initial[x.ins.symbol] = initial.get(x.ins.symbol, 0.0) + x.row
            grid_of[x.ins.symbol] = grids[x.vkey]
        worst = {k: d["risk_matrix_margin_details"][k]["worst_case_bucket"]
                 for d in (m["initial_margin_details"] for m in margins.values())
                 for k in d["risk_matrix_margin_details"]}
        return {
            "margin_model": "segregated_pm",
            "scenarios": scenario_details(vectors),
            "initial_risk_vectors": {s: split(v, grid_of[s]) for s, v in initial.items()},
            "pre_aggregated_risk_vectors": {k: split(v, grids[k]) for k, v in pre.items()},
            "aggregated_risk_vectors": {k: split(v, grids[k]) for k, v in agg.items()},
            "worst_scenario": worst,
            "margins": margins,
            "contribution_rule": "each position's P&L in its vector's worst scenario (scaled "
                                 "by worst_case / −pre-aggregated P&L there, which absorbs "
                                 "pnl_offset, dampener and rounding), plus its own roll shock; "
                                 "order margins and IM rounding pro rata to |worst share + "
                                 "roll|",
        }
