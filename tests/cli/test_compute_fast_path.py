"""``compute --format json`` (the whole-book path, the batched liquidation prices, the report
writer and the JSON text writer) writes, byte for byte, the document the per-account reference
functions give: ``prepare_book`` then ``assess_account`` account by account, each closed-form
liquidation price from ``model.liquidation_price`` position by position, the report converted
by the plain recursion below and the text by ``json.dumps(indent=2)``. Every model, on the demo
book and on a seeded random book."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from margin_engine.cli.main import app
from margin_engine.cli.params import parse_params
from margin_engine.domain.book import Book, net_positions
from margin_engine.domain.market import MarketSnapshot
from margin_engine.errors import InputError
from margin_engine.io.model_options import build_model
from margin_engine.models.core.registry import model_names
from margin_engine.policy.assess import (
    AccountReport,
    assess_account,
    assess_book,
    prepare_book,
    split_margined,
)

from ..policy.test_whole_book_path import DEMO, MARKET, MARKET_DOC, random_book

PARAMS = {"monte-carlo-es": ["n_paths=400"]}


def plain(v: Any) -> Any:
    """JSON-plain copy of a report value: finite floats, string keys, lists."""
    if isinstance(v, float):
        assert math.isfinite(v)
        return float(v)
    if isinstance(v, Mapping):
        return {str(k): plain(x) for k, x in v.items()}
    if isinstance(v, tuple | list):
        return [plain(x) for x in v]
    if hasattr(v, "tolist"):
        return plain(v.tolist())
    return v


def account_doc(r: AccountReport) -> dict[str, Any]:
    return {
        "id": r.id, "margin_mode": r.margin_mode.value, "currency": r.currency,
        "initial_margin": plain(r.initial_margin),
        "maintenance_margin": plain(r.maintenance_margin), "equity": plain(r.equity),
        "available_balance": plain(r.available_balance), "margin_ratio": plain(r.margin_ratio),
        "status": r.status.value, "components": plain(dict(r.components)),
        "positions": [{
            "symbol": p.margin.symbol, "size": p.margin.size, "unit": p.unit,
            "currency": p.currency, "notional": plain(p.margin.notional),
            "initial_margin": plain(p.margin.initial_margin),
            "maintenance_margin": plain(p.margin.maintenance_margin),
            "contribution": plain(p.margin.contribution),
            "liquidation_price": plain(p.liquidation_price),
            "liquidation_range": plain(p.liquidation_range),
            "details": plain(dict(p.margin.details))} for p in r.positions],
        "units": [{
            "id": u.margin.id, "scope": u.scope, "currency": u.margin.currency,
            "initial_margin": plain(u.margin.initial_margin),
            "maintenance_margin": plain(u.margin.maintenance_margin),
            "equity": plain(u.equity), "margin_ratio": plain(u.margin_ratio),
            "status": u.status.value, "components": plain(dict(u.margin.components)),
            "positions": [p.index for p in u.margin.positions],
            "details": plain(dict(u.margin.details))} for u in r.units],
        "audit": {"model": r.audit.model, "model_version": r.audit.model_version,
                  "params_hash": r.audit.params_hash,
                  "market_timestamp": r.audit.market_timestamp,
                  "engine_version": r.audit.engine_version},
    }


def reference_text(name: str, book: Book, market: MarketSnapshot, liquidation: bool) -> str:
    model, note = build_model(name, parse_params(PARAMS.get(name)), None, market)
    kept, refused = [], {}
    for i, account in enumerate(book.accounts):
        netted = net_positions(account, market)
        try:
            model.units(netted, market)
        except InputError as exc:
            refused[i] = {"id": account.id, "reason": f"{exc.path}: {exc.reason}"}
            continue
        kept.append((i, netted))
    prepare_book(model, Book(accounts=tuple(a for _, a in kept)), market)
    reports, margined = [], []
    for i, account in kept:
        try:
            reports.append(assess_account(model, account, market,
                                          liquidation_prices=liquidation))
            margined.append(account)
        except InputError as exc:  # e.g. a leverage above the venue's maximum
            refused[i] = {"id": account.id, "reason": f"{exc.path}: {exc.reason}"}
    assert reports
    if liquidation:
        for r, account in zip(reports, margined, strict=True):
            for unit, ur in zip(model.units(account, market), r.units, strict=True):
                for j in unit.position_indices:
                    want = model.liquidation_price(unit, account, market, j, ur.equity)
                    assert r.positions[j].liquidation_price == want, (account.id, j)
    doc = {
        "model": model.name, "model_version": model.version,
        "params_hash": model.params.params_hash(),
        "market_timestamp": model.stamp(market).market_timestamp,
        "engine_version": reports[0].audit.engine_version,
        "params": model.params.model_dump(mode="json"),
        "accounts": [account_doc(r) for r in reports],
        "not_margined": [refused[i] for i in sorted(refused)], "warnings": [note] if note else []}
    return json.dumps(doc, indent=2, allow_nan=False) + "\n"


def cli_text(name: str, book: Book, tmp_path: Path, liquidation: bool) -> str:
    (tmp_path / "book.json").write_text(json.dumps(book.model_dump(mode="json")))
    (tmp_path / "market.json").write_text(json.dumps(MARKET_DOC))
    out = tmp_path / "out.json"
    params = [a for p in PARAMS.get(name, []) for a in ("--param", p)]
    res = CliRunner().invoke(app, ["compute", str(tmp_path / "book.json"),
                                   str(tmp_path / "market.json"), "--model", name,
                                   "--format", "json", "-o", str(out), *params,
                                   *([] if liquidation else ["--no-liquidation"])])
    assert res.exit_code == 0, res.output
    return out.read_text()


@pytest.mark.parametrize("name", model_names())
def test_compute_json_equals_the_per_account_reference(name: str, tmp_path: Path) -> None:
    model, _ = build_model(name, parse_params(PARAMS.get(name)), None, MARKET)
    # Closed-form liquidation prices are batched per unit on the fast path; the generic
    # solver's agree to 1e-9 only, and are slow: the test below.
    liquidation = model.has_closed_form_liquidation()
    for book in (DEMO, random_book(model, seed=sum(map(ord, name)), n=6)):
        want = reference_text(name, book, MARKET, liquidation)
        got = cli_text(name, book, tmp_path, liquidation)
        assert got == want
        assert json.loads(got)["accounts"], name  # something was margined


@pytest.mark.parametrize("fmt", ["json", "table"])
def test_a_non_finite_result_is_refused_naming_it(fmt: str, tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """The JSON writer refuses NaN itself (no separate walk): still one line naming the
    place, exit 2, nothing written."""
    import margin_engine.cli.main as cli

    real = cli.compute_json

    def poisoned(*args: Any, **kwargs: Any) -> dict[str, Any]:
        doc = real(*args, **kwargs)
        doc["accounts"][0]["units"][0]["details"] = {"x": [1.0, math.nan]}
        return doc

    monkeypatch.setattr(cli, "compute_json", poisoned)
    (tmp_path / "book.json").write_text(json.dumps(DEMO.model_dump(mode="json")))
    (tmp_path / "market.json").write_text(json.dumps(MARKET_DOC))
    out = tmp_path / "out.json"
    res = CliRunner().invoke(app, ["compute", str(tmp_path / "book.json"),
                                   str(tmp_path / "market.json"), "--model", "binance-usdm",
                                   "--format", fmt, "-o", str(out)])
    assert res.exit_code == 2
    assert res.output.strip().splitlines() == [
        "error: output.accounts[0].units[0].details.x[1]: the result is not a finite number "
        "(input outside the model's range)"]
    assert not out.exists()


@pytest.mark.parametrize("name", ["derive-pmrm", "deribit-pm"])
def test_compute_liquidation_prices_from_the_whole_book_solver(name: str,
                                                               tmp_path: Path) -> None:
    """With liquidation prices, ``compute`` solves the generic bands of a scenario-grid model
    on the live engines (``live.liquidation.book_bands``): each price and band side within
    1e-9 relative of the per-unit solver's (``assess_book`` without a band solver), the rest of
    the document byte for byte the reference's."""
    got = json.loads(cli_text(name, DEMO, tmp_path, True))
    want = json.loads(reference_text(name, DEMO, MARKET, False))
    model, _ = build_model(name, parse_params(PARAMS.get(name)), None, MARKET)
    kept, _ = split_margined(model, DEMO, MARKET)
    per_unit = [p for r in assess_book(model, kept, MARKET) for p in r.positions]
    got_pos = [p for a in got["accounts"] for p in a["positions"]]
    assert len(got_pos) == len(per_unit)
    found = 0
    for g, ref in zip(got_pos, per_unit, strict=True):
        price, band = g.pop("liquidation_price"), g.pop("liquidation_range")
        assert ref.liquidation_range is not None
        for a, b in ((price, ref.liquidation_price),
                     *zip(band, ref.liquidation_range, strict=True)):
            assert (a is None) == (b is None)
            assert a is None or math.isclose(a, b, rel_tol=1e-9)
        found += price is not None
    assert found > 0
    for p in (p for a in want["accounts"] for p in a["positions"]):
        del p["liquidation_price"], p["liquidation_range"]
    assert got == want
