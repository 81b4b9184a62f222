"""Account reports as the public JSON document of ``margin-engine compute`` (DESIGN §4)."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict
from typing import Any

from margin_engine.domain.book import Book
from margin_engine.domain.market import MarketSnapshot
from margin_engine.errors import InputError, first_non_finite
from margin_engine.models.core.base import MarginModel
from margin_engine.policy.assess import AccountReport, assess_account


def _num(x: float | None) -> float | None:
    if x is None:
        return None
    if not math.isfinite(x):
        raise ArithmeticError(f"non-finite result {x!r}")
    return float(x)


def _plain(v: Any) -> Any:
    if isinstance(v, float):
        return _num(v)
    if isinstance(v, Mapping):
        return {str(k): _plain(x) for k, x in v.items()}
    if isinstance(v, tuple | list):
        return [_plain(x) for x in v]
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
        "audit": asdict(r.audit),
    }


def compute_json(model: MarginModel, reports: Sequence[AccountReport],
                 market_timestamp: str) -> dict[str, Any]:
    """The whole ``compute --format json`` document: audit stamp, parameters, accounts."""
    return {
        "model": model.name, "model_version": model.version,
        "params_hash": model.params.params_hash(), "market_timestamp": market_timestamp,
        "engine_version": reports[0].audit.engine_version if reports else None,
        "params": model.params.model_dump(mode="json"),
        "accounts": [account_json(r) for r in reports],
    }


def compute_json_text(model: MarginModel, book: Book, market: MarketSnapshot,
                      indent: int = 2) -> str:
    """``json.dumps(compute_json(...), indent=indent)`` without holding every report: each
    account is assessed, written as JSON text and dropped, so a large book needs memory for its
    text only. An error names its account; a non-finite number is an :class:`InputError` at
    ``output.accounts[i]...`` (nothing is written)."""
    stamp = model.stamp(market)
    head = {"model": model.name, "model_version": model.version,
            "params_hash": stamp.params_hash, "market_timestamp": stamp.market_timestamp,
            "engine_version": stamp.engine_version if book.accounts else None,
            "params": model.params.model_dump(mode="json")}
    pad = " " * (2 * indent)
    parts: list[str] = []
    for i, account in enumerate(book.accounts):
        try:
            doc = account_json(assess_account(model, account, market))
        except InputError as exc:
            raise exc.within(f"accounts[{i}]") from None
        except ArithmeticError as exc:
            raise InputError(f"output.accounts[{i}]", f"{exc} (input outside the model's "
                             f"range)") from None
        bad = first_non_finite(doc)
        if bad is not None:
            raise InputError(f"output.accounts[{i}].{bad}", "the result is not a finite number "
                             "(input outside the model's range)")
        parts.append(pad + json.dumps(doc, indent=indent, allow_nan=False).replace(
            "\n", "\n" + pad))
    text = json.dumps(head, indent=indent, allow_nan=False)
    inner = " " * indent
    if not parts:
        return text[:-2] + f',\n{inner}"accounts": []\n}}'
    return text[:-2] + f',\n{inner}"accounts": [\n' + ",\n".join(parts) + f"\n{inner}]\n}}"
