"""Pieces shared by the Deribit models (``deribit-standard``, ``deribit-pm``).

Conventions (research/crypto-venues.md §1, §8.1):

- Deribit keys its parameters by lower-case currency (``btc``, ``eth``, ``usd`` for the stablecoin
  settled products) and by currency pair (``btc_usd``, ``eth_usd``); :func:`currency_key` and
  :func:`pair_key` map instruments onto those keys.
- A position's size in the venue's "base currency" (:func:`base_size`): inverse futures and
  perpetuals ``size·contract_size / mark`` coin (their contract size is USD face value); linear
  contracts and options ``size·contract_size`` units of the underlying.
- Inverse P&L of a price move ``x`` on ``q`` coin is ``q·x/(1+x)`` coin, not ``q·x`` (§8.1);
  linear P&L is ``q·P·x`` in the quote currency (:func:`future_pnl`).
- Options are revalued with Black-76 on the forward; inverse options in coin, ``V_usd/F``
  (:func:`option_pnl`). Both functions are vectorised: ``[instruments × scenarios]``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
from numpy.typing import NDArray

from margin_engine.domain.instruments import Instrument, Kind
from margin_engine.domain.market import MarketSnapshot
from margin_engine.maths import black76_fast

FloatArray = NDArray[np.float64]

#: Settlement currencies treated as Deribit's ``usd`` parameter currency (linear products).
STABLE_SETTLE = frozenset({"USD", "USDC", "USDT"})


def currency_key(settle: str) -> str:
    """Deribit's parameter key of a settlement currency: ``btc``, ``eth``; ``usd`` for stables."""
    return "usd" if settle.upper() in STABLE_SETTLE else settle.lower()


def pair_key(underlying: str) -> str:
    """Deribit's currency-pair key of an underlying, e.g. ``BTC`` → ``btc_usd``."""
    return f"{underlying.lower()}_usd"


def instrument_problem(ins: Instrument) -> str | None:
    """Why a Deribit model cannot margin ``ins`` at all (``None`` when the shape is one Deribit
    lists: inverse contracts settled in their own coin, linear contracts settled in a stable)."""
    if ins.kind is Kind.SPOT:
        return "Deribit margin models cover futures, perpetuals and options; spot balances " \
               "belong in the account's collateral"
    if ins.inverse and ins.settle != ins.underlying:
        return (f"an inverse contract must settle in its underlying {ins.underlying} "
                f"(settles in {ins.settle})")
    if not ins.inverse and ins.settle.upper() not in STABLE_SETTLE:
        return (f"a linear contract must settle in a stablecoin ({', '.join(sorted(STABLE_SETTLE))}"
                f"), not {ins.settle}")
    return None


def base_size(ins: Instrument, size: float) -> float:
    """Signed position in the venue's base currency (coin for inverse futures, underlying units
    for linear contracts and options)."""
    if ins.inverse and not ins.is_option:
        assert ins.mark_price is not None
        return size * ins.contract_size / ins.mark_price
    return size * ins.contract_size


def future_pnl(inverse: NDArray[np.bool_], ref_price: FloatArray,
               moves: FloatArray) -> FloatArray:
    """P&L per unit of base size of futures under relative price moves.

    Parameters
    ----------
    inverse : bool array [n]
        True for coin-settled (inverse) contracts.
    ref_price : float array [n]
        Price the linear P&L is taken on (quote currency per unit); unused for inverse rows.
    moves : float array [n, s] or [s]
        Relative price moves ``x`` (−0.16 = −16%), > −1.

    Returns
    -------
    float array [n, s]
        Inverse rows ``x/(1+x)`` (coin per coin of position); linear rows ``P·x`` (quote currency
        per unit of underlying).
    """
    inverse = np.asarray(inverse, dtype=bool)
    ref_price = np.asarray(ref_price, dtype=np.float64)
    x = np.broadcast_to(np.asarray(moves, dtype=np.float64), (inverse.size, np.shape(moves)[-1]))
    return np.where(inverse[:, None], x / (1.0 + x), ref_price[:, None] * x)


def option_pnl(inverse: NDArray[np.bool_], forward: FloatArray, strike: FloatArray,
               years: FloatArray, vol: FloatArray, is_call: NDArray[np.bool_],
               moves: FloatArray, shocked_vol: FloatArray) -> FloatArray:
    """Full-revaluation P&L per option on one unit of underlying, in the settlement currency.

    ``P&L = V(F·(1+x), σ') − V(F, σ)``, Black-76 with zero rates; inverse options are valued in
    coin, ``V_usd/F`` at the shocked forward (so their P&L is coin P&L, §8.1).

    Parameters
    ----------
    inverse, is_call : bool arrays [n]
    forward, strike : float arrays [n], USD per unit of underlying.
    years : float array [n], time to expiry in years (ACT/365), unchanged by the scenarios.
    vol : float array [n], current implied vol (annualised decimal).
    moves : float array [s] or [n, s], relative forward moves (> −1).
    shocked_vol : float array [n, s], implied vol in each scenario (≥ 0).

    Returns
    -------
    float array [n, s]
    """
    inverse = np.asarray(inverse, dtype=bool)
    F = np.asarray(forward, dtype=np.float64)
    K = np.asarray(strike, dtype=np.float64)
    T = np.asarray(years, dtype=np.float64)
    call = np.asarray(is_call, dtype=bool)
    n = F.size
    if n == 0:
        return np.zeros((0, np.shape(moves)[-1]))
    F1 = F[:, None] * (1.0 + np.asarray(moves, dtype=np.float64))
    v1 = black76_fast.price_usd(F1, K[:, None], T[:, None], shocked_vol, call[:, None])
    v0 = black76_fast.price_usd(F, K, T, np.asarray(vol, dtype=np.float64), call)
    return np.where(inverse[:, None], v1 / F1 - (v0 / F)[:, None], v1 - v0[:, None])


def collateral_haircut_usd(collateral: Mapping[str, float], haircuts: Mapping[str, float],
                           market: MarketSnapshot) -> tuple[float, dict[str, float]]:
    """IM add-on for haircut cross collateral: ``Σ h_c · max(balance_c, 0) · usd_price_c``.

    A haircut that reduces the collateral counted for IM is the same as adding its amount to IM.
    Returns the total in USD and the amount per currency (only currencies with a haircut > 0).
    """
    per: dict[str, float] = {}
    for ccy, amount in collateral.items():
        h = haircuts.get(ccy, haircuts.get(ccy.upper(), haircuts.get(ccy.lower(), 0.0)))
        if h > 0.0 and amount > 0.0:
            per[ccy] = h * amount * market.usd_price(ccy)
    return sum(per.values()), per


def pro_rata(amount: float, weights: Sequence[float]) -> list[float]:
    """Split ``amount`` in proportion to ``|weights|`` (equally when they are all zero)."""
    n = len(weights)
    if n == 0:
        return []
    w = [abs(x) for x in weights]
    total = sum(w)
    if total > 0.0:
        return [amount * x / total for x in w]
    return [amount / n] * n
