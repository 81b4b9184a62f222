"""From a model's requirements to an account report: equity, ratios, status, liquidation prices.

This is the one place where requirements (models layer) meet collateral (health policy).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from contextlib import suppress
from dataclasses import dataclass, field
from typing import TypeVar

from margin_engine.domain.book import Account, Book, MarginMode, net_positions
from margin_engine.domain.market import MarketSnapshot
from margin_engine.errors import InputError
from margin_engine.models.core.base import MarginModel
from margin_engine.models.core.results import AuditStamp, PositionMargin, UnitMargin
from margin_engine.models.core.units import MarginUnit
from margin_engine.models.core.valuation import mark
from margin_engine.policy import health
from margin_engine.policy.health import HealthPolicy, Status
from margin_engine.policy.liquidation import Band, fast_liquidation_band, nearest
from margin_engine.policy.margin_scale import MarginScale, scaled_stamp, scaled_unit


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


T = TypeVar("T")

_SEVERITY = {Status.HEALTHY: 0, Status.MARGIN_CALL: 1, Status.LIQUIDATION: 2}

#: A whole-book liquidation band solver: ``(model, netted accounts, their units, market,
#: policy)`` to, per account and unit, ``{underlying: band}`` as
#: :func:`~margin_engine.policy.liquidation.fast_liquidation_band` gives it (an underlying left
#: out is solved per unit). The live engines provide one
#: (:func:`margin_engine.live.liquidation.book_bands`).
BandSolver = Callable[[MarginModel, Sequence[Account], Sequence[Sequence[MarginUnit]],
                       MarketSnapshot, HealthPolicy], Sequence[Sequence[Mapping[str, Band]]]]


def assess_account(model: MarginModel, account: Account, market: MarketSnapshot, *,
                   policy: HealthPolicy | None = None,
                   liquidation_prices: bool = True,
                   scale: MarginScale | None = None) -> AccountReport:
    """Margin, health and liquidation prices of one account under ``model``.

    Positions in the same symbol are netted first (:func:`~margin_engine.domain.book.
    net_positions`), so every model margins one net position per symbol. ``scale`` (a dynamic
    margin multiplier, :mod:`~margin_engine.policy.margin_scale`) raises each unit's IM and MM
    (the raise shows as the ``dynamic_adjustment`` component; liquidation prices stay the
    model's).
    """
    account = net_positions(account, market)
    return _assess_units(model, account, model.units(account, market), market,
                         policy=policy or HealthPolicy(), liquidation_prices=liquidation_prices,
                         scale=scale)


def _assess_units(model: MarginModel, account: Account, units: Sequence[MarginUnit],
                  market: MarketSnapshot, *, policy: HealthPolicy, liquidation_prices: bool,
                  scale: MarginScale | None,
                  bands: Sequence[Mapping[str, Band]] | None = None) -> AccountReport:
    """:func:`assess_account` of a netted ``account`` grouped into ``units`` already
    (``bands``: each unit's liquidation bands by underlying, solved already)."""
    unit_reports: list[UnitReport] = []
    pos_reports: dict[int, PositionReport] = {}
    for n, unit in enumerate(units):
        req = model.margin_unit(unit, account, market)
        if scale is not None and not scale.is_identity:
            req = scaled_unit(req, scale)
        eq = health.unit_equity(unit, account, market, policy)
        unit_reports.append(UnitReport(req, unit.scope, eq,
                                       health.margin_ratio(req.maintenance_margin, eq),
                                       health.status(req.initial_margin,
                                                     req.maintenance_margin, eq)))
        lps = (_liquidation_prices(model, unit, account, market, eq, policy,
                                   None if bands is None else bands[n])
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
        units=tuple(unit_reports),
        audit=model.stamp(market) if scale is None else scaled_stamp(model.stamp(market), scale))


def _liquidation_prices(model: MarginModel, unit: MarginUnit, account: Account,
                        market: MarketSnapshot, equity: float, policy: HealthPolicy,
                        known: Mapping[str, Band] | None = None
                        ) -> dict[int, tuple[float | None, tuple[float | None, float | None]
                                             | None]]:
    """Per position: its liquidation price and, from the generic solver, the safe band.

    The venue's closed form where the model has one; otherwise one band per underlying of the
    unit: from ``known`` (a whole-book solver's), else from
    :func:`~margin_engine.policy.liquidation.fast_liquidation_band` (which agrees with the
    reference ``solve_liquidation_band``; tests check both)."""
    out: dict[int, tuple[float | None, tuple[float | None, float | None] | None]] = {}
    if model.has_closed_form_liquidation():
        return {j: (lp, None)
                for j, lp in model.liquidation_prices(unit, account, market, equity).items()}
    bands: dict[str, tuple[float | None, float | None]] = dict(known or {})
    surplus: float | None = None
    for j in unit.position_indices:
        ins = market.instrument(account.positions[j].symbol)
        if ins.underlying not in bands:
            if surplus is None:  # equity − MM today, shared by the unit's underlyings
                surplus = equity - model.maintenance_margin(unit, account, market)
            bands[ins.underlying] = fast_liquidation_band(
                model, unit, account, market, ins.underlying, policy, surplus_today=surplus)
        lo, hi = bands[ins.underlying]
        ref = market.index[ins.underlying] if ins.is_option else mark(ins, market)
        f = nearest((lo, hi))
        out[j] = (None if f is None else ref * f,
                  (None if lo is None else ref * lo, None if hi is None else ref * hi))
    return out


def prepare_book(model: MarginModel, book: Book, market: MarketSnapshot, *,
                 skip_refused: bool = False) -> None:
    """The whole-book step: ``model.prepare`` sees every unit of ``book`` (scenario models
    revalue each instrument once per scenario set). An account the model refuses raises its
    error under ``accounts[i]``, or with ``skip_refused`` is left for the assessment to report."""
    pairs: list[tuple[MarginUnit, Account]] = []
    for i, account in enumerate(book.accounts):
        try:
            pairs.extend((u, account) for u in model.units(account, market))
        except InputError as exc:
            if not skip_refused:
                raise exc.within(f"accounts[{i}]") from None
    model.prepare(pairs, market)


def assess_book(model: MarginModel, book: Book, market: MarketSnapshot, *,
                policy: HealthPolicy | None = None,
                liquidation_prices: bool = True,
                band_solver: BandSolver | None = None,
                progress: Callable[[int, int], None] | None = None) -> list[AccountReport]:
    """Assess every account of ``book`` under ``model``, on the whole-book path.

    ``model.prepare`` first sees every unit of the book (scenario models revalue each instrument
    once per scenario set there); then each account is assessed.

    Parameters
    ----------
    model : MarginModel
        A registered model (see :func:`margin_engine.models.registry.get_model`).
    book : Book
        The accounts; every account must be one ``model`` margins (see
        :func:`split_margined` to set the others aside first).
    market : MarketSnapshot
        The market the book is valued in.
    policy : HealthPolicy, optional
        Collateral haircuts (default: :class:`~margin_engine.policy.health.HealthPolicy`).
    liquidation_prices : bool, default True
        Solve each position's liquidation price (the slow part for the generic solver).
    band_solver : BandSolver, optional
        Solves every unit's liquidation bands at once for a model without a closed form
        (``compute`` passes :func:`margin_engine.live.liquidation.book_bands`); default: each
        unit on its own (:func:`~margin_engine.policy.liquidation.fast_liquidation_band`).
    progress : callable, optional
        Called as ``progress(accounts_done, accounts_total)`` after each account's report
        (``compute`` draws its progress bar from it).

    Returns
    -------
    list of AccountReport
        One report per account, in book order.

    Raises
    ------
    InputError
        The first problem, its path under ``accounts[i]``.
    """
    policy = policy or HealthPolicy()
    accounts = [net_positions(a, market) for a in book.accounts]
    units: list[list[MarginUnit]] = []
    for i, account in enumerate(accounts):  # grouped once, for prepare and the assessment
        try:
            units.append(model.units(account, market))
        except InputError as exc:
            raise exc.within(f"accounts[{i}]") from None
    model.prepare([(u, a) for a, us in zip(accounts, units, strict=True) for u in us], market)
    solved = None
    if (band_solver is not None and liquidation_prices and accounts
            and not model.has_closed_form_liquidation()):
        # an account's problem (InputError): the per-account path below reports it, its path
        with suppress(InputError):
            solved = band_solver(model, accounts, units, market, policy)
    reports = []
    for i, (account, us) in enumerate(zip(accounts, units, strict=True)):
        try:
            reports.append(_assess_units(model, account, us, market, policy=policy,
                                         liquidation_prices=liquidation_prices, scale=None,
                                         bands=None if solved is None else solved[i]))
        except InputError as exc:
            raise exc.within(f"accounts[{i}]") from None
        if progress is not None:
            progress(i + 1, len(accounts))
    return reports


@dataclass(frozen=True)
class NotMargined:
    """An account a model does not margin, and why (``path: reason`` within the account)."""

    id: str
    reason: str


def select_accounts(book: Book, ids: Sequence[str] | None, *, what: str = "accounts"
                    ) -> Book:
    """The accounts of ``book`` named in ``ids`` (all of them when ``ids`` is ``None``).

    Raises :class:`InputError` at ``what`` for an id the book does not hold.
    """
    if ids is None:
        return book
    known = {a.id for a in book.accounts}
    for i in ids:
        if i not in known:
            shown = ", ".join(sorted(known)[:20]) + (", ..." if len(known) > 20 else "")
            raise InputError(what, f"no account {i!r} in the book (accounts: {shown})")
    wanted = set(ids)
    return book.model_copy(update={"accounts": tuple(a for a in book.accounts
                                                     if a.id in wanted)})


def split_margined(model: MarginModel, book: Book, market: MarketSnapshot, *,
                   strict: bool = False) -> tuple[Book, list[NotMargined]]:
    """Split ``book`` into the accounts ``model`` margins and those it does not.

    An account is not margined when :meth:`MarginModel.units` refuses it: a margin mode the
    venue does not offer, or an instrument it does not list (a Binance USDⓈ-M model given a
    Deribit inverse perpetual). Positions in the same symbol are netted in the returned book.

    Parameters
    ----------
    model : MarginModel
        The model that will assess the book.
    book : Book
        Every account.
    market : MarketSnapshot
        The market (instrument definitions decide what a venue lists).
    strict : bool, default False
        Raise the first refusal instead of setting the account aside.

    Returns
    -------
    (Book, list of NotMargined)
        The accounts to pass to :func:`assess_book`, in book order, and the others with the
        reason.

    Raises
    ------
    InputError
        Only when ``strict``: the first refusal, its path under ``accounts[i]``.
    """
    keep: list[Account] = []
    refused: list[NotMargined] = []
    for i, account in enumerate(book.accounts):
        netted = net_positions(account, market)
        try:
            model.units(netted, market)
        except InputError as exc:
            if strict:
                raise exc.within(f"accounts[{i}]") from None
            refused.append(NotMargined(account.id, f"{exc.path}: {exc.reason}"))
            continue
        keep.append(netted)
    return book.model_copy(update={"accounts": tuple(keep)}), refused


def assess_margined(model: MarginModel, book: Book, market: MarketSnapshot, *,
                    strict: bool = False, policy: HealthPolicy | None = None,
                    liquidation_prices: bool = True,
                    assess: Callable[..., list[AccountReport]] | None = None
                    ) -> tuple[list[AccountReport], list[NotMargined]]:
    """Assess every account ``model`` margins; list the others with the reason.

    The accounts :func:`split_margined` sets aside, and those the model refuses while
    computing (say a leverage above the venue's maximum), are ``not margined``; the others are
    assessed by :func:`assess_book` (at most twice each when some are refused on the way).

    ``assess`` replaces :func:`assess_book` (same arguments), e.g. to run it on Dask.

    Returns
    -------
    (list of AccountReport, list of NotMargined)
        Both in book order.

    Raises
    ------
    InputError
        Only when ``strict``: the first refusal, its path under ``accounts[i]`` of ``book``.
    """
    run = assess or assess_book
    return margined_only(model, book, market, lambda kept: run(
        model, kept, market, policy=policy, liquidation_prices=liquidation_prices),
        strict=strict)


def margined_only(model: MarginModel, book: Book, market: MarketSnapshot,
                  run: Callable[[Book], list[T]], *, strict: bool = False
                  ) -> tuple[list[T], list[NotMargined]]:
    """``run`` on the accounts of ``book`` that ``model`` margins; the others listed with the
    reason.

    ``run(book)`` gives one result per account of the book it is given, in its order, or
    raises the first account's problem under ``accounts[i]``. The accounts
    :func:`split_margined` sets aside, and those ``run`` refuses, are ``not margined``; the
    rest are run at most twice each when some are refused on the way (``compute`` and
    ``stress`` share this).

    Returns
    -------
    (list, list of NotMargined)
        ``run``'s results for the margined accounts and the others, both in book order.

    Raises
    ------
    InputError
        Only when ``strict``: the first refusal, its path under ``accounts[i]`` of ``book``.
    """
    position = {a.id: i for i, a in enumerate(book.accounts)}
    kept, refused = split_margined(model, book, market, strict=strict)
    remaining = list(kept.accounts)
    fine: list[Account] = []  # accounts that came before a refusal: run again at the end
    tail: list[T] = []
    while remaining:
        try:
            tail = run(kept.model_copy(update={"accounts": tuple(remaining)}))
            break
        except InputError as exc:
            if not exc.path.startswith("accounts["):
                raise  # not an account's problem (e.g. a scheduler that cannot be reached)
            head, _, rest = exc.path.partition("]")
            k = int(head.removeprefix("accounts["))
            bad = remaining[k]
            if strict:
                where = rest.removeprefix(".")
                raise InputError(f"accounts[{position[bad.id]}]" + (f".{where}" if where else ""),
                                 exc.reason) from None
            refused.append(NotMargined(bad.id, f"{rest.removeprefix('.') or '<account>'}: "
                                               f"{exc.reason}"))
            fine += remaining[:k]
            remaining = remaining[k + 1:]
    head_results = run(kept.model_copy(update={"accounts": tuple(fine)})) if fine else []
    refused.sort(key=lambda n: position[n.id])
    return head_results + tail, refused
