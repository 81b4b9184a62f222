"""Issue 8: the synthetic-history fallback is a visible warning; the credit add-on is opt-in."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from margin_engine.cli.main import app

runner = CliRunner()


def _unrated(book_doc):
    for a in book_doc["accounts"]:
        a.pop("credit_rating", None)
    return book_doc


def test_synthetic_history_fallback_warns_on_stderr_and_in_json(write_json, book_doc,
                                                                  market_doc):
    b, m = write_json("b.json", book_doc), write_json("m.json", market_doc)
    res = runner.invoke(app, ["compute", str(b), str(m), "-m", "historical-var", "-f", "json"])
    assert res.exit_code == 0, res.output
    lines = [ln for ln in res.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("warning: historical-var: ")
    assert "synthetic history" in lines[0]
    doc = json.loads(res.stdout)
    assert doc["warnings"] == [lines[0].removeprefix("warning: ")]
    table = runner.invoke(app, ["compute", str(b), str(m), "-m", "historical-var"])
    assert table.exit_code == 0 and table.stderr.startswith("warning: historical-var: ")
    stress = runner.invoke(app, ["stress", str(b), str(m), "-s", "covid-2020-03-12",
                                 "-f", "json"])
    assert stress.exit_code == 0, stress.output
    assert stress.stderr.startswith("warning: historical-var: ")
    assert len(json.loads(stress.stdout)["warnings"]) == 1


def test_no_warning_for_rule_based_models(write_json, book_doc, market_doc):
    res = runner.invoke(app, ["compute", str(write_json("b.json", book_doc)),
                              str(write_json("m.json", market_doc)), "-m", "binance-usdm",
                              "-f", "json"])
    assert res.exit_code == 0, res.output
    assert "warning" not in res.stderr
    assert json.loads(res.stdout)["warnings"] == []


def test_unrated_account_pays_no_credit_add_on_unless_configured(write_json, book_doc,
                                                                   market_doc):
    b = write_json("b.json", _unrated(book_doc))
    m = write_json("m.json", market_doc)
    base = ["compute", str(b), str(m), "-m", "historical-var", "-f", "json"]
    off = json.loads(runner.invoke(app, base).stdout)["accounts"][0]["components"]
    assert off["credit"] == 0.0
    on = json.loads(runner.invoke(app, [*base, "-p", "credit_unrated=0.25"]).stdout)
    comp = on["accounts"][0]["components"]
    assert comp["credit"] > 0
    assert comp["credit"] == pytest.approx((comp["market_risk"] + comp["liquidity"]) * 0.25,
                                           rel=1e-12)


def test_models_documents_credit_unrated():
    res = runner.invoke(app, ["models", "-f", "json"])
    assert res.exit_code == 0
    for m in json.loads(res.stdout)["models"]:
        if m["name"] in ("historical-var", "filtered-es", "monte-carlo-es"):
            p = {x["name"]: x for x in m["parameters"]}
            assert p["credit_unrated"]["default"] == 0.0
            assert "without a credit_rating" in p["credit_unrated"]["description"]
            assert "unrated" not in p["credit_table"]["default"]
