"""Deribit standard margin (S:SM segregated, X:SM cross collateral) — research/crypto-venues.md §1.

Per position, in the settlement currency:

- Futures and perpetuals (inverse and linear), size ``s`` in base currency (coin for inverse:
  USD size / mark; underlying units for linear): ``IM = s·(im_base + s·increase)``,
  ``MM = s·(mm_base + s·increase)``; linear contracts multiply by the index price
  (§1.2, §1.3; BTC 2% / 1% + 0.005% per BTC since 2022-01-11).
- Options, per unit of underlying, with ``S`` the underlying mark price (the option's
  ``underlying_price``, "Underlying MarkPrice" in [D3]; ``option_otm_reference``), ``m`` the
  option mark (coin for inverse options) and ``OTM`` the out-of-the-money amount against ``S``
  (§1.4):

  - short call: ``IM = max(0.15 − OTM/S, 0.10) + m``, ``MM = 0.075 + m``;
  - short put: ``MM = max(0.075, 0.075·m) + m``, ``IM = max(max(0.15 − OTM/S, 0.10) + m, MM)``;
  - long options: ``IM = MM = 0`` (the premium is paid in full);
  - linear options (UNCONFIRMED): the same with every constant scaled by ``S``.

Segregated (S:SM): one unit per settlement currency, sums of the positions. Cross (X:SM): one unit
in USD over the account, positions converted at index/FX, plus an IM-only haircut on cross
collateral (§1.6). Deribit has no isolated mode for standard margin (§1.1); the model offers the
``cross`` margin mode only and picks segregated vs cross collateral with ``collateral``.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from margin_engine.domain.book import Account, MarginMode
from margin_engine.domain.instruments import Instrument
from margin_engine.domain.market import MarketSnapshot
from margin_engine.models.core.base import MarginModel, ModelParams
from margin_engine.models.core.registry import register
from margin_engine.models.core.results import PositionMargin, UnitMargin
from margin_engine.models.core.units import MarginUnit, Scope
from margin_engine.models.core.valuation import notional, option_mark
from margin_engine.models.venues.deribit_common import (
    base_size,
    collateral_haircut_usd,
    instrument_problem,
    pro_rata,
)


class FuturesRates(BaseModel):
    """Size-dependent rates of one underlying's futures and perpetuals (fractions)."""

    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)

    im_base: float = Field(ge=0.0, lt=1.0, description="IM rate at zero size")
    mm_base: float = Field(ge=0.0, lt=1.0, description="MM rate at zero size")
    increase: float = Field(ge=0.0, lt=1.0,
                            description="rate added per unit of position size in base currency")

    @model_validator(mode="after")
    def _mm_below_im(self) -> FuturesRates:
        if self.mm_base > self.im_base:
            raise ValueError(f"mm_base {self.mm_base} above im_base {self.im_base}")
        return self


def default_futures_rates() -> dict[str, FuturesRates]:
    """BTC and ETH from Deribit's 11-Jan-2022 change [D2]; SOL from the linear-perp article
    [D1] (both shared by inverse and linear contracts)."""
    return {"BTC": FuturesRates(im_base=0.02, mm_base=0.01, increase=0.00005),
            "ETH": FuturesRates(im_base=0.02, mm_base=0.01, increase=0.000004),
            "SOL": FuturesRates(im_base=0.04, mm_base=0.02, increase=0.000005)}


class DeribitStandardParams(ModelParams):
    collateral: Literal["segregated", "cross"] = Field(
        "segregated",
        description="'segregated' = S:SM, one margin unit per settlement currency (Deribit's "
                    "default); 'cross' = X:SM, one unit over the whole account in USD with the "
                    "IM haircuts of collateral_haircuts [D5, D6].")
    futures: dict[str, FuturesRates] = Field(
        default_factory=default_futures_rates,
        description="Futures/perpetual rates by underlying (fractions; increase per unit of "
                    "size in base currency): BTC 2%/1% + 0.005%, ETH 2%/1% + 0.0004% (Deribit "
                    "'11 January 2022' [D2]); SOL 4%/2% + 0.0005% (Deribit 'Linear Perpetual' "
                    "[D1]). Shared by inverse and linear contracts. UNCONFIRMED: whether the "
                    "values changed since 2022-01-11 and the ETH linear-perp rates. Entries "
                    "given here replace or extend the defaults per underlying.")
    option_im_base: float = Field(
        0.15, ge=0.0, lt=10.0,
        description="Short-option IM constant a in max(a − OTM/S, b) + mark (fraction of the "
                    "underlying); [D3] THIRD-PARTY, via tslab.pro; UNCONFIRMED current value.")
    option_im_floor: float = Field(
        0.10, ge=0.0, lt=10.0,
        description="Short-option IM floor b (fraction of the underlying); [D3] THIRD-PARTY; "
                    "UNCONFIRMED current value.")
    option_mm: float = Field(
        0.075, ge=0.0, lt=10.0,
        description="Short-option MM constant c: call MM = c + mark, put MM = max(c, c·mark) + "
                    "mark (fraction of the underlying); [D3] THIRD-PARTY; UNCONFIRMED current "
                    "value.")
    option_otm_reference: Literal["index", "forward"] = Field(
        "forward",
        description="Underlying price S in the OTM amount and OTM/S. 'forward' (default since "
                    "2026-12-06): the option's underlying mark price, i.e. its "
                    "underlying_price (Deribit's ticker field for the option's underlying: "
                    "the same-expiry future or synthetic), else a same-expiry future's mark, "
                    "else the index - the published rule says 'Underlying MarkPrice' [D3, "
                    "THIRD-PARTY restatement]. 'index': the index price (research §8.2's "
                    "reading; the default before 2026-12-06).")
    linear_options: Literal["scaled", "reject"] = Field(
        "scaled",
        description="Linear (stablecoin-settled) options: 'scaled' applies the coin formula "
                    "with every constant multiplied by S, as Deribit clones publish (bit.com "
                    "[D-bit], Aevo); 'reject' refuses them. UNCONFIRMED for Deribit.")
    collateral_haircuts: dict[str, float] = Field(
        default_factory=dict,
        description="X:SM only: haircut (fraction) per collateral currency, applied to the IM "
                    "side as an add-on Σ h·max(balance, 0)·USD price [D6: 'for the purposes of "
                    "calculating the IM some cross collateral currencies may have a haircut']. "
                    "Values UNCONFIRMED (none published in the sources read); default none. "
                    "Independent of the engine's health-policy haircuts on equity.")
    haircut_applies_to_mm: bool = Field(
        False,
        description="Also add the collateral haircut to MM. [D6] names IM only; the effect on "
                    "MM is UNCONFIRMED.")

    @field_validator("futures", mode="before")
    @classmethod
    def _merge_futures(cls, v: Any) -> Any:
        if isinstance(v, dict):
            base: dict[str, Any] = dict(default_futures_rates())
            return {**base, **{str(k).upper(): x for k, x in v.items()}}
        return v

    @field_validator("collateral_haircuts")
    @classmethod
    def _haircut_range(cls, v: dict[str, float]) -> dict[str, float]:
        for ccy, h in v.items():
            if not 0.0 <= h < 1.0:
                raise ValueError(f"collateral_haircuts.{ccy}: must be in [0, 1), got {h!r}")
        return v

    @model_validator(mode="after")
    def _im_floor_covers_mm(self) -> DeribitStandardParams:
        # IM = max(a - OTM/S, b) + mark and MM = c + mark: IM >= MM at every strike needs b >= c.
        if self.option_im_floor < self.option_mm:
            raise ValueError(f"option_im_floor: must be at least option_mm ({self.option_mm:g}) "
                             f"so that IM >= MM for every strike, got {self.option_im_floor:g}")
        return self


def futures_margin(size_base: float, rates: FuturesRates) -> tuple[float, float, float, float]:
    """Deribit futures margin in base currency for ``|size_base|``.

    Returns ``(IM, MM, im_rate, mm_rate)``; rates are fractions, margins in base currency.
    """
    s = abs(size_base)
    im_rate = rates.im_base + s * rates.increase
    mm_rate = rates.mm_base + s * rates.increase
    return s * im_rate, s * mm_rate, im_rate, mm_rate


def short_option_margin(is_call: bool, otm: float, ref: float, mark: float, *, im_base: float,
                        im_floor: float, mm: float) -> tuple[float, float]:
    """Deribit short-option (IM, MM) per unit of underlying, in the units of ``ref``'s coin.

    ``otm`` and ``ref`` are in USD per unit of underlying; ``mark`` is the option's mark in coin
    per unit (for linear options pass ``mark_usd/ref`` and multiply the result by ``ref``).
    """
    if ref <= 0.0:
        raise ValueError(f"ref: underlying price must be > 0, got {ref!r}")
    core = max(im_base - otm / ref, im_floor)
    if is_call:
        return core + mark, mm + mark
    mmv = max(mm, mm * mark) + mark
    return max(core + mark, mmv), mmv


def short_option_per_unit(ins: Instrument, otm: float, ref: float, mark: float,
                          market: MarketSnapshot,
                          p: DeribitStandardParams) -> tuple[float, float]:
    """A short option's (IM, MM) per unit of underlying, in its settlement currency.

    ``otm`` and ``ref`` (the reference price) are in USD per unit of underlying, ``mark`` in the
    settlement currency per unit. An inverse option is :func:`short_option_margin` itself; a
    linear one is computed on its mark in coin (``mark / s``, ``s = ref`` in the settlement
    currency) and the result multiplied by ``s``.
    """
    if ins.inverse:
        return short_option_margin(ins.is_call, otm, ref, mark, im_base=p.option_im_base,
                                   im_floor=p.option_im_floor, mm=p.option_mm)
    s_settle = ref / market.usd_price(ins.settle)
    im1, mm1 = short_option_margin(ins.is_call, otm, ref, mark / s_settle,
                                   im_base=p.option_im_base, im_floor=p.option_im_floor,
                                   mm=p.option_mm)
    return im1 * s_settle, mm1 * s_settle


def _position(ins: Instrument, size: float, market: MarketSnapshot,
              p: DeribitStandardParams) -> tuple[float, float, dict[str, Any]]:
    """(IM, MM, details) of one position in its settlement currency."""
    q = base_size(ins, size)
    if not ins.is_option:
        im, mm, imr, mmr = futures_margin(q, p.futures[ins.underlying])
        det: dict[str, Any] = {"type": "future", "size_base": q, "im_rate": imr, "mm_rate": mmr}
        if not ins.inverse:
            px = market.index[ins.underlying] / market.usd_price(ins.settle)
            im, mm = im * px, mm * px
            det["index_price"] = px
        return im, mm, det
    assert ins.strike is not None
    mark = option_mark(ins, market)
    S = market.index[ins.underlying] if p.option_otm_reference == "index" \
        else market.forward(ins)
    otm = max(ins.strike - S, 0.0) if ins.is_call else max(S - ins.strike, 0.0)
    det = {"type": "option", "size_base": q, "reference_price": S, "otm": otm, "mark": mark,
           "side": "long" if q >= 0 else "short"}
    if q >= 0:
        return 0.0, 0.0, det
    im1, mm1 = short_option_per_unit(ins, otm, S, mark, market, p)
    det |= {"im_per_unit": im1, "mm_per_unit": mm1}
    return abs(q) * im1, abs(q) * mm1, det


@register
class DeribitStandard(MarginModel):
    name = "deribit-standard"
    version = "2022-01.2"
    source = ("Deribit support: '11 January 2022' (futures rates), 'Linear Perpetual', "
              "'Margin types and usage', 'Cross-collateral specifications'; option formula via "
              "tslab.pro (third-party) — research/crypto-venues.md §1.1-1.4, §1.6")
    summary = ("Deribit standard margin: size-dependent futures rates, short-option OTM formula; "
               "segregated (S:SM) or cross collateral (X:SM).")
    Params = DeribitStandardParams
    modes = frozenset({MarginMode.CROSS})
    params: DeribitStandardParams

    def cross_scope(self, account: Account) -> Scope:
        return "account" if self.params.collateral == "cross" else "currency"

    def check_instrument(self, ins: Instrument) -> str | None:
        why = instrument_problem(ins)
        if why:
            return why
        if not ins.is_option and ins.underlying not in self.params.futures:
            return (f"no futures rates for underlying {ins.underlying!r} (known: "
                    f"{', '.join(sorted(self.params.futures))}; pass --param futures=...)")
        if ins.is_option and not ins.inverse and self.params.linear_options == "reject":
            return "linear options are refused (linear_options='reject')"
        return None

    def margin_unit(self, unit: MarginUnit, account: Account,
                    market: MarketSnapshot) -> UnitMargin:
        p = self.params
        rows: list[tuple[int, Instrument, float, float, dict[str, Any]]] = []
        for j in unit.position_indices:
            pos = account.positions[j]
            ins = market.instrument(pos.symbol)
            im, mm, det = _position(ins, pos.size, market, p)
            rate = market.convert(1.0, ins.settle, unit.currency)
            det["settle"] = ins.settle
            if ins.settle != unit.currency:
                det |= {"initial_margin_settle": im, "maintenance_margin_settle": mm,
                        "fx_to_unit": rate}
            rows.append((j, ins, im * rate, mm * rate, det))
        fut_im = sum(r[2] for r in rows if not r[1].is_option)
        opt_im = sum(r[2] for r in rows if r[1].is_option)
        components: dict[str, float] = {"futures_initial_margin": fut_im,
                                        "options_initial_margin": opt_im}
        details: dict[str, Any] = {
            "margin_model": "cross_sm" if unit.scope == "account" else "segregated_sm"}
        haircut = 0.0
        if unit.scope == "account" and rows and p.collateral_haircuts:
            usd, per = collateral_haircut_usd(unit.collateral, p.collateral_haircuts, market)
            haircut = market.convert(usd, "USD", unit.currency)
            components["collateral_haircut"] = haircut
            details["collateral_haircut"] = per
            details["collateral_haircut_attribution"] = "pro rata to position IM"
        shares = pro_rata(haircut, [r[2] for r in rows])
        positions = tuple(
            PositionMargin(index=j, symbol=ins.symbol, size=account.positions[j].size,
                           initial_margin=im, maintenance_margin=mm, contribution=im + share,
                           notional=market.convert(notional(ins, account.positions[j].size,
                                                            market), ins.settle, unit.currency),
                           details=det | ({"collateral_haircut_share": share} if haircut else {}))
            for (j, ins, im, mm, det), share in zip(rows, shares, strict=True))
        im_total = fut_im + opt_im + haircut
        mm_total = sum(r[3] for r in rows) + (haircut if p.haircut_applies_to_mm else 0.0)
        return UnitMargin(id=unit.id, currency=unit.currency, initial_margin=im_total,
                          maintenance_margin=mm_total, components=components,
                          positions=positions, details=details)
