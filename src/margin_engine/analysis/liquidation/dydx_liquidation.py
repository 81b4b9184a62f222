"""dYdX v4 liquidation rules in quantums (``protocol/x/clob/keeper/liquidations.go``).

Pure functions over :mod:`.dydx_state`, reproducing the protocol's table tests
(``shared/data/peer/dydx-v4-liquidation-cases``, v4-chain ``84d4664``) exactly:

- fillable price ``FP = (PNNV − clamp(BA·(1 − TNC/TMMR), 0, 1)·SMMR·PMMR)/PS`` (exact rational,
  quote quantums per base quantum; ``GetFillablePrice``) and its conversion to subticks;
- bankruptcy quote quantums ``−ΔNNV − ⌊TNC·|ΔMMR|/TMMR⌋`` (reusing
  :func:`margin_engine.models.venues.dydx_v4.bankruptcy_price_qq`);
- insurance-fund delta of a liquidation fill (fee capped at ``max_liquidation_fee_ppm`` of the
  fill's quote, or the fund's loss) and whether the fund can take it;
- the position size to liquidate (per-position and per-subaccount-per-block limits, step size);
- the per-block subaccount limits on notional liquidated and insurance lost.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from fractions import Fraction

from margin_engine.analysis.liquidation.dydx_state import (
    MAX_UINT64,
    PPM,
    Perpetual,
    Subaccount,
    subaccount_risk,
    validate_reduction,
)
from margin_engine.models.venues.dydx_v4 import bankruptcy_price_qq


@dataclass(frozen=True)
class ClobPair:
    """Order-book parameters of a perpetual (``ClobPair``)."""

    quantum_conversion_exponent: int
    subticks_per_tick: int
    step_base_quantums: int = 1


@dataclass(frozen=True)
class LiquidationsConfig:
    """``LiquidationsConfig`` (``x/clob/types/liquidations_config.go``); defaults are
    ``LiquidationsConfig_Default`` of the keeper (``liquidations_config_keeper.go`` at
    ``84d4664``): fee 0.5 %, bankruptcy adjustment 100 %, spread 10 % of MMR, no min notional
    beyond 1 quote quantum, whole position, no per-block caps."""

    max_liquidation_fee_ppm: int = 5_000
    bankruptcy_adjustment_ppm: int = 1_000_000
    spread_to_maintenance_margin_ratio_ppm: int = 100_000
    min_position_notional_liquidated: int = 1
    max_position_portion_liquidated_ppm: int = 1_000_000
    max_notional_liquidated: int = MAX_UINT64
    max_quantums_insurance_lost: int = MAX_UINT64


def _position_values(sub: Subaccount, perpetuals: Mapping[int, Perpetual], perpetual_id: int,
                     quantums: int) -> tuple[int, int]:
    perp = perpetuals[perpetual_id]
    return perp.net_notional(quantums), perp.margin(quantums)[1]


def bankruptcy_quote_quantums(sub: Subaccount, perpetuals: Mapping[int, Perpetual],
                              perpetual_id: int, delta_quantums: int) -> int:
    """Quote quantums the subaccount receives (> 0) or pays (< 0) to apply ``delta_quantums``
    to its position at its bankruptcy price (``GetBankruptcyPriceInQuoteQuantums``)."""
    ps = sub.position(perpetual_id)
    validate_reduction(ps, delta_quantums)
    risk = subaccount_risk(sub, perpetuals)
    pnnv, pmmr = _position_values(sub, perpetuals, perpetual_id, ps)
    pnnv_after, pmmr_after = _position_values(sub, perpetuals, perpetual_id, ps + delta_quantums)
    return bankruptcy_price_qq(pnnv, pnnv_after, pmmr, pmmr_after, risk.nc, risk.mmr)


def fillable_price(sub: Subaccount, perpetuals: Mapping[int, Perpetual], perpetual_id: int,
                   delta_quantums: int, config: LiquidationsConfig = LiquidationsConfig()
                   ) -> Fraction:
    """Worst price (quote quantums per base quantum, exact) a liquidation order may fill at
    (``GetFillablePrice``): the oracle price moved toward bankruptcy by
    ``clamp(BA·(1 − TNC/TMMR), 0, 1)·SMMR`` of the position's MMR."""
    ps = sub.position(perpetual_id)
    validate_reduction(ps, delta_quantums)
    risk = subaccount_risk(sub, perpetuals)
    if risk.mmr <= 0:
        raise ValueError("subaccount: maintenance requirement must be > 0")
    pnnv, pmmr = _position_values(sub, perpetuals, perpetual_id, ps)
    adj = Fraction(config.bankruptcy_adjustment_ppm, PPM) * (1 - Fraction(risk.nc, risk.mmr))
    adj = min(max(adj, Fraction(0)), Fraction(1))
    spread = adj * Fraction(config.spread_to_maintenance_margin_ratio_ppm, PPM) * pmmr
    return (pnnv - spread) / ps


def fillable_price_to_subticks(price: Fraction, is_liquidating_long: bool,
                               clob: ClobPair) -> int:
    """Fillable price → subticks (``ConvertFillablePriceToSubticks``): rounded up for a sell
    (liquidating a long) and down for a buy, to a multiple of ``subticks_per_tick``, clamped to
    ``[subticks_per_tick, max uint64 aligned to the tick]``."""
    s = price * Fraction(10) ** (-clob.quantum_conversion_exponent)
    tick = clob.subticks_per_tick
    if is_liquidating_long:
        n = -((-s.numerator) // s.denominator)
        n = -((-n) // tick) * tick
    else:
        n = (s.numerator // s.denominator) // tick * tick
    upper = MAX_UINT64 - MAX_UINT64 % tick
    return min(max(n, tick), upper)


def fill_quote_quantums(subticks: int, base_quantums: int, clob: ClobPair) -> int:
    """Quote quantums of a fill, ``⌊subticks·base·10^qce⌋`` (``FillAmountToQuoteQuantums``)."""
    v = Fraction(subticks * base_quantums) * Fraction(10) ** clob.quantum_conversion_exponent
    return v.numerator // v.denominator


def insurance_fund_delta(sub: Subaccount, perpetuals: Mapping[int, Perpetual], perpetual_id: int,
                         is_buy: bool, fill_amount: int, subticks: int, clob: ClobPair,
                         max_liquidation_fee_ppm: int = 5_000) -> int:
    """Quote quantums the liquidated subaccount pays the insurance fund (> 0, capped at the
    fee) or the fund pays to cover the fill below bankruptcy (< 0)
    (``GetLiquidationInsuranceFundDelta``)."""
    if fill_amount <= 0:
        raise ValueError("fill_amount: must be > 0")
    q = fill_quote_quantums(subticks, fill_amount, clob)
    delta, quote = (fill_amount, -q) if is_buy else (-fill_amount, q)
    d = quote - bankruptcy_quote_quantums(sub, perpetuals, perpetual_id, delta)
    if d <= 0:
        return d
    return min(d, q * max_liquidation_fee_ppm // PPM)


def is_valid_insurance_fund_delta(balance: int, delta: int) -> bool:
    """The fund may pay a loss only from its balance (``IsValidInsuranceFundDelta``);
    when it cannot, dYdX deleverages instead."""
    return delta >= 0 or balance + delta >= 0


def position_notional_liquidatable(perp: Perpetual, quantums: int,
                                   config: LiquidationsConfig) -> tuple[int, int]:
    """``(min, max)`` notional of a position liquidatable in one block
    (``GetMaxAndMinPositionNotionalLiquidatable``)."""
    n = abs(perp.net_notional(quantums))
    lo = min(config.min_position_notional_liquidated, n)
    hi = max(lo, n * config.max_position_portion_liquidated_ppm // PPM)
    return lo, hi


@dataclass(frozen=True)
class BlockLiquidationState:
    """What one subaccount has had liquidated in the current block
    (``SubaccountLiquidationInfo``)."""

    notional_liquidated: int = 0
    quantums_insurance_lost: int = 0
    perpetuals_liquidated: tuple[int, ...] = ()

    def record(self, perpetual_id: int, notional: int, insurance_delta: int
               ) -> BlockLiquidationState:
        """After a liquidation of ``notional`` with ``insurance_delta`` (< 0: fund loss)."""
        lost = -insurance_delta if insurance_delta < 0 else 0
        return BlockLiquidationState(self.notional_liquidated + abs(notional),
                                     self.quantums_insurance_lost + lost,
                                     (*self.perpetuals_liquidated, perpetual_id))


def _not_yet_liquidated(state: BlockLiquidationState, perpetual_id: int) -> None:
    if perpetual_id in state.perpetuals_liquidated:
        raise ValueError(f"perpetual_id: {perpetual_id} already liquidated for this subaccount "
                         "in this block")


def max_notional_liquidatable(state: BlockLiquidationState, perpetual_id: int,
                              config: LiquidationsConfig) -> int:
    """Notional (quote quantums) the subaccount may still have liquidated in this block
    (``GetSubaccountMaxNotionalLiquidatable``; the protocol panics when over the limit)."""
    _not_yet_liquidated(state, perpetual_id)
    if state.notional_liquidated > config.max_notional_liquidated:
        raise ValueError("notional liquidated so far exceeds max_notional_liquidated")
    return config.max_notional_liquidated - state.notional_liquidated


def max_insurance_lost(state: BlockLiquidationState, perpetual_id: int,
                       config: LiquidationsConfig) -> int:
    """Insurance-fund loss (quote quantums) the subaccount may still cause in this block
    (``GetSubaccountMaxInsuranceLost``; the protocol panics when over the limit)."""
    _not_yet_liquidated(state, perpetual_id)
    if state.quantums_insurance_lost > config.max_quantums_insurance_lost:
        raise ValueError("insurance lost so far exceeds max_quantums_insurance_lost")
    return config.max_quantums_insurance_lost - state.quantums_insurance_lost


def position_to_liquidate(perp: Perpetual, quantums: int, clob: ClobPair,
                          config: LiquidationsConfig,
                          notional_liquidated_so_far: int = 0) -> int:
    """Delta (base quantums, opposite sign) of the position to liquidate now
    (``GetPerpetualPositionToLiquidate``): the whole position when it fits the limits or is
    within one step, else the limit converted at the oracle, rounded down to the step."""
    if quantums == 0:
        raise ValueError("quantums: no position to liquidate")
    _, max_pos = position_notional_liquidatable(perp, quantums, config)
    limit = min(max_pos, config.max_notional_liquidated - notional_liquidated_so_far)
    size = abs(quantums)
    step = clob.step_base_quantums
    if abs(perp.net_notional(quantums)) <= limit or size <= step:
        return -quantums
    b = perp.quote_to_base(limit) // step * step
    b = min(max(b, step), size)
    return -b if quantums > 0 else b

