"""dYdX v4 perpetuals: liquidity-tier margin fractions with open-interest scaling, cross and
isolated subaccounts (research/crypto-venues.md §4; dydxprotocol/v4-chain tag protocol/v9.6.1).

Per perpetual position (one net position per market in a subaccount), in quote quantums
(1 USDC = 10⁶ qq), as ``protocol/x/perpetuals/lib/lib.go`` computes them:

- ``notional = trunc(|q|·P·10⁶)`` (``BaseToQuoteQuantums``, truncated toward zero);
- ``IMF_oi = base + (10⁶ − base)·(OI − lower)/(upper − lower)`` in ppm, rounded down, ``base``
  at or below the lower cap or without caps, 100 % at or above the upper cap
  (``LiquidityTier.GetAdjustedInitialMarginPpm``; ``OI`` = open interest × oracle price);
- ``IMF = max(IMF_oi, custom_imf)`` where the subaccount chose a leverage (``custom_imf_ppm``);
- ``IMR = ceil(notional·IMF/10⁶)``; ``MMR = ceil(ceil(notional·base/10⁶)·fraction/10⁶)`` — always
  from the BASE IMF, never OI-scaled nor leveraged;
- ``NC = trunc(q·P·10⁶) + USDC balance``.

A subaccount is one cross pool: ``TNC = Σ NC``, ``TIMR = Σ IMR``, ``TMMR = Σ MMR``; it is
liquidatable when ``TMMR > 0`` and ``TMMR > TNC`` (``lib/margin/risk.go``). Isolated markets live
in their own subaccount (``isolated_subaccount.go``). The bankruptcy price of closing ``Δq`` is
``−ΔNNV − floor(TNC·|ΔMMR|/TMMR)`` (``clob/keeper/liquidations.go``). The protocol has no
liquidation price; the DERIVED one (§4.5) solves ``NC(P) = MMR(P)`` with the maintenance
fraction constant in price (quantum rounding moves it by ≤ 10⁻⁶ USDC of collateral).

Inputs are read as exact decimals (the shortest representation of each float), as the
protocol's integer base quantums and oracle price values represent them.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from fractions import Fraction
from functools import lru_cache
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from margin_engine.domain.book import Account, MarginMode
from margin_engine.domain.instruments import Instrument
from margin_engine.domain.market import MarketSnapshot
from margin_engine.domain.types import NonNegative
from margin_engine.errors import InputError
from margin_engine.models.core.base import (
    USD_STABLE,
    MarginModel,
    ModelParams,
    linear_perpetual_problem,
)
from margin_engine.models.core.registry import register
from margin_engine.models.core.results import PositionMargin, UnitMargin
from margin_engine.models.core.units import MarginUnit

PPM = 1_000_000
#: Quote quantums per USDC (USDC atomic resolution −6).
QUOTE_QUANTUMS = 1_000_000
SETTLE_CURRENCIES = USD_STABLE


# -- the protocol's integer arithmetic ----------------------------------------------------------

def exact(x: float | int | str | Fraction) -> Fraction:
    """The exact decimal a number stands for (a float by its shortest representation)."""
    if isinstance(x, Fraction | int):
        return Fraction(x)
    if isinstance(x, float):
        if not math.isfinite(x):
            raise ValueError(f"not a finite number: {x!r}")
        return _exact_float(x)
    return Fraction(x)


@lru_cache(maxsize=1 << 16)
def _exact_float(x: float) -> Fraction:
    """``Fraction(repr(x))`` through the C decimal parser, and remembered: a book repeats the
    same prices, contract sizes and sizes across accounts (Fractions are immutable)."""
    return Fraction(Decimal(repr(x)))


def quote_quantums(amount_usdc: Fraction) -> int:
    """USDC amount → quote quantums, truncated toward zero (``BaseToQuoteQuantums``)."""
    return int(amount_usdc * QUOTE_QUANTUMS)


def mul_ppm_round_up(value: int, ppm: int) -> int:
    """``ceil(value·ppm/10⁶)`` (``lib.BigMulPpm(…, roundUp=true)``)."""
    return -((-value * ppm) // PPM)


class LiquidityTier(BaseModel):
    """A liquidity tier, with the protocol's field names and units (ppm, quote quantums).

    Unknown fields (``id``, ``impact_notional``, ``base_position_notional``) are ignored so that
    the ``perpetuals`` module's query output can be passed as it is.
    """

    model_config = ConfigDict(frozen=True, extra="ignore", allow_inf_nan=False)

    name: str = ""
    initial_margin_ppm: int = Field(ge=0, le=PPM)
    maintenance_fraction_ppm: int = Field(ge=0, le=PPM)
    open_interest_lower_cap: int = Field(0, ge=0)
    open_interest_upper_cap: int = Field(0, ge=0)

    @model_validator(mode="after")
    def _caps(self) -> LiquidityTier:
        if self.open_interest_lower_cap > self.open_interest_upper_cap:
            raise ValueError(f"open_interest_lower_cap: {self.open_interest_lower_cap} is above "
                             f"open_interest_upper_cap {self.open_interest_upper_cap}")
        return self

    @property
    def maintenance_margin_fraction(self) -> Fraction:
        """Exact MMF = IMF_base × maintenance fraction (as a fraction of notional)."""
        return Fraction(self.initial_margin_ppm * self.maintenance_fraction_ppm, PPM * PPM)


def adjusted_initial_margin_ppm(tier: LiquidityTier, open_interest_qq: int) -> int:
    """OI-scaled IMF in ppm, rounded down (``GetAdjustedInitialMarginPpm``)."""
    lo, hi = tier.open_interest_lower_cap, tier.open_interest_upper_cap
    if hi == 0 or open_interest_qq <= lo:
        return tier.initial_margin_ppm
    if open_interest_qq >= hi:
        return PPM
    return tier.initial_margin_ppm + (PPM - tier.initial_margin_ppm) * (open_interest_qq - lo) // (
        hi - lo)


def initial_margin_qq(notional_qq: int, tier: LiquidityTier, open_interest_qq: int = 0,
                      custom_imf_ppm: int = 0) -> int:
    """IMR in quote quantums: ``ceil(notional·max(IMF_oi, custom)/10⁶)``
    (``GetInitialMarginQuoteQuantums``; ``custom_imf_ppm = 0`` means none)."""
    imf = adjusted_initial_margin_ppm(tier, open_interest_qq)
    if custom_imf_ppm > 0:
        imf = max(imf, custom_imf_ppm)
    return mul_ppm_round_up(notional_qq, imf)


def maintenance_margin_qq(notional_qq: int, tier: LiquidityTier) -> int:
    """MMR in quote quantums from the rounded-up BASE IMR (``GetMarginRequirements…``)."""
    base_imr = mul_ppm_round_up(notional_qq, tier.initial_margin_ppm)
    return mul_ppm_round_up(base_imr, tier.maintenance_fraction_ppm)


def is_liquidatable(tnc_qq: int, tmmr_qq: int) -> bool:
    """``risk.IsLiquidatable``: MMR > 0 and MMR > NC."""
    return tmmr_qq > 0 and tmmr_qq > tnc_qq


def bankruptcy_price_qq(pnnv: int, pnnv_after: int, pmmr: int, pmmr_after: int, tnc: int,
                        tmmr: int) -> int:
    """Bankruptcy price of a position delta in quote quantums, rounded toward +∞.

    ``−ΔNNV − floor(TNC·|ΔMMR|/TMMR)`` with ``ΔNNV = pnnv_after − pnnv`` and ``ΔMMR =
    pmmr_after − pmmr`` (``GetBankruptcyPriceInQuoteQuantums``). Signed: the quote received
    (> 0) or paid (< 0) for the whole delta.
    """
    dmmr = pmmr_after - pmmr
    if dmmr > 0:
        raise ValueError("pmmr_after: the delta must not raise the position's MMR")
    if tmmr <= 0:
        raise ValueError("tmmr: the subaccount's maintenance requirement must be > 0")
    return -(pnnv_after - pnnv) - (tnc * abs(dmmr)) // tmmr


def position_bankruptcy_price_qq(size: Fraction, delta: Fraction, price: Fraction,
                                 tier: LiquidityTier, tnc: int, tmmr: int) -> int:
    """Bankruptcy price (quote quantums) of reducing a position of ``size`` base units by
    ``delta`` (opposite sign, ``|delta| ≤ |size|``) at oracle ``price`` (USDC per unit)."""
    if size == 0 or delta == 0 or (size > 0) == (delta > 0) or abs(delta) > abs(size):
        raise ValueError(f"delta: {delta} is not a valid reduction of a position of {size}")
    after = size + delta
    return bankruptcy_price_qq(
        quote_quantums(size * price), quote_quantums(after * price),
        maintenance_margin_qq(quote_quantums(abs(size) * price), tier),
        maintenance_margin_qq(quote_quantums(abs(after) * price), tier), tnc, tmmr)


def liquidation_price_single(quote_balance: float, size: float,
                             maintenance_margin_fraction: float) -> float | None:
    """§4.5 (DERIVED): a subaccount of USDC ``quote_balance`` and one position of signed
    ``size`` is liquidated below ``−Q/(q(1−m))`` (long) or above ``Q/(|q|(1+m))`` (short).
    ``None`` when no positive price exists."""
    if size == 0.0:
        return None
    m = maintenance_margin_fraction
    p = -quote_balance / (size * (1.0 - m)) if size > 0 else quote_balance / (-size * (1.0 + m))
    return p if p > 0.0 else None


def leverage_to_imf_ppm(leverage: float) -> int:
    """Custom IMF (ppm) for a chosen leverage: ``ceil(10⁶/leverage)`` (the client-side
    conversion is UNCONFIRMED; rounding up never grants more leverage than chosen)."""
    return math.ceil(Fraction(PPM) / exact(leverage))


# -- parameters ---------------------------------------------------------------------------------

TIERS_SOURCE = ("dydxprotocol/v4-chain protocol/testing/genesis.sh at tag protocol/v9.6.1 "
                "(213eef5, 2026-01-27): local/testnet genesis; mainnet values are set by "
                "governance (UNCONFIRMED for mainnet)")


def _raw_default_tiers() -> dict[int, dict[str, Any]]:
    usdc = QUOTE_QUANTUMS
    rows = [(0, "Large-Cap", 20_000, 600_000, 0, 0),
            (1, "Small-Cap", 100_000, 500_000, 20_000_000, 50_000_000),
            (2, "Long-Tail", 200_000, 500_000, 5_000_000, 10_000_000),
            (3, "Safety", 1_000_000, 200_000, 2_000_000, 5_000_000),
            (4, "Isolated", 50_000, 600_000, 500_000, 1_000_000),
            (5, "Mid-Cap", 50_000, 600_000, 40_000_000, 100_000_000),
            (6, "FX", 10_000, 500_000, 500_000, 1_000_000)]
    return {i: {"name": name, "initial_margin_ppm": imf, "maintenance_fraction_ppm": mf,
                "open_interest_lower_cap": lo * usdc, "open_interest_upper_cap": hi * usdc}
            for i, name, imf, mf, lo, hi in rows}


def default_liquidity_tiers() -> dict[int, LiquidityTier]:
    """The §4.4 table (see :data:`TIERS_SOURCE`)."""
    return {i: LiquidityTier.model_validate(v) for i, v in _raw_default_tiers().items()}


def _default_market_tiers() -> dict[str, int]:
    return {"BTC": 0, "ETH": 0}


def _int_keys(v: Mapping[Any, Any], what: str) -> dict[int, Any]:
    out: dict[int, Any] = {}
    for k, x in v.items():
        try:
            out[int(k)] = x
        except (TypeError, ValueError):
            raise ValueError(f"{what}: tier id {k!r} is not an integer") from None
    return out


class DydxV4Params(ModelParams):
    liquidity_tiers: dict[int, LiquidityTier] = Field(
        default_factory=default_liquidity_tiers,
        description="Liquidity tiers by id: initial_margin_ppm, maintenance_fraction_ppm, "
                    "open_interest_lower_cap/upper_cap (quote quantums, 1 USDC = 1e6). Default: "
                    + TIERS_SOURCE + ". Given ids replace the defaults, the others stay.")
    market_liquidity_tier: dict[str, int] = Field(
        default_factory=_default_market_tiers,
        description="Liquidity tier id per market symbol or underlying (symbol looked up "
                    "first). Default BTC, ETH → 0 (Large-Cap), as BTC-USD and ETH-USD in "
                    "genesis.sh (UNCONFIRMED for mainnet). Given keys add to the defaults.")
    open_interest: dict[str, NonNegative] = Field(
        default_factory=dict,
        description="Open interest per market symbol or underlying, in base units (e.g. BTC), "
                    "valued at the oracle (mark) price for OI scaling; a market without one has "
                    "OI = 0 (base IMF). The protocol reads it from the perpetual's state.")
    isolated_markets: tuple[str, ...] = Field(
        (), description="Market symbols or underlyings of market type ISOLATED: a subaccount "
                        "holding one can hold no other perpetual (isolated_subaccount.go).")

    @field_validator("liquidity_tiers", mode="before")
    @classmethod
    def _merge_tiers(cls, v: Any) -> Any:
        if isinstance(v, Mapping):
            return {**_raw_default_tiers(), **_int_keys(v, "liquidity_tiers")}
        return v

    @field_validator("market_liquidity_tier", mode="before")
    @classmethod
    def _merge_markets(cls, v: Any) -> Any:
        if isinstance(v, Mapping):
            return {**_default_market_tiers(), **v}
        return v

    @model_validator(mode="after")
    def _known_tiers(self) -> DydxV4Params:
        for market, tier in self.market_liquidity_tier.items():
            if tier not in self.liquidity_tiers:
                raise ValueError(f"market_liquidity_tier.{market}: no liquidity tier {tier}")
        return self


def _lookup(mapping: Mapping[str, Any], ins: Instrument) -> Any:
    if ins.symbol in mapping:
        return mapping[ins.symbol]
    return mapping.get(ins.underlying)


@dataclass(frozen=True)
class MarketRisk:
    """One net perpetual position of a subaccount, in quote quantums."""

    symbol: str
    indices: tuple[int, ...]
    net_size: Fraction
    price: Fraction
    tier_id: int
    tier: LiquidityTier
    notional: int
    net_notional: int
    open_interest: int
    imf_ppm: int
    custom_imf_ppm: int
    imr: int
    mmr: int
    fx: float


# -- the model ----------------------------------------------------------------------------------

@register
class DydxV4(MarginModel):
    name = "dydx-v4"
    version = "2026-01.1"
    source = ("dydxprotocol/v4-chain tag protocol/v9.6.1: x/perpetuals/lib/lib.go, "
              "x/perpetuals/types/liquidity_tier.go, lib/margin/risk.go, "
              "x/clob/keeper/liquidations.go; research/crypto-venues.md §4")
    summary = ("Liquidity-tier IMF (OI-scaled, ppm rounded down) and MMF = base IMF × fraction, "
               "quote quantums rounded up; cross and isolated subaccounts; bankruptcy price.")
    Params = DydxV4Params
    modes = frozenset({MarginMode.ISOLATED, MarginMode.CROSS})
    params: DydxV4Params

    # -- inputs ------------------------------------------------------------------------------
    def check_instrument(self, ins: Instrument) -> str | None:
        why = linear_perpetual_problem(ins, self.name, SETTLE_CURRENCIES)
        if why:
            return why
        if _lookup(self.params.market_liquidity_tier, ins) is None:
            return (f"no liquidity tier for {ins.symbol!r} / {ins.underlying!r} (pass --param "
                    f"market_liquidity_tier='{{\"{ins.underlying}\": TIER_ID}}')")
        return None

    def tier_of(self, ins: Instrument) -> tuple[int, LiquidityTier]:
        tid = int(_lookup(self.params.market_liquidity_tier, ins))
        return tid, self.params.liquidity_tiers[tid]

    def is_isolated_market(self, ins: Instrument) -> bool:
        iso = self.params.isolated_markets
        return ins.symbol in iso or ins.underlying in iso

    def custom_imf_ppm(self, account: Account, ins: Instrument, tier: LiquidityTier) -> int:
        """The subaccount's custom IMF from its leverage for ``ins`` (0 when none is set)."""
        lev = account.leverage.get(ins.symbol)
        if lev is None:
            return 0
        if lev < 1:
            raise InputError(f"leverage.{ins.symbol}", f"{lev:g}: leverage must be at least 1")
        imf = leverage_to_imf_ppm(lev)
        if imf < tier.initial_margin_ppm:
            raise InputError(f"leverage.{ins.symbol}", f"{lev:g}× exceeds the market's maximum "
                             f"{PPM / tier.initial_margin_ppm:g}× (IMF "
                             f"{tier.initial_margin_ppm} ppm)")
        return imf

    def market_risks(self, unit: MarginUnit, account: Account,
                     market: MarketSnapshot) -> list[MarketRisk]:
        """Net position, requirements and notional per market of the unit (a subaccount)."""
        groups: dict[str, list[int]] = {}
        for j in unit.position_indices:
            groups.setdefault(account.positions[j].symbol, []).append(j)
        if unit.scope != "position" and len(groups) > 1:
            for j in unit.position_indices:
                ins = market.instrument(account.positions[j].symbol)
                if self.is_isolated_market(ins):
                    raise InputError(f"positions[{j}].symbol", f"{ins.symbol!r} is an isolated "
                                     "market: a dYdX subaccount holding it can hold no other "
                                     "perpetual (use margin_mode 'isolated')")
        out = []
        for sym, idx in groups.items():
            ins = market.instrument(sym)
            assert ins.mark_price is not None
            tid, tier = self.tier_of(ins)
            price, cs = exact(ins.mark_price), exact(ins.contract_size)
            net = sum((exact(account.positions[j].size) * cs for j in idx), Fraction(0))
            notional = quote_quantums(abs(net) * price)
            oi_base = _lookup(self.params.open_interest, ins)
            oi = 0 if oi_base is None else quote_quantums(exact(oi_base) * price)
            custom = self.custom_imf_ppm(account, ins, tier)
            imf = adjusted_initial_margin_ppm(tier, oi)
            out.append(MarketRisk(
                symbol=sym, indices=tuple(idx), net_size=net, price=price, tier_id=tid, tier=tier,
                notional=notional, net_notional=quote_quantums(net * price), open_interest=oi,
                imf_ppm=max(imf, custom) if custom > 0 else imf, custom_imf_ppm=custom,
                imr=initial_margin_qq(notional, tier, oi, custom),
                mmr=maintenance_margin_qq(notional, tier),
                fx=market.convert(1.0, ins.settle, unit.currency)))
        return out

    @staticmethod
    def quote_balance_qq(unit: MarginUnit, account: Account, market: MarketSnapshot) -> int:
        """The subaccount's USDC balance: collateral less the cost of its positions at entry
        (entry defaults to the mark), in quote quantums."""
        q = exact(unit.collateral.get(unit.currency, 0.0))
        for j in unit.position_indices:
            pos = account.positions[j]
            ins = market.instrument(pos.symbol)
            entry = pos.entry_price if pos.entry_price is not None else ins.mark_price
            assert entry is not None
            q -= exact(pos.size) * exact(ins.contract_size) * exact(entry)
        return round(q * QUOTE_QUANTUMS)

    # -- requirements ------------------------------------------------------------------------
    def margin_unit(self, unit: MarginUnit, account: Account,
                    market: MarketSnapshot) -> UnitMargin:
        risks = self.market_risks(unit, account, market)
        quote = self.quote_balance_qq(unit, account, market)
        tnc = quote + sum(r.net_notional for r in risks)
        timr = sum(r.imr for r in risks)
        tmmr = sum(r.mmr for r in risks)
        rows: dict[int, PositionMargin] = {}
        markets: dict[str, Any] = {}
        im_total = mm_total = 0.0
        for r in risks:
            im, mm = r.imr / QUOTE_QUANTUMS * r.fx, r.mmr / QUOTE_QUANTUMS * r.fx
            im_total += im
            mm_total += mm
            bp_qq = bp = None
            if tmmr > 0 and r.net_size != 0:
                bp_qq = bankruptcy_price_qq(r.net_notional, 0, r.mmr, 0, tnc, tmmr)
                bp = float(Fraction(bp_qq, QUOTE_QUANTUMS) / r.net_size)
            markets[r.symbol] = {
                "liquidity_tier": r.tier_id, "net_size": float(r.net_size),
                "notional_qq": r.notional, "net_notional_qq": r.net_notional,
                "open_interest_qq": r.open_interest,
                "imf_base_ppm": r.tier.initial_margin_ppm,
                "imf_oi_ppm": adjusted_initial_margin_ppm(r.tier, r.open_interest),
                "custom_imf_ppm": r.custom_imf_ppm, "imf_ppm": r.imf_ppm,
                "maintenance_fraction_ppm": r.tier.maintenance_fraction_ppm,
                "imr_qq": r.imr, "mmr_qq": r.mmr,
                "bankruptcy_quote_quantums": bp_qq, "bankruptcy_price": bp}
            for j in r.indices:
                size = exact(account.positions[j].size) * exact(
                    market.instrument(r.symbol).contract_size)
                own_n = quote_quantums(abs(size) * r.price)
                own_imr = initial_margin_qq(own_n, r.tier, r.open_interest, r.custom_imf_ppm)
                own_mmr = maintenance_margin_qq(own_n, r.tier)
                share = im * float(size / r.net_size) if r.net_size != 0 else 0.0
                rows[j] = PositionMargin(
                    index=j, symbol=r.symbol, size=account.positions[j].size,
                    initial_margin=own_imr / QUOTE_QUANTUMS * r.fx,
                    maintenance_margin=own_mmr / QUOTE_QUANTUMS * r.fx, contribution=share,
                    notional=own_n / QUOTE_QUANTUMS * r.fx,
                    details={"notional_qq": own_n, "imr_qq": own_imr, "mmr_qq": own_mmr,
                             "imf_ppm": r.imf_ppm, "liquidity_tier": r.tier_id,
                             "maintenance_margin_fraction": float(
                                 r.tier.maintenance_margin_fraction)})
        details = {"markets": markets, "quote_balance_qq": quote, "tnc_qq": tnc,
                   "timr_qq": timr, "tmmr_qq": tmmr, "net_collateral": tnc / QUOTE_QUANTUMS,
                   "liquidatable": is_liquidatable(tnc, tmmr),
                   "initially_collateralized": tnc >= timr}
        return UnitMargin(id=unit.id, currency=unit.currency, initial_margin=im_total,
                          maintenance_margin=mm_total,
                          components={"position_initial_margin": im_total},
                          positions=tuple(rows[j] for j in sorted(rows)), details=details)

    # -- liquidation price (DERIVED, §4.5 generalised to a subaccount) -------------------------
    def liquidation_price(self, unit: MarginUnit, account: Account, market: MarketSnapshot,
                          position_index: int, equity: float) -> float | None:
        """Oracle price of the position's market at which ``NC = MMR`` for the subaccount.

        All markets of the unit on the same underlying move by one factor ``f``; the others are
        held with their MMR. ``NC(f) = equity + A(f − 1)`` and ``MMR(f) = fixed + B·f`` with
        ``A`` the signed and ``B`` the MMF-weighted notional on the underlying, so ``f = (A +
        fixed − equity)/(A − B)``. ``None`` when that is not a positive price.
        """
        return self._liquidation_price(self.market_risks(unit, account, market), account,
                                       market, position_index, equity)

    def liquidation_prices(self, unit: MarginUnit, account: Account, market: MarketSnapshot,
                           equity: float) -> dict[int, float | None]:
        """:meth:`liquidation_price` of every position of the unit, its market risks computed
        once for all of them (the same numbers)."""
        risks = self.market_risks(unit, account, market)
        return {j: self._liquidation_price(risks, account, market, j, equity)
                for j in unit.position_indices}

    @staticmethod
    def _liquidation_price(risks: list[MarketRisk], account: Account, market: MarketSnapshot,
                           position_index: int, equity: float) -> float | None:
        pos = account.positions[position_index]
        if pos.size == 0.0:
            return None
        target = market.instrument(pos.symbol)
        a = b = fixed = 0.0
        for r in risks:
            ins = market.instrument(r.symbol)
            if ins.underlying == target.underlying:
                value = float(r.net_size * r.price) * r.fx
                a += value
                b += abs(value) * float(r.tier.maintenance_margin_fraction)
            else:
                fixed += r.mmr / QUOTE_QUANTUMS * r.fx
        if a == b:
            return None
        f = (a + fixed - equity) / (a - b)
        assert target.mark_price is not None
        return target.mark_price * f if f > 0.0 else None
