"""Trading cost of a hedge: half the bid/ask spread plus a square-root market impact.

For ``q`` contracts (``|q|``) of an instrument whose one contract is worth ``N`` USD of notional:

``cost(q) = N·|q|·(s + y·√(|q|/Q))``  (USD)

- ``s``: half the quoted spread relative to the mid, ``(ask − bid)/(2·mid)``, from the market's
  order book when it has one for the symbol; otherwise :attr:`CostParams.half_spread` (futures and
  perpetuals) or :attr:`CostParams.option_half_spread` (options, relative to the underlying
  notional);
- ``y·√(|q|/Q)``: the square-root impact (the form fitted in
  :mod:`margin_engine.analysis.liquidation.orderbook_fit`), ``Q`` the visible depth of the book in
  contracts; ``y`` fitted by least squares (``orderbook_fit.fit_sqrt``) to the cost
  of walking the book beyond the half spread; without a book ``Q`` is
  :attr:`CostParams.depth_usd` of notional and ``y`` is :attr:`CostParams.impact`.

``cost`` is convex in ``|q|`` (``a·|q| + b·|q|^1.5``): the exact solver represents it by tangent
cuts, an outer approximation, so every plan the greedy search can afford is feasible there too.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from margin_engine.analysis.liquidation.orderbook_fit import book_impact, fit_sqrt
from margin_engine.domain.instruments import Instrument
from margin_engine.domain.market import MarketSnapshot
from margin_engine.models.core.valuation import notional_usd


@dataclass(frozen=True)
class CostParams:
    """Defaults used where the market file has no order book for a symbol.

    All UNCONFIRMED (house assumptions, 2026-12-06) and set on the conservative (costly) side of
    what the venues' public books show for BTC/ETH: top-of-book half spreads on BTC perpetuals are
    usually under 0.5 bp, on liquid options several ticks of 0.0001 BTC (≈ 1–3 bp of the
    underlying).
    """

    half_spread: float = 2e-4  #: 2 bp of notional, perpetuals/futures (UNCONFIRMED, 2026-12-06)
    option_half_spread: float = 5e-4  #: 5 bp of underlying notional, options (UNCONFIRMED)
    impact: float = 1e-3  #: y: 10 bp extra at one depth_usd traded (UNCONFIRMED, 2026-12-06)
    depth_usd: float = 1_000_000.0  #: Q in USD notional without a book (UNCONFIRMED)

    def sources(self) -> dict[str, str]:
        """Each default and where it comes from (shown by ``optimise --format json``)."""
        return {
            "half_spread": f"{self.half_spread} UNCONFIRMED house default (2026-12-06)",
            "option_half_spread": f"{self.option_half_spread} UNCONFIRMED house default "
                                  "(2026-12-06), relative to underlying notional",
            "impact": f"{self.impact} UNCONFIRMED house default (2026-12-06): square-root "
                      "impact y·sqrt(q/Q) (orderbook_fit.fit_sqrt form)",
            "depth_usd": f"{self.depth_usd} UNCONFIRMED house default (2026-12-06)",
        }


@dataclass(frozen=True)
class TradeCost:
    """``cost(q) = a·|q| + b·|q|^1.5`` USD for ``q`` contracts of ``symbol``."""

    symbol: str
    notional_usd: float  #: USD notional of one contract
    half_spread: float  #: relative
    impact: float  #: y, relative impact at q = depth
    depth: float  #: Q, contracts
    source: str  #: "order book" or "default"

    @property
    def a(self) -> float:
        return self.notional_usd * self.half_spread

    @property
    def b(self) -> float:
        return self.notional_usd * self.impact / math.sqrt(self.depth)

    def cost(self, q: float) -> float:
        """USD cost of trading ``q`` contracts (either sign)."""
        x = abs(q)
        return self.a * x + self.b * x ** 1.5

    def slope(self, q: float) -> float:
        """d cost / d|q| at ``|q|`` (USD per contract)."""
        return self.a + 1.5 * self.b * math.sqrt(abs(q))


def trade_cost(ins: Instrument, market: MarketSnapshot,
               params: CostParams = CostParams()) -> TradeCost:
    """The cost model of one instrument (see the module docstring)."""
    n1 = notional_usd(ins, 1.0, market)
    book = market.order_books.get(ins.symbol)
    if book is not None and book.bids and book.asks and not ins.is_option:
        bid, ask = book.bids[0][0], book.asks[0][0]
        mid = 0.5 * (bid + ask)
        s = (ask - bid) / (2.0 * mid)
        qs, imps = [], []
        for side in (book.bids, book.asks):
            p = [lv[0] for lv in side]
            z = [lv[1] for lv in side]
            cum = np.cumsum(z)
            imp = book_impact(p, z, mid, cum) - s
            qs += cum.tolist()
            imps += np.maximum(imp, 0.0).tolist()
        depth = float(min(sum(z for _, z in book.bids), sum(z for _, z in book.asks)))
        y = 0.0
        if depth > 0 and len(qs) >= 2:
            y = max(fit_sqrt(qs, imps, q_ref=depth).y, 0.0)
            y = y if math.isfinite(y) else 0.0
        if depth > 0:
            return TradeCost(ins.symbol, n1, s, y, depth, "order book")
    s = params.option_half_spread if ins.is_option else params.half_spread
    depth = params.depth_usd / n1 if n1 > 0 else 1.0
    return TradeCost(ins.symbol, n1, s, params.impact, depth, "default")
