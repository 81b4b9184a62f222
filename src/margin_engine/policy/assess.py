"""From a model's requirements to an account report: equity, ratios, status, liquidation prices.

This is the one place where requirements (models layer) meet collateral (health policy).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from margin_engine.domain.book import Account, Book, MarginMode
from margin_engine.domain.market import MarketSnapshot
from margin_engine.errors import InputError
from margin_engine.models.core.base import MarginModel
from margin_engine.models.core.results import AuditStamp, PositionMargin, UnitMargin
from margin_engine.models.core.units import MarginUnit
from margin_engine.models.core.valuation import mark
from margin_engine.policy import health
from margin_engine.policy.health import HealthPolicy, Status
from margin_engine.policy.liquidation import nearest, solve_liquidation_band


@dataclass(frozen=True)
class PositionReport:
    margin: PositionMargin
    unit: str
    currency: str
    liquidation_price: float | None
    #: Underlying prices below/above which the unit is liquidated (generic solver only).
    liquidation_range: tuple[float | None, float | None] | None = None


@dataclass(frozen=True)
class UnitReport:
    margin: UnitMargin
    scope: str
    equity: float
    margin_ratio: float | None
    status: Status


@dataclass(frozen=True)
class AccountReport:
    """Everything ``compute`` prints for one account (amounts in ``currency``)."""

    id: str
    margin_mode: MarginMode
    currency: str
    initial_margin: float
    maintenance_margin: float
    equity: float
    available_balance: float
    margin_ratio: float | None
    status: Status
    components: Mapping[str, float]
    positions: tuple[PositionReport, ...]
    units: tuple[UnitReport, ...]
    audit: AuditStamp
    details: Mapping[str, object] = field(default_factory=dict)


_SEVERITY = {Status.HEALTHY: 0, Status.MARGIN_CALL: 1, Status.LIQUIDATION: 2}


def assess_account(model: MarginModel, account: Account, market: MarketSnapshot, *,
                   policy: HealthPolicy | None = None,
                   liquidation_prices: bool = True) -> AccountReport:
    """Margin, health and liquidation prices of one account under ``model``."""
    policy = policy or HealthPolicy()
    units = model.units(account, market)
    unit_reports: list[UnitReport] = []
    pos_reports: dict[int, PositionReport] = {}
    for unit in units:
        req = model.margin_unit(unit, account, market)
        eq = health.unit_equity(unit, account, market, policy)
        unit_reports.append(UnitReport(req, unit.scope, eq,
                                       health.margin_ratio(req.maintenance_margin, eq),
                                       health.status(req.initial_margin,
                                                     req.maintenance_margin, eq)))
        lps = (_liquidation_prices(model, unit, account, market, eq, policy)
               if liquidation_prices else {})
        for pm in req.positions:
            lp, band = lps.get(pm.index, (None, None))
            pos_reports[pm.index] = PositionReport(pm, unit.id, unit.currency, lp, band)
    currencies = {u.currency for u in units}
    ccy = currencies.pop() if len(currencies) == 1 else "USD"
    im = sum(market.convert(u.margin.initial_margin, u.margin.currency, ccy)
             for u in unit_reports)
    mm = sum(market.convert(u.margin.maintenance_margin, u.margin.currency, ccy)
             for u in unit_reports)
    comps: dict[str, float] = {}
    for u in unit_reports:
        for name, amount in u.margin.components.items():
            comps[name] = comps.get(name, 0.0) + market.convert(amount, u.margin.currency, ccy)
    eq = health.account_equity(account, ccy, market, policy)
    # Free collateral: never more than any unit can spare (a unit's shortfall is not covered
    # by collateral that backs other units or none).
    spare = [market.convert(u.equity - u.margin.initial_margin, u.margin.currency, ccy)
             for u in unit_reports]
    available = min([eq - im, *spare])
    worst = max(unit_reports, key=lambda u: (_SEVERITY[u.status], u.margin_ratio or 0.0),
                default=None)
    ratios = [u.margin_ratio for u in unit_reports]
    ratio = None if any(r is None for r in ratios) else max(
        (r for r in ratios if r is not None), default=health.margin_ratio(mm, eq))
    return AccountReport(
        id=account.id, margin_mode=account.margin_mode, currency=ccy, initial_margin=im,
        maintenance_margin=mm, equity=eq, available_balance=available, margin_ratio=ratio,
        status=worst.status if worst else health.status(im, mm, eq), components=comps,
        positions=tuple(pos_reports[j] for j in sorted(pos_reports)),
        units=tuple(unit_reports), audit=model.stamp(market))


def _liquidation_prices(model: MarginModel, unit: MarginUnit, account: Account,
                        market: MarketSnapshot, equity: float, policy: HealthPolicy
                        ) -> dict[int, tuple[float | None, tuple[float | None, float | None]
                                             | None]]:
    """Per position: its liquidation price and, from the generic solver, the safe band."""
    out: dict[int, tuple[float | None, tuple[float | None, float | None] | None]] = {}
    bands: dict[str, tuple[float | None, float | None]] = {}
    for j in unit.position_indices:
        pos = account.positions[j]
        ins = market.instrument(pos.symbol)
        if model.has_closed_form_liquidation():
            out[j] = (model.liquidation_price(unit, account, market, j, equity), None)
            continue
        if ins.underlying not in bands:
            bands[ins.underlying] = solve_liquidation_band(model, unit, account, market,
                                                           ins.underlying, policy)
        lo, hi = bands[ins.underlying]
        ref = market.index[ins.underlying] if ins.is_option else mark(ins, market)
        f = nearest((lo, hi))
        out[j] = (None if f is None else ref * f,
                  (None if lo is None else ref * lo, None if hi is None else ref * hi))
    return out


def assess_book(model: MarginModel, book: Book, market: MarketSnapshot, *,
                policy: HealthPolicy | None = None,
                liquidation_prices: bool = True) -> list[AccountReport]:
    """Assess every account; an error names the account it came from.

    The whole-book path: ``model.prepare`` first sees every unit of the book (scenario models
    revalue each instrument once per scenario set there), then each unit is margined.
    """
    pairs: list[tuple[MarginUnit, Account]] = []
    for i, account in enumerate(book.accounts):
        try:
            pairs.extend((u, account) for u in model.units(account, market))
        except InputError as exc:
            raise exc.within(f"accounts[{i}]") from None
    model.prepare(pairs, market)
    reports = []
    for i, account in enumerate(book.accounts):
        try:
            reports.append(assess_account(model, account, market, policy=policy,
                                          liquidation_prices=liquidation_prices))
        except InputError as exc:
            raise exc.within(f"accounts[{i}]") from None
    return reports
