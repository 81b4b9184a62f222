"""What the dashboard shows beyond the DESIGN §8 endpoints, computed from the live state.

- :func:`risk_matrix`: an account's scenario P&L on a price-move × vol-shift grid (the same
  full revaluation the risk-based models use, :func:`~margin_engine.models.core.scenario_pnl.
  instrument_pnl`), with the worst scenario;
- :func:`model_comparison`: the account under every registered model, side by side.

Pure functions of an account and a market: the routes in :mod:`.api` take the live book's lock
only to read the account, then compute outside it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from margin_engine.domain.book import Account
from margin_engine.domain.market import MarketSnapshot
from margin_engine.errors import InputError
from margin_engine.maths.scenarios import grid
from margin_engine.models.core.base import MarginModel
from margin_engine.models.core.scenario_pnl import instrument_pnl
from margin_engine.policy.assess import assess_account

DEFAULT_PRICE_RANGE = 0.30
"""±30 % price moves: wider than every venue's own scenario range (Deribit PM ±15 % for BTC,
SPAN-style grids ±8–15 %), so the liquidation region usually shows. A display choice, not a
margin parameter (2026-12-06)."""
DEFAULT_N_PRICE = 13
DEFAULT_VOL_SHIFTS = (-0.20, -0.10, 0.0, 0.10, 0.20)
"""Absolute implied-vol shifts (annualised decimal, 30-day reference tenor): ±20 vol points
covers Deribit PM's vol-shock range; a display choice (2026-12-06)."""


@dataclass(frozen=True)
class RiskMatrix:
    """Scenario P&L of one account, in its report currency.

    Attributes
    ----------
    price_moves : tuple of float
        Relative moves of every underlying together (−0.3 = −30 %).
    vol_shifts : tuple of float
        Absolute implied-vol shifts (annualised decimal).
    pnl : float [n_vol, n_price]
        P&L of the positions plus the value change of the collateral (no haircut), in
        ``currency``.
    worst : (int, int)
        ``(vol index, price index)`` of the lowest P&L (first on ties).
    """

    currency: str
    underlyings: tuple[str, ...]
    price_moves: tuple[float, ...]
    vol_shifts: tuple[float, ...]
    pnl: np.ndarray
    worst: tuple[int, int]

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready (every number finite)."""
        v, p = self.worst
        return {"currency": self.currency, "underlyings": list(self.underlyings),
                "price_moves": list(self.price_moves), "vol_shifts": list(self.vol_shifts),
                "pnl": [[float(x) for x in row] for row in self.pnl],
                "worst": {"vol_index": v, "price_index": p,
                          "price_move": self.price_moves[p], "vol_shift": self.vol_shifts[v],
                          "pnl": float(self.pnl[v, p])}}


def _underlyings(account: Account, market: MarketSnapshot) -> list[str]:
    names = {market.instrument(p.symbol).underlying for p in account.positions}
    names |= {c for c in account.collateral if c in market.index}
    return sorted(names)


def risk_matrix(account: Account, market: MarketSnapshot, currency: str, *,
                price_range: float = DEFAULT_PRICE_RANGE, n_price: int = DEFAULT_N_PRICE,
                vol_shifts: Sequence[float] = DEFAULT_VOL_SHIFTS) -> RiskMatrix:
    """The account's P&L when every underlying moves by ``x`` and every implied vol by ``dv``.

    Parameters
    ----------
    account : Account
        Its positions (contracts) and collateral (currency amounts).
    market : MarketSnapshot
        The market now.
    currency : str
        The currency of the answer (the account report's).
    price_range : float
        Moves evenly spaced over ±``price_range`` (relative, in (0, 1)).
    n_price : int
        Number of price moves (odd keeps 0 on the grid), 2–41.
    vol_shifts : sequence of float
        Absolute implied-vol shifts (annualised decimal), 1–11 of them, each in (−1, 2).

    Returns
    -------
    RiskMatrix

    Raises
    ------
    InputError
        For a grid outside those bounds.
    """
    if not 0.0 < price_range < 1.0:
        raise InputError("price_range", "must be in (0, 1)")
    if not 2 <= n_price <= 41:
        raise InputError("n_price", "must be between 2 and 41")
    if not 1 <= len(vol_shifts) <= 11:
        raise InputError("vol_shifts", "give 1 to 11 shifts")
    if any(not math.isfinite(v) or not -1.0 < v < 2.0 for v in vol_shifts):
        raise InputError("vol_shifts", "each must be a finite number in (-1, 2)")
    names = _underlyings(account, market)
    moves = np.linspace(-price_range, price_range, n_price)
    nv = len(vol_shifts)
    if not names:
        pnl = np.zeros((nv, n_price))
    else:
        scen = grid(names, price_range, n_price, tuple(vol_shifts), joint=True)
        instruments = [market.instrument(p.symbol) for p in account.positions]
        sizes = np.array([p.size for p in account.positions])
        total = np.zeros(scen.n)
        if instruments:
            total += sizes @ instrument_pnl(instruments, market, scen, currency)
        for ccy, amount in account.collateral.items():
            if ccy == currency or not amount:
                continue
            now = market.convert(amount, ccy, currency)
            usd = market.usd_price(ccy) * (1.0 + scen.price_moves[:, scen.column(ccy)]) \
                if ccy in scen.underlyings else np.full(scen.n, market.usd_price(ccy))
            to = market.usd_price(currency) * (1.0 + scen.price_moves[:, scen.column(currency)]) \
                if currency in scen.underlyings else np.full(scen.n, market.usd_price(currency))
            total += amount * usd / to - now
        pnl = total.reshape(nv, n_price)  # grid(): vol shifts outer, price moves inner
    if not np.all(np.isfinite(pnl)):
        raise InputError("market", "a scenario revaluation is not finite")
    flat = int(np.argmin(pnl))
    return RiskMatrix(currency, tuple(names), tuple(float(x) for x in moves),
                      tuple(float(v) for v in vol_shifts), pnl, divmod(flat, n_price))


def model_comparison(models: Sequence[MarginModel], account: Account,
                     market: MarketSnapshot, active: str) -> list[dict[str, Any]]:
    """One row per model: IM, MM (report currency and USD), equity, status, or why it does not
    margin the account (``not_applicable``).

    Parameters
    ----------
    models : sequence of MarginModel
        Every registered model, built on default parameters.
    account : Account
    market : MarketSnapshot
    active : str
        The service's model (flagged ``active``).
    """
    rows: list[dict[str, Any]] = []
    for m in models:
        row: dict[str, Any] = {"model": m.name, "version": m.version,
                               "active": m.name == active}
        try:
            r = assess_account(m, account, market, liquidation_prices=False)
            figures = (r.initial_margin, r.maintenance_margin, r.equity)
            if not all(math.isfinite(x) for x in figures):
                raise InputError("model", f"{m.name} gave a non-finite figure")
        except (InputError, ValueError) as exc:
            row["not_applicable"] = str(exc)
            rows.append(row)
            continue
        row.update({
            "currency": r.currency, "initial_margin": r.initial_margin,
            "maintenance_margin": r.maintenance_margin, "equity": r.equity,
            "margin_ratio": (r.margin_ratio if r.margin_ratio is not None
                             and math.isfinite(r.margin_ratio) else None),
            "status": r.status.value,
            "initial_margin_usd": market.convert(r.initial_margin, r.currency, "USD"),
            "maintenance_margin_usd": market.convert(r.maintenance_margin, r.currency, "USD"),
            "components": {k: float(v) for k, v in r.components.items()
                           if isinstance(v, int | float) and math.isfinite(v)}})
        rows.append(row)
    return rows
