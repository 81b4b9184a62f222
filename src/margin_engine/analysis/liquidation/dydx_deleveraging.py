"""dYdX v4 deleveraging (ADL) rules in quantums (``protocol/x/clob/keeper/deleveraging.go``,
``protocol/x/subaccounts/lib/updates.go``, ``protocol/lib/margin/risk.go`` at ``84d4664``).

When a liquidation cannot fill (or the insurance fund cannot cover it), dYdX closes the
position against opposite-side subaccounts — *no profit or leverage ranking*: candidates from a
pseudo-random start, each at the liquidated subaccount's bankruptcy price (negative TNC) or at
the oracle price (final settlement). Each fill must pass the collateral check on both sides:
initially collateralized afterwards, or else "no riskier" by :func:`undercollateralized_transition`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from margin_engine.analysis.liquidation.dydx_liquidation import bankruptcy_quote_quantums
from margin_engine.analysis.liquidation.dydx_state import (
    Perpetual,
    Risk,
    Subaccount,
    subaccount_risk,
    validate_reduction,
)

SUCCESS = "Success"
NEWLY_UNDERCOLLATERALIZED = "NewlyUndercollateralized"
STILL_UNDERCOLLATERALIZED = "StillUndercollateralized"


def risk_cmp(first: Risk, second: Risk) -> int:
    """1 when ``first`` is riskier than ``second`` (lower NC/MMR, cross-multiplied), −1 when
    less risky, 0 when equal; ties broken by MMR, or by NC when both MMRs are 0 (``Risk.Cmp``)."""
    a, b = second.nc * first.mmr, first.nc * second.mmr
    r = (a > b) - (a < b)
    if r != 0:
        return r
    if first.mmr == 0 and second.mmr == 0:
        return (second.nc > first.nc) - (second.nc < first.nc)
    return (first.mmr > second.mmr) - (first.mmr < second.mmr)


def undercollateralized_transition(cur: Risk, new: Risk) -> str:
    """Whether an update that leaves a subaccount below initial margin is allowed
    (``IsValidStateTransitionForUndercollateralizedSubaccount``): only if it raises no MMR and
    is no riskier; with a zero MMR on either side, only if both are zero and NC rises."""
    fail = NEWLY_UNDERCOLLATERALIZED if cur.imr <= cur.nc else STILL_UNDERCOLLATERALIZED
    if new.mmr > cur.mmr:
        return fail
    if new.mmr == 0 or cur.mmr == 0:
        return SUCCESS if new.mmr == 0 and cur.mmr == 0 and new.nc > cur.nc else fail
    if risk_cmp(new, cur) > 0:
        return fail
    return SUCCESS


def collateral_check(before: Subaccount, after: Subaccount,
                     perpetuals: Mapping[int, Perpetual]) -> str:
    """The subaccounts keeper's check of one update: initially collateralized after it, or
    else :func:`undercollateralized_transition`."""
    new = subaccount_risk(after, perpetuals)
    if new.is_initial_collateralized():
        return SUCCESS
    return undercollateralized_transition(subaccount_risk(before, perpetuals), new)


def can_deleverage(sub: Subaccount, perpetuals: Mapping[int, Perpetual],
                   final_settlement: bool) -> tuple[bool, bool]:
    """``(at bankruptcy price, at oracle price)`` (``CanDeleverageSubaccount``): negative TNC
    deleverages at the bankruptcy price; otherwise only a market in final settlement, at the
    oracle price."""
    tnc = subaccount_risk(sub, perpetuals).nc
    return tnc < 0, tnc >= 0 and final_settlement


class DeleveragingRejectedError(ValueError):
    """One side of a deleveraging fill failed the collateral check."""


def deleveraging_quote(liquidated: Subaccount, perpetuals: Mapping[int, Perpetual],
                       perpetual_id: int, delta_quantums: int, at_oracle: bool) -> int:
    """Quote quantums the liquidated subaccount receives for ``delta_quantums``: its bankruptcy
    quote, or ``−notional(delta)`` at the oracle in final settlement."""
    if at_oracle:
        validate_reduction(liquidated.position(perpetual_id), delta_quantums)
        return -perpetuals[perpetual_id].net_notional(delta_quantums)
    return bankruptcy_quote_quantums(liquidated, perpetuals, perpetual_id, delta_quantums)


def process_deleveraging(liquidated: Subaccount, offsetting: Subaccount,
                         perpetuals: Mapping[int, Perpetual], perpetual_id: int,
                         delta_quantums: int, at_oracle: bool = False
                         ) -> tuple[Subaccount, Subaccount]:
    """Both subaccounts after one deleveraging fill (``ProcessDeleveraging``).

    Raises
    ------
    ValueError
        The delta is not a reduction of either position.
    DeleveragingRejectedError
        Either update fails the collateral check (the whole fill is rejected).
    """
    validate_reduction(offsetting.position(perpetual_id), -delta_quantums)
    quote = deleveraging_quote(liquidated, perpetuals, perpetual_id, delta_quantums, at_oracle)
    liq_after = liquidated.apply(perpetual_id, delta_quantums, quote)
    off_after = offsetting.apply(perpetual_id, -delta_quantums, -quote)
    for name, before, after in (("liquidated", liquidated, liq_after),
                                ("offsetting", offsetting, off_after)):
        result = collateral_check(before, after, perpetuals)
        if result != SUCCESS:
            raise DeleveragingRejectedError(f"{name} subaccount {before.id}: {result}")
    return liq_after, off_after


@dataclass(frozen=True)
class DeleveragingFill:
    """One ADL fill: the offsetting subaccount and the base quantums it took over."""

    offsetting_subaccount: str
    fill_amount: int


@dataclass(frozen=True)
class OffsetResult:
    """Outcome of :func:`offset_position`."""

    fills: tuple[DeleveragingFill, ...]
    quantums_remaining: int
    subaccounts: dict[str, Subaccount]
    open_interest: int


def offset_position(subaccounts: Sequence[Subaccount], perpetuals: Mapping[int, Perpetual],
                    liquidated_id: str, perpetual_id: int, delta_quantums: int,
                    final_settlement: bool = False, open_interest: int = 0,
                    start: int = 0) -> OffsetResult:
    """Deleverage ``delta_quantums`` of the liquidated subaccount's position against the
    opposite-side subaccounts, visited in the given order from index ``start`` (dYdX draws it
    pseudo-randomly) (``OffsetSubaccountPerpetualPosition``).

    A candidate whose fill fails the collateral check is skipped. ``open_interest`` (base
    quantums, long side) is updated by the change in long positions.
    """
    state = {s.id: s for s in subaccounts}
    order = [s.id for s in subaccounts]
    order = order[start:] + order[:start]
    remaining = delta_quantums
    fills: list[DeleveragingFill] = []
    oi = open_interest
    for sid in order:
        if remaining == 0:
            break
        if sid == liquidated_id:
            continue
        pos = state[sid].position(perpetual_id)
        if pos == 0 or (pos > 0) != (remaining > 0):
            continue
        d = remaining if abs(remaining) <= abs(pos) else pos
        try:
            liq, off = process_deleveraging(state[liquidated_id], state[sid], perpetuals,
                                            perpetual_id, d, at_oracle=final_settlement)
        except DeleveragingRejectedError:
            continue
        for before, after in ((state[liquidated_id], liq), (state[sid], off)):
            oi += max(after.position(perpetual_id), 0) - max(before.position(perpetual_id), 0)
        state[liquidated_id], state[sid] = liq, off
        fills.append(DeleveragingFill(sid, abs(d)))
        remaining -= d
    return OffsetResult(tuple(fills), remaining, state, oi)
