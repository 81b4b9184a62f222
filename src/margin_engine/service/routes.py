"""The REST routes of DESIGN §8 (the WebSocket is in :mod:`.stream`).

Money amounts in request bodies are JSON numbers or decimal strings and are stored as exact
decimals; a route that refuses stores nothing.
"""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Body, Depends, Path, Query
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, FiniteFloat

from margin_engine.io.report_json import account_json
from margin_engine.policy.margin_scale import scale_doc

from .access import Principal, caller, core_of, may_see, operator
from .core import ServiceCore, event_json
from .http_errors import ApiError, responses
from .repository import money

router = APIRouter()
Core = Annotated[ServiceCore, Depends(core_of)]
Caller = Annotated[Principal, Depends(caller)]
Operator = Annotated[Principal, Depends(operator)]
Money = Decimal | int | str
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\ud800-\udfff]")


def is_printable(s: str) -> bool:
    """Whether ``s`` has no control character and no unpaired surrogate."""
    return _CONTROL.search(s) is None


def _printable(s: str) -> str:
    """Refuse control characters (PostgreSQL's text columns cannot even hold NUL) and unpaired
    surrogates, as the domain's ``Name`` does."""
    if not is_printable(s):
        raise ValueError("contains a control character or an unpaired surrogate")
    return s


Printable = AfterValidator(_printable)
Text16 = Annotated[str, Field(min_length=1, max_length=16), Printable]
Text64 = Annotated[str, Field(min_length=1, max_length=64), Printable]
Text128 = Annotated[str, Field(min_length=1, max_length=128), Printable]


AccountId = Annotated[str, Path(min_length=1, max_length=64), Printable]
SEQ_MAX = 2**31 - 1
"""The largest ``after`` sequence number (the ``seq`` columns are 32-bit integers)."""


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class NewAccount(_Body):
    """``POST /v1/accounts``."""

    id: Text64
    margin_mode: Literal["cross", "isolated", "portfolio"] = "cross"
    collateral: dict[str, Decimal] = Field(default_factory=dict)
    credit_rating: Text16 | None = None


class CollateralChange(_Body):
    """``POST /v1/accounts/{id}/collateral``: deposit (> 0) or withdraw (< 0)."""

    currency: Text16
    amount: Decimal


class NewFill(_Body):
    """``POST /v1/accounts/{id}/fills``."""

    fill_id: Text128
    symbol: Text64
    size: Decimal
    price: Decimal


class Order(_Body):
    symbol: Text64
    size: FiniteFloat
    price: FiniteFloat | None = None


class WhatIfRequest(_Body):
    """``POST /v1/accounts/{id}/what-if``."""

    orders: list[Order] = Field(min_length=1, max_length=100)


@router.get("/healthz")
def healthz() -> dict[str, str]:
    """Liveness."""
    return {"status": "ok"}


@router.get("/v1/models")
def models(core: Core) -> dict[str, Any]:
    """The active model, its version, parameters hash and the live market's time."""
    st = core.live.model.stamp(core.live.market)
    params = core.live.model.params.model_dump(mode="json", exclude={"history"})
    return {"model": st.model, "model_version": st.model_version,
            "params_hash": st.params_hash, "params": params,
            "market_timestamp": st.market_timestamp, "engine_version": st.engine_version,
            # the dynamic multipliers in force and the hash stamped on numbers under them
            "margin_scale": scale_doc(core.live.scale),
            "stamp_params_hash": core.live.stamp().params_hash}


@router.post("/v1/accounts", status_code=201,
             responses=responses(400, 401, 403, 409, 413, 422, 429))
def create_account(body: NewAccount, core: Core, who: Operator) -> dict[str, str]:
    """Create an account; its API key is in this answer only."""
    coll = {c: money(v, f"collateral.{c}", positive=True) for c, v in body.collateral.items()}
    made = core.create_account(body.id, body.margin_mode, coll, body.credit_rating, who.actor)
    return {"id": made.id, "api_key": made.api_key}


@router.get("/v1/accounts/{account_id}", responses=responses(400, 401, 404, 422, 429))
def get_account(account_id: AccountId, core: Core, who: Caller) -> dict[str, Any]:
    """The account report (``compute``'s per-account JSON) and its stored collateral."""
    may_see(who, account_id)
    stored = core.repo.get_account(account_id)
    doc = account_json(core.report(account_id))
    doc["collateral"] = {c: str(v) for c, v in sorted(stored.balances.items())}
    return doc


@router.post("/v1/accounts/{account_id}/collateral",
             responses=responses(400, 401, 403, 404, 409, 413, 422, 429))
def collateral(account_id: AccountId, body: CollateralChange, core: Core,
               who: Caller) -> dict[str, Any]:
    """Deposit (operator) or withdraw (owner or operator); 409 when a withdrawal would leave
    equity below initial margin."""
    may_see(who, account_id)
    amt = money(body.amount, "amount", nonzero=True)
    if amt > 0 and not who.operator:
        raise ApiError(403, "amount", "only the operator deposits; an account may withdraw")
    r = core.change_collateral(account_id, body.currency, amt, who.actor)
    return {"account": r.account, "currency": r.currency, "amount": str(r.amount),
            "balance": str(r.balance), "audit_seq": r.audit_seq,
            "state": core.live.state(account_id).as_dict()}


@router.post("/v1/accounts/{account_id}/fills",
             responses=responses(400, 401, 403, 404, 409, 413, 422, 429))
def fill(account_id: AccountId, body: NewFill, core: Core, who: Operator) -> dict[str, Any]:
    """Apply a fill atomically; the same ``fill_id`` again applies once (``replayed``)."""
    size = money(body.size, "size", nonzero=True)
    price = money(body.price, "price", positive=True)
    r = core.apply_fill(account_id, body.fill_id, body.symbol, size, price, who.actor)
    return {"fill_id": r.fill_id, "account": r.account, "symbol": r.symbol,
            "size": str(r.size), "price": str(r.price), "position_after": str(r.position_after),
            "audit_seq": r.audit_seq, "replayed": r.replayed,
            "state": core.live.state(account_id).as_dict()}


@router.post("/v1/accounts/{account_id}/what-if",
             responses=responses(400, 401, 404, 413, 422, 429))
def what_if(account_id: AccountId, body: WhatIfRequest, core: Core, who: Caller) -> dict[str, Any]:
    """Margin before and after the orders, and the pre-trade verdict; stores nothing."""
    may_see(who, account_id)
    w = core.what_if(account_id, [(o.symbol, o.size, o.price) for o in body.orders])
    return w.as_dict()


@router.post("/v1/market", responses=responses(400, 401, 403, 413, 422, 429))
def market(core: Core, who: Operator,
           body: Annotated[dict[str, Any], Body(
               description="a partial update {timestamp, index?, fx?, order_books?, "
                           "instruments?: "
                           "[{symbol, mark_price?, mark_iv?, underlying_price?}]} or a whole "
                           "snapshot (DESIGN §4)")]) -> dict[str, Any]:
    """Update the market, re-margin what it touches; answers the events it caused."""
    events = core.update_market(body) or []
    return {"market_timestamp": core.live.model.stamp(core.live.market).market_timestamp,
            "events": [event_json(e) for e in events]}


@router.get("/v1/events", responses=responses(401, 422, 429))
def events(core: Core, who: Caller, after: Annotated[int, Query(ge=0, le=SEQ_MAX)] = 0,
           limit: Annotated[int, Query(ge=1, le=1000)] = 1000) -> dict[str, Any]:
    """Stored events after ``seq`` (an account key sees its own)."""
    recs = core.repo.events_after(after, account_id=who.account, limit=limit)
    return {"events": [event_json(r) for r in recs]}


@router.get("/v1/audit", responses=responses(401, 403, 422, 429))
def audit(core: Core, who: Operator, after: Annotated[int, Query(ge=0, le=SEQ_MAX)] = 0,
          limit: Annotated[int, Query(ge=1, le=1000)] = 1000) -> dict[str, Any]:
    """The hash-chained audit log after ``seq``."""
    return {"entries": [e.to_json() for e in core.repo.audit_after(after, limit=limit)]}


@router.get("/v1/commitments/latest", responses=responses(404))
def latest_commitment(core: Core) -> dict[str, Any]:
    """The newest Merkle commitment over every account's figures."""
    c = core.repo.latest_commitment()
    if c is None:
        raise ApiError(404, "commitment", "no commitment has been published yet")
    return c.to_json()


@router.get("/v1/accounts/{account_id}/proof", responses=responses(401, 404, 422, 429))
def proof(account_id: AccountId, core: Core, who: Caller) -> dict[str, Any]:
    """The account's leaf and inclusion proof in the newest commitment, with its salt."""
    may_see(who, account_id)
    return core.repo.proof_for(account_id).to_json()
