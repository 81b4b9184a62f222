"""Mutated inputs for the command line and the one contract every run must keep.

The contract (issue 8): a run of ``compute``, ``stress`` or ``backtest`` either exits 0 with
finite numbers (and valid JSON when asked for JSON), or exits 2 with exactly one stderr line
``error: <path>: <reason>`` and nothing on stdout. Never another exit code, never a traceback.
"""

from __future__ import annotations

import copy
import json
import math
import os
import re
import traceback
from pathlib import Path
from typing import Any

from hypothesis import strategies as st
from typer.testing import CliRunner

from design_examples import DESIGN_MARKET
from margin_engine.cli.main import app
from margin_engine.demo.synthetic import generate_history, history_csv
from margin_engine.models.core.registry import model_class, model_names

ERROR_LINE = re.compile(r"^error: \S.*: .+$")
NON_FINITE_TEXT = re.compile(r"(?<![A-Za-z])(inf|nan|NaN|Infinity)(?![A-Za-z])|∞")
runner = CliRunner()

MARKET: dict[str, Any] = copy.deepcopy(DESIGN_MARKET)
MARKET["instruments"] += [
    {"symbol": "ETH-PERPETUAL", "kind": "perpetual", "underlying": "ETH", "settle": "ETH",
     "inverse": True, "contract_size": 1, "mark_price": 2101.0},
    {"symbol": "ETHUSDT", "kind": "perpetual", "underlying": "ETH", "settle": "USDT",
     "mark_price": 2100.5},
    {"symbol": "BTC-27MAR26-60000-P", "settle": "BTC", "inverse": True,
     "underlying_price": 73500.0, "mark_price": 0.01}]
MARKET["vol_surface"] = {"BTC": [
    {"expiry": "2026-03-27T08:00:00Z", "strikes": [50000, 70000, 90000], "vols": [0.7, 0.55, 0.6]},
    {"expiry": "2026-06-26T08:00:00Z", "strikes": [50000, 90000], "vols": [0.65, 0.6]}]}
SYMBOLS = [i["symbol"] for i in MARKET["instruments"]]

# One account every model margins (linear perpetuals, cross), one of coin-settled
# derivatives (the Deribit, OKX, SPAN and risk-based models), and both together.
PERPS: dict[str, Any] = {
    "id": "perps", "margin_mode": "cross", "collateral": {"USDT": 250000, "BTC": 1.2},
    "positions": [{"symbol": "BTCUSDT", "size": 2.5, "entry_price": 70000},
                  {"symbol": "ETHUSDT", "size": -10}],
    "leverage": {"BTCUSDT": 20}}
COIN: dict[str, Any] = {
    "id": "coin", "margin_mode": "cross", "collateral": {"BTC": 10},
    "positions": [{"symbol": "BTC-PERPETUAL", "size": 1000},
                  {"symbol": "BTC-27MAR26", "size": -500},
                  {"symbol": "BTC-27MAR26-80000-C", "size": -5},
                  {"symbol": "BTC-27MAR26-60000-P", "size": 3}]}
BOOKS: list[dict[str, Any]] = [{"accounts": [PERPS]}, {"accounts": [COIN]},
                               {"accounts": [PERPS, {**COIN, "margin_mode": "portfolio"}]}]
BOOK = BOOKS[0]

# Daily closes up to the day before the market snapshot (2026-02-04).
HISTORY_DAYS = 400
HISTORY = history_csv(generate_history(seed=5, start="2025-01-01", days=HISTORY_DAYS))

NASTY: list[Any] = [
    0, -1, 0.5, 250, 1e-300, 5e-324, 1e13, 1e308, -1e308, 10**30, float("nan"), float("inf"),
    float("-inf"), True, False, None, "", "2.5", "x", ":x:", "[red]x[/]", "a\nb", "\x00",
    "\ud800", "x" * 300, [], {}, [[[]]], [1, 2], {"a": 1}, "0001-01-01T00:00:00Z",
    "2026-03-27T08:00:00", "20250907", 20250907, "2101-01-01T00:00:00Z", "2026-02-04",
    "BTC", "USDT", "BTCUSDT", "cross", "isolated", "option", "call"]
NASTY_CELLS = ["", "nan", "inf", "NULL", "1_000", "１０００", "-5", "0", "1e-300", "1e300",
               "20250907", "0001-01-01", "2025-13-45", "x", "1,000", " 5 ", "\x00", "1.5e3",
               "2009-01-01", "2100-06-01", "2026-02-03", "1735689600", "1735689600000"]
RAW_EDITS = ["truncate", "bad-utf8", "utf16", "bom", "duplicate-key", "deep", "nul"]


def _paths(doc: Any, at: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [at]
    if isinstance(doc, dict):
        for k, v in doc.items():
            out += _paths(v, (*at, k))
    elif isinstance(doc, list):
        for i, v in enumerate(doc):
            out += _paths(v, (*at, i))
    return out


def _get(doc: Any, path: tuple[Any, ...]) -> Any:
    for p in path:
        doc = doc[p]
    return doc


SCALES = [0.0, -1.0, 1e-300, 1e-20, 1e-12, 1e-6, 0.01, 0.5, 2.0, 100.0, 1e6, 1e11, 3e11]


@st.composite
def mutated_json(draw: st.DrawFn, bases: list[dict[str, Any]]) -> bytes:
    """One of ``bases`` with up to three mutations (a value replaced by a nasty one or scaled,
    a key deleted or added, a list entry repeated), sometimes a byte-level one."""
    doc = copy.deepcopy(draw(st.sampled_from(bases)))
    for _ in range(draw(st.sampled_from([0, 1, 1, 1, 2, 3]))):
        paths = _paths(doc)
        path = draw(st.sampled_from(paths))
        op = draw(st.sampled_from(["set", "set", "scale", "scale", "delete", "add",
                                   "duplicate"]))
        if not path:
            continue
        parent, key = _get(doc, path[:-1]), path[-1]
        if op == "scale":
            numbers = [p for p in paths if isinstance(_get(doc, p), int | float)
                       and not isinstance(_get(doc, p), bool)]
            if numbers:
                at = draw(st.sampled_from(numbers))
                holder = _get(doc, at[:-1])
                holder[at[-1]] = holder[at[-1]] * draw(st.sampled_from(SCALES))
        elif op == "set":
            parent[key] = draw(st.sampled_from(NASTY))
        elif op == "delete":
            del parent[key]
        elif op == "add" and isinstance(parent, dict):
            parent[draw(st.sampled_from(["nope", "BTC", "XYZ", "", "size"]))] = draw(
                st.sampled_from(NASTY))
        elif op == "duplicate" and isinstance(parent, list):
            parent.append(copy.deepcopy(parent[key]))
    text = json.dumps(doc)
    raw = text.encode("utf-8", "surrogatepass")
    if draw(st.integers(0, 9)) == 0:
        edit = draw(st.sampled_from(RAW_EDITS))
        if edit == "truncate":
            raw = raw[: draw(st.integers(0, max(len(raw) - 1, 0)))]
        elif edit == "bad-utf8":
            k = draw(st.integers(0, len(raw)))
            raw = raw[:k] + b"\xff\xfe" + raw[k:]
        elif edit == "utf16":
            raw = text.encode("utf-16", "surrogatepass")
        elif edit == "bom":
            raw = b"\xef\xbb\xbf" + raw
        elif edit == "duplicate-key":
            raw = raw.replace(b"{", b'{"id": "d", ', 1) if b'"id"' in raw else raw + raw
        elif edit == "deep":
            raw = b"[" * 1200 + b"]" * 1200
        elif edit == "nul":
            raw = raw.replace(b'"', b'"\x00', 1)
    return raw


@st.composite
def mutated_history(draw: st.DrawFn) -> bytes:
    """The daily history CSV with a few cells, columns or rows changed."""
    rows = [r.split(",") for r in HISTORY.strip().split("\n")]
    for _ in range(draw(st.sampled_from([0, 0, 1, 1, 2, 3]))):
        op = draw(st.sampled_from(["cell", "cell", "cell", "column", "blank", "constant",
                                   "row", "swap", "header"]))
        i = draw(st.integers(1, len(rows) - 1))
        j = draw(st.integers(0, len(rows[0]) - 1))
        if op == "cell":
            rows[i][j] = draw(st.sampled_from(NASTY_CELLS))
        elif op == "column" and len(rows[0]) > 1:
            for r in rows:
                del r[j]
        elif op == "blank" and j > 0:
            for r in rows[1:]:
                r[j] = ""
        elif op == "constant" and j > 0:
            for r in rows[1:]:
                r[j] = "100"
        elif op == "row":
            rows.insert(i, list(rows[i]))
        elif op == "swap":
            rows[i], rows[1] = rows[1], rows[i]
        elif op == "header":
            rows[0][j] = draw(st.sampled_from(["", "btc", "ETH", "SOL", "close", "unix", "x"]))
    text = "\n".join(",".join(r) for r in rows) + "\n"
    raw = text.encode("utf-8")
    if draw(st.integers(0, 14)) == 0:
        raw = draw(st.sampled_from([raw[: len(raw) // 2], b"\xff" + raw,
                                    text.encode("utf-16"), b""]))
    return raw


def scalar_params(name: str) -> dict[str, Any]:
    """A model's parameters that take one scalar (the ones a user types on the command line),
    with their defaults."""
    out = {}
    for key, f in model_class(name).Params.model_fields.items():
        if key == "history":
            continue
        default = f.get_default(call_default_factory=True)
        if isinstance(default, bool | int | float | str) or default is None:
            out[key] = default
    return out


MODELS = model_names()
RISK_BASED = {m for m in MODELS if "history" in model_class(m).Params.model_fields}


@st.composite
def params(draw: st.DrawFn, model: str) -> list[str]:
    out: list[str] = []
    defaults = scalar_params(model)
    keys = [*defaults, "nope"]
    for key in draw(st.sampled_from([[], [], *([k] for k in keys), keys[:2]])):
        default = defaults.get(key)
        if isinstance(default, int | float) and not isinstance(default, bool) and draw(
                st.booleans()):
            value: Any = type(default)(default * draw(st.sampled_from(SCALES)))
        else:
            value = draw(st.sampled_from(NASTY))
        if isinstance(value, float) and not math.isfinite(value):
            out += ["-p", f"{key}={value}"]
        else:
            out += ["-p", f"{key}={json.dumps(value)}"]
    return out


def _reject_constant(name: str) -> float:
    raise AssertionError(f"non-finite JSON constant {name} in the output")


def _finite_float(text: str) -> float:
    v = float(text)
    assert math.isfinite(v), f"number {text} in the output is not finite as a double"
    return v


def check_contract(args: list[str], *, json_output: bool) -> int:
    """Run the command line in-process and assert the contract; the exit code."""
    res = runner.invoke(app, args)
    tb = ""
    if res.exc_info is not None and not isinstance(res.exc_info[1], SystemExit):
        tb = "".join(traceback.format_exception(res.exc_info[1]))
    assert res.exit_code in (0, 2), f"exit {res.exit_code} for {args}\n{res.stderr}\n{tb}"
    assert "Traceback" not in res.stderr, res.stderr
    if res.exit_code == 0:
        if json_output:
            json.loads(res.stdout, parse_constant=_reject_constant, parse_float=_finite_float)
        else:
            assert not NON_FINITE_TEXT.search(res.stdout), res.stdout
    else:
        lines = res.stderr.splitlines()
        assert len(lines) == 1 and ERROR_LINE.match(lines[0]), (args, res.stderr)
        assert res.stdout == "", (args, res.stdout)
    log = os.environ.get("MARGIN_ENGINE_FUZZ_LOG")
    if log:  # what the runs did, for tuning the strategies
        with open(log, "a", encoding="utf-8") as fh:
            fh.write(f"{args[0]} {res.exit_code} {res.stderr.splitlines()[-1:] or ''}\n")
    return res.exit_code


def write(path: Path, raw: bytes) -> str:
    path.write_bytes(raw)
    return str(path)
