"""Issue 8's history examples: cells and dates that used to be read as something else are
refused with the file, line and column; the command line turns them into one ``error:`` line."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from design_examples import DESIGN_BOOK, DESIGN_MARKET
from margin_engine.cli.main import app
from margin_engine.io.history import load_history

ERROR_LINE = re.compile(r"^error: \S.*: .+$")


def _csv(tmp_path: Path, text: str | bytes, name: str = "h.csv") -> Path:
    p = tmp_path / name
    if isinstance(text, bytes):
        p.write_bytes(text)
    else:
        p.write_text(text, encoding="utf-8")
    return p


@pytest.mark.parametrize(("text", "must"), [
    ("date,BTC\n2025-01-01,1_000\n2025-01-02,1000\n",
     "line 2, column 'BTC': not a number: '1_000'"),
    ("date,BTC\n2025-01-01,１０００\n2025-01-02,1000\n", "not a number: '１０００'"),
    ("date,BTC\n2025-01-01,\u0661\u0660\n", "not a number"),
    ("timestamp,BTC\n20250907,1000\n20250908,1001\n",
     "unix time '20250907' is 1970-08-23, outside 2009-01-01..2100-01-01 (a compact date?"),
    ("date,BTC\n0001-01-01,1000\n", "outside 2009-01-01..2100-01-01"),
    ("date,BTC\n2025-01-01,1e-300\n", "price must be in (1e-08, 1e+12]"),
    ("date,BTC,ETH\n2025-01-01,1000,\n2025-01-02,1001,\n", "column 'ETH' has no values"),
    (b"date,BTC\n2025-01-01,\xff1000\n", "not valid UTF-8"),
    ("date,BTC\n2025-01-01,1000\n".encode("utf-16"), "not valid UTF-8"),
    (b"date,BTC\n2025-01-01,10\x0000\n", "not"),
])
def test_bad_history_cells_are_refused(tmp_path: Path, text: str | bytes, must: str) -> None:
    with pytest.raises(ValueError, match=re.escape(must)):
        load_history(_csv(tmp_path, text), frequency="1d")


def test_plain_numbers_and_dates_still_read(tmp_path: Path) -> None:
    h = load_history(_csv(tmp_path, "date,BTC\n2025-01-01,1000.5\n2025-01-02,1.5e3\n"))
    assert h.closes[:, 0].tolist() == [1000.5, 1500.0]
    h = load_history(_csv(tmp_path, "timestamp,BTC\n1735689600,1\n1735776000000,2\n", "u.csv"))
    assert [str(d) for d in h.dates.astype("datetime64[D]")] == ["2025-01-01", "2025-01-02"]


def _risk_files(tmp_path: Path, history: str) -> list[str]:
    book = {"accounts": [{**DESIGN_BOOK["accounts"][0]}]}
    book["accounts"][0].pop("credit_rating")
    (tmp_path / "b.json").write_text(json.dumps(book))
    (tmp_path / "m.json").write_text(json.dumps(DESIGN_MARKET))
    (tmp_path / "h.csv").write_text(history)
    return [str(tmp_path / n) for n in ("b.json", "m.json", "h.csv")]


@pytest.mark.parametrize("model", ["filtered-es", "historical-var"])
def test_an_empty_history_column_is_an_error_not_an_index_error(tmp_path: Path,
                                                                model: str) -> None:
    rows = ["date,BTC,ETH"] + [f"2021-06-{d:02d},{30000 + d}," for d in range(1, 31)]
    b, m, h = _risk_files(tmp_path, "\n".join(rows) + "\n")
    res = CliRunner().invoke(app, ["compute", b, m, "-m", model, "--history", h])
    assert res.exit_code == 2 and res.stdout == "", res.exception
    (line,) = res.stderr.splitlines()
    assert ERROR_LINE.match(line) and "column 'ETH' has no values" in line


def test_a_constant_price_history_is_an_error_for_filtered_es(tmp_path: Path) -> None:
    # daily closes up to the day before the DESIGN market's date (2026-02-04)
    rows = ["date,BTC,ETH"] + [f"{d},30000,2000" for d in _dates("2021-06-01", "2026-02-03")]
    b, m, h = _risk_files(tmp_path, "\n".join(rows) + "\n")
    res = CliRunner().invoke(app, ["compute", b, m, "-m", "filtered-es", "--history", h])
    assert res.exit_code == 2 and res.stdout == "", res.exception
    (line,) = res.stderr.splitlines()
    assert line.startswith("error: --history: filtered-es cannot build scenarios")
    assert "zero variance (a constant price)" in line


def _dates(first: str, last: str) -> list[str]:
    return [str(d) for d in np.arange(np.datetime64(first, "D"),
                                      np.datetime64(last, "D") + np.timedelta64(1, "D"))]
