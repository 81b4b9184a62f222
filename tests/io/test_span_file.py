"""margin_engine.io.span_file: the expanded unpacked (pa2) SPAN risk-parameter reader.

The file read is docs/examples/cme-span-crypto-2026-02-04.pa2, constructed to CME's published
column layouts (provenance: derived; tests/golden/span/write_cme_crypto_pa2.py wrote it). Every
expected value below is a literal chosen when the file was written, read here column by column
— not taken from the reader. Malformed records must give one ``InputError`` naming the line.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from margin_engine.errors import InputError
from margin_engine.io.span_file import (
    RECORD_LENGTH,
    SpanFileError,
    load_span_options,
    parse_span_text,
    read_span_file,
)

ROOT = Path(__file__).resolve().parents[2]
PA2 = ROOT / "docs" / "examples" / "cme-span-crypto-2026-02-04.pa2"
LINES = PA2.read_text().splitlines()


def test_records_are_132_byte_positional_records():
    """Every line starts with a record id of the format and fits in 132 bytes."""
    assert all(len(ln) <= RECORD_LENGTH for ln in LINES)
    assert [ln[:2] for ln in LINES[:3]] == ["0 ", "T ", "1 "]
    assert LINES[0][35:37] == "U2"                      # columns 36-37: expanded unpacked


def test_header_products_tiers_and_ratios():
    f = read_span_file(PA2)
    assert (f.exchange_complex, f.business_date, f.settlement) == ("CME", date(2026, 2, 4), "S")
    assert f.exchanges == ["CME"] and f.groups == {"CRY": ["BTC", "ETH"]}
    assert f.skipped == {"T": 1}
    btc = f.combined_commodities["BTC"]
    assert [(p.code, p.contract_type, p.decimal_locator) for p in btc.products] == [
        ("BTC", "FUT", -1), ("MBT", "FUT", 0), ("MBT", "OOF", 0)]
    assert btc.tiers == [(1, 202602, 202602), (2, 202603, 202612)]
    assert btc.initial_ratios == (1.0, 1.0, 1.1)


def test_spread_delivery_and_minimum_charges():
    btc = read_span_file(PA2).combined_commodities["BTC"]
    assert btc.intra_spreads == [{"priority": 1, "rate": 1500.0, "legs": [
        {"tier": 1, "ratio": 1, "side": "A"}, {"tier": 2, "ratio": 1, "side": "B"}]}]
    assert btc.delivery_months == [(202602, 500.0, 1000.0)]
    assert btc.short_option_minimum == 785.0


def test_intercommodity_spread_and_array_parameters():
    f = read_span_file(PA2)
    (s,) = f.inter_spreads
    assert (s.priority, s.credit_rate, s.method, s.flat) == (1, 0.30, "01", False)
    assert s.legs == (("CME", "BTC", 1.0, "A"), ("CME", "ETH", 3.0, "B"))
    b = {(x.product, x.contract_type, x.futures_month): x for x in f.array_parameters}
    fut = b[("BTC", "FUT", 202603)]
    assert (fut.price_scan_range, fut.extreme_move, fut.extreme_cover) == (31390.0, 2.0, 0.35)
    assert fut.lookahead == 0.00274 and fut.expiry == date(2026, 3, 27)
    opt = b[("MBT", "OOF", 202603)]
    assert (opt.base_volatility, opt.volatility_scan_range) == (0.55, 0.12)
    assert f.price_conversions[("ETH", "FUT")].contract_value_factor == 50.0
    assert f.price_conversions[("MBT", "OOF")].contract_value_factor == 0.1


def test_risk_arrays_with_decimal_locator_and_composite_delta():
    """BTC futures are stored in tens (locator 1, sign '-'): 05232 → 52,320; the 82 record
    carries scenarios 10-16 and the composite delta 1.0000."""
    f = read_span_file(PA2)
    ra = {(r.product, r.contract_type): r for r in f.risk_arrays}
    btc = ra[("BTC", "FUT")]
    assert btc.values[:5] == [0, 0, -5232, -5232, 5232]
    assert btc.values[10:] == [-15695, -15695, 15695, 15695, -10986, 10986]
    assert btc.composite_delta == 1.0
    call = ra[("MBT", "OOF")]
    assert (call.right, call.strike_raw, call.option_month) == ("C", 80000, 202603)
    assert call.values == [-120, 127, -667, -386, 199, 323, -1410, -1193, 326, 354, -2291,
                           -2160, 354, 356, -1846, 125]
    assert call.composite_delta == 0.3766 and call.implied_volatility == 0.55


def test_span_options_per_underlying_unit():
    """Per-contract USD amounts ÷ the futures multiplier (5 BTC): intra 1,500 → 300, delivery
    500/1,000 → 100/200, SOM 785 → 157; inter ratios 1 × 5 BTC : 3 × 50 ETH."""
    o = load_span_options(PA2)
    btc = o["combined_commodities"]["BTC"]
    assert btc["price_scan_points"] == 31390.0 and btc["vol_scan_range"] == 0.12
    assert (btc["intra_spread_points"], btc["spot_charge_spread_points"],
            btc["spot_charge_outright_points"], btc["short_option_minimum_points"]) == (
        300.0, 100.0, 200.0, 157.0)
    assert btc["delivery_months"] == [202602]
    assert o["inter_spreads"] == [{"legs": ["BTC", "ETH"], "ratios": [5.0, 150.0],
                                   "rate": 0.3, "ratio_unit": "underlying"}]
    assert o["initial_factor"] == 1.1
    assert o["risk_arrays"]["BTC-202603"]["values"][12] == 156950.0
    assert o["risk_arrays"]["MBT-202603-C-80000"]["composite_delta"] == pytest.approx(0.03766)
    assert o["parameter_source"] == "cme-span-crypto-2026-02-04.pa2 (CME 2026-02-04 settlement)"


def _replace(line_no: int, col: int, text: str) -> str:
    lines = list(LINES)
    ln = lines[line_no].ljust(RECORD_LENGTH)
    lines[line_no] = ln[:col - 1] + text + ln[col - 1 + len(text):]
    return "\n".join(lines)


@pytest.mark.parametrize("text, line, message", [
    (_replace(3, 1, "Q "), 4, "record type 'Q '"),
    (_replace(4, 69, "1x00"), 5, "initial to maintenance ratio"),
    ("\n".join(LINES[1:]), 1, "no type 0"),
    ("\n".join(ln for ln in LINES if not ln.startswith("82CMEETH")), 30, "82 record is missing"),
    ("\n".join(ln for ln in LINES if not ln.startswith("81CMEETH")), 30, "must follow the 81"),
    (_replace(2, 40, "X" * 100), 3, "at most 132"),
    (_replace(11, 34, "C"), 12, "is not A or B"),
])
def test_malformed_records_name_the_line(text, line, message):
    with pytest.raises(SpanFileError, match=message) as err:
        parse_span_text(text)
    assert err.value.line == line


def test_read_errors_are_one_line_input_errors(tmp_path):
    with pytest.raises(InputError, match="cannot read") as err:
        read_span_file(tmp_path / "missing.pa2")
    assert err.value.path == "--param risk_parameters"
    bad = tmp_path / "bad.pa2"
    bad.write_bytes(PA2.read_bytes().replace(b"CRY", b"\xc3\xa9Y", 1))
    with pytest.raises(InputError, match="not ASCII"):
        read_span_file(bad)
    bad.write_text(_replace(13, 53, "3x390"))
    with pytest.raises(InputError, match=r"bad.pa2: line 14: futures price scan range"):
        read_span_file(bad)
