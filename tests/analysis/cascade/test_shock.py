"""The shock grammar (``--shock``) and recorded paths: derived by hand in comments."""

from __future__ import annotations

import csv
import gzip
import math
from pathlib import Path

import numpy as np
import pytest

from margin_engine.analysis.cascade.shock import parse_shock
from margin_engine.errors import InputError
from margin_engine.io.price_path import load_path, parse_start

REAL = Path(__file__).resolve().parents[4] / "shared" / "data" / "real"


def test_single_jump():
    p = parse_shock("BTC:-10%")
    assert p.coins == ("BTC",) and p.steps == 1
    assert p.relative[:, 0].tolist() == pytest.approx([1.0, 0.9])  # derived: 1 − 10 %


def test_spread_and_start_compound():
    # BTC falls 19 % geometrically over 2 steps from step 2: 0.9 per step (0.9² = 0.81);
    # ETH +5 % at step 1 and −10 % at step 3: 1.05 then 1.05·0.9 = 0.945
    p = parse_shock("BTC:-19%~2@2, eth:+5%, ETH:-10%@3")
    assert p.coins == ("BTC", "ETH") and p.steps == 3
    assert p.relative[:, 0] == pytest.approx([1.0, 1.0, 0.9, 0.81])
    assert p.relative[:, 1] == pytest.approx([1.0, 1.05, 1.05, 0.945])


@pytest.mark.parametrize("spec, path", [
    ("", "--shock"), ("BTC-10%", "--shock[0]"), ("BTC:-100%", "--shock[0]"),
    ("BTC:-10%,ETH:x%", "--shock[1]"), ("BTC:-5%~0", "--shock[0]"), ("BTC:nan%", "--shock[0]"),
])
def test_bad_specs_name_the_term(spec, path):
    with pytest.raises(InputError) as err:
        parse_shock(spec)
    assert err.value.path == path


@pytest.mark.realdata
def test_real_hourly_path_window():
    f = REAL / "binance_usdm_perp_1h_BTCUSDT_2025-09-13_2026-03-19.csv.gz"
    p = load_path([str(f)], parse_start("2025-10-10T00:00"), 24)
    assert p.coins == ("BTC",) and p.steps == 24 and p.step_seconds == 3600.0
    # published (the file itself): the relative path is close/close[0] of the same rows
    with gzip.open(f, "rt") as fh:
        rows = list(csv.DictReader(fh))
    t0 = 1760054400000  # 2025-10-10T00:00Z in ms
    k = next(i for i, r in enumerate(rows) if int(r["timestamp"]) == t0)
    closes = np.array([float(r["close"]) for r in rows[k:k + 25]])
    assert p.relative[:, 0] == pytest.approx(closes / closes[0])
    assert math.isclose(p.relative[:, 0].min(), (closes / closes[0]).min())


def test_path_errors(tmp_path):
    f = tmp_path / "x_BTCUSDT_1h.csv"
    f.write_text("timestamp,close\n0,1\n3600000,2\n")
    with pytest.raises(InputError, match="window"):
        load_path([str(f)], None, 5)
    g = tmp_path / "prices.csv"
    g.write_text("timestamp,close\n0,1\n3600000,-2\n")
    with pytest.raises(InputError) as err:
        load_path([str(g)])
    assert err.value.path == "--path"  # no coin in the name
    with pytest.raises(InputError, match="> 0"):
        load_path([f"BTC={g}"])
