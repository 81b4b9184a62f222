"""Account reports as the public JSON document of ``margin-engine compute`` (DESIGN §4)."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import fields
from typing import Any

from margin_engine.models.core.base import MarginModel
from margin_engine.models.core.results import AuditStamp
from margin_engine.policy.assess import AccountReport, NotMargined

#: The audit stamp's fields (all strings), read directly: ``dataclasses.asdict`` deep-copies
#: and was a fifth of the report writer's time on a 10,000-account book.
_AUDIT_FIELDS = tuple(f.name for f in fields(AuditStamp))


def _num(x: float | None) -> float | None:
    if x is None:
        return None
    if not math.isfinite(x):
        raise ArithmeticError(f"non-finite result {x!r}")
    return float(x)


#: Leaves that are already plain JSON (exact types: subclasses go through :func:`_plain`).
_KEEP = frozenset({str, int, bool, type(None)})


def _leaf(x: Any) -> Any:
    """``x`` itself when it is already plain and finite, else :func:`_plain` of it (``x - x``
    is ``0.0`` exactly for a finite float, NaN for NaN and ±inf)."""
    t = type(x)
    return x if t in _KEEP or (t is float and x - x == 0.0) else _plain(x)


#: Leaf types a container may hold to be copied whole, when its floats are finite.
_LEAVES = _KEEP | {float}
_STR = frozenset({str})


def _whole(items: Any) -> bool:
    """Whether ``items`` are all plain leaves (exact types) with finite floats: then the
    container is copied whole instead of item by item. A sum of finite floats is finite unless
    it overflows (then the item-by-item path decides)."""
    types = set(map(type, items))
    if not types <= _LEAVES:
        return False
    if float not in types:
        return True
    total = sum(items if len(types) == 1 else [x for x in items if type(x) is float])
    return bool(total - total == 0.0)


def _plain(v: Any) -> Any:
    t = type(v)
    if t is list or t is tuple or (t is not dict and isinstance(v, tuple | list)):
        return list(v) if _whole(v) else [_leaf(x) for x in v]
    if t is dict or isinstance(v, Mapping):
        if _STR.issuperset(map(type, v)) and _whole(v.values()):
            return dict(v)
        return {k if type(k) is str else str(k): _leaf(x) for k, x in v.items()}
    if isinstance(v, float):
        return _num(v)
    if hasattr(v, "tolist"):
        return _plain(v.tolist())
    return v


def account_json(r: AccountReport) -> dict[str, Any]:
    return {
        "id": r.id, "margin_mode": r.margin_mode.value, "currency": r.currency,
        "initial_margin": _num(r.initial_margin), "maintenance_margin": _num(r.maintenance_margin),
        "equity": _num(r.equity), "available_balance": _num(r.available_balance),
        "margin_ratio": _num(r.margin_ratio), "status": r.status.value,
        "components": _plain(dict(r.components)),
        "positions": [{
            "symbol": p.margin.symbol, "size": p.margin.size, "unit": p.unit,
            "currency": p.currency, "notional": _num(p.margin.notional),
            "initial_margin": _num(p.margin.initial_margin),
            "maintenance_margin": _num(p.margin.maintenance_margin),
            "contribution": _num(p.margin.contribution),
            "liquidation_price": _num(p.liquidation_price),
            "liquidation_range": None if p.liquidation_range is None else [
                _num(x) for x in p.liquidation_range],
            "details": _plain(dict(p.margin.details))} for p in r.positions],
        "units": [{
            "id": u.margin.id, "scope": u.scope, "currency": u.margin.currency,
            "initial_margin": _num(u.margin.initial_margin),
            "maintenance_margin": _num(u.margin.maintenance_margin),
            "equity": _num(u.equity), "margin_ratio": _num(u.margin_ratio),
            "status": u.status.value, "components": _plain(dict(u.margin.components)),
            "positions": [p.index for p in u.margin.positions],
            "details": _plain(dict(u.margin.details))} for u in r.units],
        "audit": {k: getattr(r.audit, k) for k in _AUDIT_FIELDS},
    }


def compute_json(model: MarginModel, reports: Sequence[AccountReport],
                 market_timestamp: str, not_margined: Sequence[NotMargined] = (),
                 warnings: Sequence[str] = ()) -> dict[str, Any]:
    """The whole ``compute --format json`` document: audit stamp, parameters, accounts, the
    accounts the model does not margin (``not_margined: [{id, reason}]``) and the warnings
    issued on the way (e.g. the synthetic-history fallback)."""
    return {
        "model": model.name, "model_version": model.version,
        "params_hash": model.params.params_hash(), "market_timestamp": market_timestamp,
        "engine_version": reports[0].audit.engine_version if reports else None,
        "params": model.params.model_dump(mode="json"),
        "accounts": [account_json(r) for r in reports],
        "not_margined": [{"id": n.id, "reason": n.reason} for n in not_margined],
        "warnings": list(warnings),
    }
