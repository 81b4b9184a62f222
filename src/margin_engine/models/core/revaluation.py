"""Moving the market: every instrument on one underlying repriced at a shifted price."""

from __future__ import annotations

from margin_engine.domain.instruments import Instrument
from margin_engine.domain.market import MarketSnapshot
from margin_engine.models.core.valuation import model_option_price


def shift_underlying(market: MarketSnapshot, underlying: str, factor: float) -> MarketSnapshot:
    """The market with ``underlying``'s index and every mark on it multiplied by ``factor``.

    Options are repriced with Black-76 at the shifted forward on unchanged implied vols (sticky
    strike); a quoted option mark moves by model(shifted) − model(current), floored at 0, so that
    ``factor = 1`` returns the quoted marks exactly.
    """
    if factor == 1.0:
        return market
    if not factor > 0.0:
        raise ValueError(f"factor: must be > 0, got {factor!r}")
    moved: list[Instrument] = []
    for ins in market.instruments:
        if ins.underlying != underlying:
            moved.append(ins)
            continue
        upd: dict[str, float] = {}
        if ins.is_option:
            fwd = market.forward(ins)
            new = model_option_price(ins, market, fwd * factor)
            if ins.mark_price is not None:  # keep the quoted mark's offset from the model
                new = max(ins.mark_price + new - model_option_price(ins, market, fwd), 0.0)
            upd["mark_price"] = new
            upd["underlying_price"] = fwd * factor
        elif ins.mark_price is not None:
            upd["mark_price"] = ins.mark_price * factor
        moved.append(ins.model_copy(update=upd))
    index = {**market.index, underlying: market.index[underlying] * factor}
    return MarketSnapshot.model_construct(**{**dict(market), "instruments": tuple(moved),
                                             "index": index})
