"""Read-only endpoints the dashboard needs beyond the DESIGN §8 table (same conventions: bearer
key, ``{"error": "<field path>: <reason>"}``, an account key sees only its own account):

| method and path | who | what |
|---|---|---|
| ``GET /v1/accounts`` | operator (all), owner (its own) | every visible account's headline state |
| ``GET /v1/accounts/{id}/risk-matrix`` | owner, operator | scenario P&L, price move × vol shift |
| ``GET /v1/accounts/{id}/models`` | owner, operator | the account under every registered model |
"""

from __future__ import annotations

import asyncio
import math
import threading
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request

from margin_engine.domain.book import Account
from margin_engine.domain.market import MarketSnapshot
from margin_engine.errors import InputError
from margin_engine.io.model_options import build_model
from margin_engine.live.events import AccountState
from margin_engine.models.core.base import MarginModel
from margin_engine.models.core.registry import model_names

from ..access import Principal, caller, core_of, may_see
from ..core import ServiceCore
from ..errors import NotFoundError
from ..http_errors import responses
from ..routes import AccountId
from .views import (
    DEFAULT_N_PRICE,
    DEFAULT_PRICE_RANGE,
    DEFAULT_VOL_SHIFTS,
    model_comparison,
    risk_matrix,
)

router = APIRouter()
Core = Annotated[ServiceCore, Depends(core_of)]
Caller = Annotated[Principal, Depends(caller)]
_models_lock = threading.Lock()


def _finite(x: float | None) -> float | None:
    return x if x is not None and math.isfinite(x) else None


def _state(core: ServiceCore, account_id: str) -> dict[str, Any]:
    s = core.live.state(account_id).as_dict()
    s["margin_ratio"] = _finite(s["margin_ratio"])
    return s


@router.get("/v1/accounts", responses=responses(401, 429))
def list_accounts(core: Core, who: Caller) -> dict[str, Any]:
    """Headline state of every account the caller may see (``AccountState``: ``id``,
    ``currency``, ``initial_margin``, ``maintenance_margin``, ``equity``,
    ``available_balance``, ``margin_ratio``, ``status``), the model and the live market's
    time."""
    with core.lock:
        ids = core.live.account_ids() if who.operator else [who.account]
        rows = [_state(core, i) for i in ids if i is not None and core.live.has_account(i)]
        ts = core.live.model.stamp(core.live.market).market_timestamp
    return {"accounts": rows, "market_timestamp": ts, "model": core.live.model.name}


def _account(core: ServiceCore, account_id: str) -> tuple[Account, MarketSnapshot, AccountState]:
    """The account, the market and its state, read together under the live book's lock."""
    with core.lock:
        if not core.live.has_account(account_id):
            raise NotFoundError("id", f"no account {account_id!r}")
        i = core.live.account_ids().index(account_id)
        return core.live.account_object(i), core.live.market, core.live.state(account_id)


def _floats(text: str, path: str) -> list[float]:
    try:
        out = [float(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise InputError(path, f"comma-separated numbers expected, got {text[:40]!r}") from None
    return out


@router.get("/v1/accounts/{account_id}/risk-matrix",
            responses=responses(400, 401, 404, 422, 429))
def get_risk_matrix(account_id: AccountId, core: Core, who: Caller,
                    price_range: Annotated[float, Query(gt=0, lt=1)] = DEFAULT_PRICE_RANGE,
                    n_price: Annotated[int, Query(ge=2, le=41)] = DEFAULT_N_PRICE,
                    vol_shifts: Annotated[str, Query(max_length=200)] = ",".join(
                        f"{v:g}" for v in DEFAULT_VOL_SHIFTS)) -> dict[str, Any]:
    """Scenario P&L of the account's positions and collateral when every underlying moves by
    ``x`` (``n_price`` moves over ±``price_range``) and every implied vol by each of
    ``vol_shifts`` (absolute, annualised), with the worst cell, the account's equity and
    maintenance margin (a P&L below ``maintenance_margin − equity`` reaches liquidation) and
    the positions' marks and liquidation prices."""
    may_see(who, account_id)
    account, market, state = _account(core, account_id)
    rm = risk_matrix(account, market, state.currency, price_range=price_range,
                     n_price=n_price, vol_shifts=_floats(vol_shifts, "vol_shifts"))
    doc = rm.as_dict()
    doc.update({"account": account_id, "equity": state.equity,
                "maintenance_margin": state.maintenance_margin,
                "initial_margin": state.initial_margin,
                "index": {u: market.index[u] for u in rm.underlyings if u in market.index},
                "positions": [{"symbol": p.symbol, "size": p.size,
                               "underlying": market.instrument(p.symbol).underlying,
                               "mark_price": market.instrument(p.symbol).mark_price}
                              for p in account.positions]})
    return doc


def _all_models(request: Request, market: MarketSnapshot) -> list[tuple[MarginModel, str | None]]:
    """Every registered model on default parameters, built once per market date (models with a
    history get the embedded synthetic one ending the day before, as ``compute`` without
    ``--history``)."""
    day = market.timestamp.date().isoformat()
    with _models_lock:
        cache: dict[str, list[tuple[MarginModel, str | None]]] = getattr(
            request.app.state, "dashboard_models", {})
        if day not in cache:
            built = []
            for name in model_names():
                try:
                    built.append(build_model(name, {}, None, market))
                except (InputError, ValueError):
                    continue
            cache = {day: built}
            request.app.state.dashboard_models = cache
        return cache[day]


@router.get("/v1/accounts/{account_id}/models", responses=responses(400, 401, 404, 422, 429))
async def get_models(account_id: AccountId, request: Request, core: Core,
                     who: Caller) -> dict[str, Any]:
    """The account under every registered model on its default parameters (IM and MM in the
    report currency and in USD, status), the service's own model flagged ``active`` (with the
    parameters the service runs); a model
    that does not margin the account says why (``not_applicable``)."""
    may_see(who, account_id)
    account, market, _ = await asyncio.to_thread(_account, core, account_id)

    active = core.live.model  # with the parameters the service runs, not the defaults

    def work() -> list[dict[str, Any]]:
        models = [active if m.name == active.name else m for m, _ in
                  _all_models(request, market)]
        return model_comparison(models, account, market, active.name)

    rows = await asyncio.to_thread(work)
    notes = sorted({n for _, n in _all_models(request, market) if n})
    return {"account": account_id, "market_timestamp": market.timestamp.isoformat(),
            "models": rows, "notes": notes}
