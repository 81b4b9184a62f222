"""Reading a CME SPAN risk-parameter file in the positional "expanded unpacked" format (pa2).

Since CME's SPAN advisory 04-07 (2004-04-01) CME publishes its daily risk-parameter files only
in the expanded unpacked positional format (file format code ``U2`` on the type "0" record, files
named ``*.pa2``) and in XML (``*.spn``); this module reads the positional one: records of up to
132 bytes whose first two bytes are the record type. The column positions below are those of
CME's "Risk Parameter File Layouts for the Positional Formats" (pubspan pages "Type
2/3/4/5/6/8/B - Expanded"); for types "0", "1", "C", "P" and the second risk-array record "82",
whose CME pages were not read in full, they follow two open-source readers of CME files
(Shaftesbury.Span, F#; a Python pa2 reader), as noted at each record. Positions are 1-based
and inclusive, as in CME's tables.

What a crypto futures/options set needs is read: the exchange complex header ("0"), exchanges
("1"), combined commodities and their products ("2"), intracommodity spread tiers and the
initial-to-maintenance ratios ("3"), tier-to-tier spread charges ("C"), delivery (spot) charges
and the short option minimum ("4"), combined-commodity groups ("5"), intercommodity spreads
("6"), risk arrays with composite deltas ("81"/"82"), array calculation parameters (price and
volatility scan ranges, extreme move: "B") and price conversion parameters (multipliers: "P").
The other record types of the format ("9", "E", "R", "S", "T", "V", "X", "Y", "Z") are
recognised and counted, not used. Anything else is an error naming the line.

:func:`span_options` turns a parsed file into the ``span`` model's parameters; the ``span``
model itself never reads files (``--param risk_parameters=FILE`` is expanded by
:mod:`margin_engine.io.model_options`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

from margin_engine.errors import InputError

#: Record types read, and the ones only recognised.
READ = ("0 ", "1 ", "2 ", "3 ", "4 ", "5 ", "6 ", "81", "82", "B ", "C ", "P ")
RECOGNISED = ("9", "E ", "R ", "S ", "T ", "V ", "X ", "Y ", "Z ")
RECORD_LENGTH = 132
MAX_BYTES = 64 * 1024 * 1024     # a CME file for every product is ~30 MB; crypto ones are small


class SpanFileError(ValueError):
    """A malformed record: the 1-based line and what is wrong."""

    def __init__(self, line: int, reason: str) -> None:
        self.line = line
        super().__init__(f"line {line}: {reason}")


# ---------------------------------------------------------------------------------------------
# parsed records


@dataclass(frozen=True)
class Product:
    """One product (commodity code and contract type) of a combined commodity (type "2")."""

    code: str
    contract_type: str          # FUT, PHY, CMB, OOF, OOP, OOC
    decimal_locator: int        # risk array values: × 10^(−locator)


@dataclass
class CombinedCommodityRecord:
    """Everything the file says about one combined commodity (types "2", "3", "C", "4")."""

    code: str
    exchange: str
    currency: str
    risk_exponent: int
    products: list[Product]
    intra_method: str = ""
    tiers: list[tuple[int, int, int]] = field(default_factory=list)   # (tier, start, end)
    initial_ratios: tuple[float, float, float] = (1.0, 1.0, 1.0)       # member, NHRP, HRP
    intra_spreads: list[dict[str, Any]] = field(default_factory=list)  # type C
    delivery_method: str = ""
    delivery_months: list[tuple[int, float, float]] = field(default_factory=list)
    short_option_minimum: float = 0.0


@dataclass(frozen=True)
class InterSpreadRecord:
    """One intercommodity spread (type "6")."""

    group: str
    priority: int
    credit_rate: float          # fraction (the file gives percent)
    legs: tuple[tuple[str, str, float, str], ...]   # (exchange, CC, delta/spread ratio, side)
    method: str
    flat: bool


@dataclass(frozen=True)
class ArrayParameters:
    """Array calculation parameters of one futures contract or option series (type "B")."""

    exchange: str
    product: str
    contract_type: str
    futures_month: int
    option_month: int
    base_volatility: float
    volatility_scan_range: float
    price_scan_range: float     # futures price points (settlement-price units)
    extreme_move: float
    extreme_cover: float
    interest_rate: float
    time_to_expiry: float
    lookahead: float            # years
    expiry: date | None
    underlying: str


@dataclass(frozen=True)
class PriceConversion:
    """Price conversion parameters of one product (type "P")."""

    exchange: str
    product: str
    contract_type: str
    settlement_decimals: int
    strike_decimals: int
    contract_value_factor: float    # multiplier: underlying units per contract
    currency: str


@dataclass
class RiskArrayRecord:
    """One contract's risk array (types "81" and "82")."""

    exchange: str
    product: str
    underlying: str
    contract_type: str
    right: str
    futures_month: int
    option_month: int
    strike_raw: int
    values: list[float]
    composite_delta: float = 0.0
    implied_volatility: float = 0.0
    line: int = 0               # of the 81 record


@dataclass
class SpanFile:
    """A parsed risk-parameter file."""

    exchange_complex: str = ""
    business_date: date | None = None
    settlement: str = ""
    file_format: str = ""
    exchanges: list[str] = field(default_factory=list)
    combined_commodities: dict[str, CombinedCommodityRecord] = field(default_factory=dict)
    groups: dict[str, list[str]] = field(default_factory=dict)
    inter_spreads: list[InterSpreadRecord] = field(default_factory=list)
    array_parameters: list[ArrayParameters] = field(default_factory=list)
    price_conversions: dict[tuple[str, str], PriceConversion] = field(default_factory=dict)
    risk_arrays: list[RiskArrayRecord] = field(default_factory=list)
    skipped: dict[str, int] = field(default_factory=dict)

    def product_cc(self, product: str, contract_type: str) -> str | None:
        """The combined commodity holding ``product`` of ``contract_type``."""
        for cc in self.combined_commodities.values():
            if any(p.code == product and p.contract_type == contract_type for p in cc.products):
                return cc.code
        return None


# ---------------------------------------------------------------------------------------------
# field readers (1-based inclusive positions, as CME's tables give them)


def _s(rec: str, a: int, b: int) -> str:
    return rec[a - 1:b].strip()


def _int(rec: str, a: int, b: int, line: int, what: str, blank: int | None = None) -> int:
    raw = rec[a - 1:b]
    if raw.strip() == "" and blank is not None:
        return blank
    if not (raw.isascii() and raw.isdigit()):
        raise SpanFileError(line, f"{what} (columns {a}-{b}): {raw!r} is not a number")
    return int(raw)


def _num(rec: str, a: int, b: int, decimals: int, line: int, what: str,
         blank: float | None = None) -> float:
    """An implied-decimal number ``9(n)V9(decimals)``."""
    raw = rec[a - 1:b]
    if raw.strip() == "" and blank is not None:
        return blank
    return _int(rec, a, b, line, what) / 10 ** decimals


def _sign(rec: str, col: int) -> float:
    return -1.0 if rec[col - 1:col] == "-" else 1.0


def _month(rec: str, a: int, line: int, what: str) -> int:
    """A CCYYMM field (blank: 0)."""
    m = _int(rec, a, a + 5, line, what, blank=0)
    if m and not (1 <= m % 100 <= 12):
        raise SpanFileError(line, f"{what} (columns {a}-{a + 5}): {m} is not a CCYYMM month")
    return m


def _date(rec: str, a: int, line: int, what: str) -> date | None:
    raw = rec[a - 1:a + 7]
    if raw.strip() in ("", "00000000"):
        return None
    try:
        return date(int(raw[:4]), int(raw[4:6]), int(raw[6:8]))
    except ValueError:
        raise SpanFileError(line, f"{what} (columns {a}-{a + 7}): {raw!r} is not a "
                                  "CCYYMMDD date") from None


# ---------------------------------------------------------------------------------------------
# records


def _header(f: SpanFile, r: str, n: int) -> None:
    """Type "0" (Exchange Complex Header): 3-8 complex, 9-16 business date, 17 S/I, 36-37 format
    (positions after CME's expanded layout as reproduced by the readers named above)."""
    f.exchange_complex = _s(r, 3, 8)
    f.business_date = _date(r, 9, n, "business date")
    f.settlement = _s(r, 17, 17)
    f.file_format = _s(r, 36, 37)
    if f.file_format not in ("U2", ""):
        raise SpanFileError(n, f"file format {f.file_format!r}: only the expanded unpacked "
                               "format (U2) is read")


def _combined_commodity(f: SpanFile, r: str, n: int) -> None:
    """Type "2": 3-5 exchange, 7-12 CC, 13 risk exponent, 14-16 currency; products from 23 in
    16-byte groups: 10 code, 3 contract type, 1 decimal locator, 1 locator sign, 1 filler."""
    code = _s(r, 7, 12)
    if not code:
        raise SpanFileError(n, "combined commodity code (columns 7-12) is blank")
    products = []
    for start in range(23, RECORD_LENGTH - 14, 16):
        pc = _s(r, start, start + 9)
        if not pc:
            continue
        ptype = _s(r, start + 10, start + 12)
        if ptype not in ("FUT", "PHY", "CMB", "OOF", "OOP", "OOC"):
            raise SpanFileError(n, f"contract type of product {pc!r} (columns {start + 10}-"
                                   f"{start + 12}): {ptype!r}")
        loc = _int(r, start + 13, start + 13, n, "risk array decimal locator", blank=0)
        products.append(Product(pc, ptype, -loc if r[start + 13:start + 14] == "-" else loc))
    cc = f.combined_commodities.get(code)
    if cc is None:
        f.combined_commodities[code] = CombinedCommodityRecord(
            code=code, exchange=_s(r, 3, 5), currency=_s(r, 14, 16) or "USD",
            risk_exponent=_int(r, 13, 13, n, "risk exponent", blank=0), products=products)
    else:                       # a continuation record adds products
        cc.products.extend(products)


def _cc_of(f: SpanFile, code: str, n: int, what: str) -> CombinedCommodityRecord:
    cc = f.combined_commodities.get(code)
    if cc is None:
        raise SpanFileError(n, f"{what} for combined commodity {code!r} before its type 2 record")
    return cc


def _intra_tiers(f: SpanFile, r: str, n: int) -> None:
    """Type "3": 3-8 CC, 9-10 method; tiers from 11 in 14-byte groups (2 tier number, 6 start,
    6 end month); 69-72, 73-76, 77-80 initial/maintenance ratios 9V9(3) (member, NHRP, HRP)."""
    cc = _cc_of(f, _s(r, 3, 8), n, "type 3 record")
    cc.intra_method = _s(r, 9, 10)
    for start in range(11, 67, 14):
        if not r[start - 1:start + 13].strip():
            continue
        tier = _int(r, start, start + 1, n, "tier number")
        cc.tiers.append((tier, _month(r, start + 2, n, "tier start month"),
                         _month(r, start + 8, n, "tier end month")))
    cc.initial_ratios = tuple(_num(r, a, a + 3, 3, n, "initial to maintenance ratio", 1.0)
                              for a in (69, 73, 77))  # type: ignore[assignment]


def _rate(cc: CombinedCommodityRecord, r: str, a: int, b: int, n: int, what: str) -> float:
    """A 9(7) charge rate in the performance-bond currency, scaled by 10^(−risk exponent)."""
    return _int(r, a, b, n, what, blank=0) / 10 ** cc.risk_exponent


def _tier_spread(f: SpanFile, r: str, n: int) -> None:
    """Type "C" (tier-to-tier intracommodity spread): 3-8 CC, 9-10 method, 11-12 priority,
    13-14 number of legs, 15-21 charge rate 9(7) per spread; legs from 22 in 7-byte groups (2 leg
    number, 2 tier, 2 delta/spread ratio, 1 side A/B) — the layout of the two readers."""
    cc = _cc_of(f, _s(r, 3, 8), n, "type C record")
    nlegs = _int(r, 13, 14, n, "number of legs")
    legs = []
    for k in range(nlegs):
        a = 22 + 7 * k
        side = _s(r, a + 6, a + 6)
        if side not in ("A", "B"):
            raise SpanFileError(n, f"leg {k + 1} side (column {a + 6}): {side!r} is not A or B")
        legs.append({"tier": _int(r, a + 2, a + 3, n, "leg tier"),
                     "ratio": _int(r, a + 4, a + 5, n, "leg ratio"), "side": side})
    cc.intra_spreads.append({"priority": _int(r, 11, 12, n, "spread priority"),
                             "rate": _rate(cc, r, 15, 21, n, "charge rate"), "legs": legs})


def _delivery(f: SpanFile, r: str, n: int) -> None:
    """Type "4": 3-8 CC, 9-10 method; method "10": 11-12 number of months, then per month (22
    bytes from 13): 2 month number, 6 month, 7 rate per delta consumed by spreads, 7 rate per
    delta remaining outright; 63-69 short option minimum charge rate."""
    cc = _cc_of(f, _s(r, 3, 8), n, "type 4 record")
    cc.delivery_method = _s(r, 9, 10)
    if cc.delivery_method == "10":
        for k in range(_int(r, 11, 12, n, "number of delivery months", blank=0)):
            a = 13 + 22 * k
            if k >= 2:
                raise SpanFileError(n, "more than 2 delivery months on one type 4 record")
            cc.delivery_months.append((
                _month(r, a + 2, n, "delivery month"),
                _rate(cc, r, a + 8, a + 14, n, "delivery charge (spreads)"),
                _rate(cc, r, a + 15, a + 21, n, "delivery charge (outrights)")))
    cc.short_option_minimum = _rate(cc, r, 63, 69, n, "short option minimum charge rate")


def _group(f: SpanFile, r: str, n: int) -> None:
    """Type "5": 3-5 group code, CC codes from 13 in 6-byte groups (10 per record)."""
    codes = [_s(r, a, a + 5) for a in range(13, 73, 6)]
    f.groups.setdefault(_s(r, 3, 5), []).extend(c for c in codes if c)


def _inter(f: SpanFile, r: str, n: int) -> None:
    """Type "6": 3-5 group, 6-9 priority, 10-16 credit rate 9(3)V9(4) percent; legs from 17 in
    18-byte groups: 3 exchange, 1 required flag, 6 CC, 7 delta/spread ratio 9(3)V9(4), 1 side;
    89-90 method; 101 credit calculation ('F' flat)."""
    legs = []
    for a in range(17, 89, 18):
        cc = _s(r, a + 4, a + 9)
        if not cc:
            continue
        side = _s(r, a + 17, a + 17)
        if side not in ("A", "B"):
            raise SpanFileError(n, f"spread side (column {a + 17}): {side!r} is not A or B")
        legs.append((_s(r, a, a + 2), cc, _num(r, a + 10, a + 16, 4, n, "delta/spread ratio"),
                     side))
    f.inter_spreads.append(InterSpreadRecord(
        group=_s(r, 3, 5), priority=_int(r, 6, 9, n, "spread priority"),
        credit_rate=_num(r, 10, 16, 4, n, "spread credit rate") / 100.0, legs=tuple(legs),
        method=_s(r, 89, 90), flat=_s(r, 101, 101) == "F"))


def _array_parameters(f: SpanFile, r: str, n: int) -> None:
    """Type "B": 3-5 exchange, 6-15 product, 16-18 type, 19-24 futures month, 28-33 option month,
    37-44 base vol 9(2)V9(6), 45-52 VSR 9(2)V9(6), 53-57 futures PSR 9(5), 58-62 extreme move
    9(2)V9(3), 63-67 cover 9V9(4), 68-72 rate 9V9(4), 73-79 time to expiry 9V9(6), 80-85
    look-ahead V9(6), 92-99 expiry CCYYMMDD, 100-109 underlying."""
    f.array_parameters.append(ArrayParameters(
        exchange=_s(r, 3, 5), product=_s(r, 6, 15), contract_type=_s(r, 16, 18),
        futures_month=_month(r, 19, n, "futures month"),
        option_month=_month(r, 28, n, "option month"),
        base_volatility=_num(r, 37, 44, 6, n, "base volatility", 0.0),
        volatility_scan_range=_num(r, 45, 52, 6, n, "volatility scan range", 0.0),
        price_scan_range=float(_int(r, 53, 57, n, "futures price scan range")),
        extreme_move=_num(r, 58, 62, 3, n, "extreme move multiplier"),
        extreme_cover=_num(r, 63, 67, 4, n, "extreme move covered fraction"),
        interest_rate=_num(r, 68, 72, 4, n, "interest rate", 0.0),
        time_to_expiry=_num(r, 73, 79, 6, n, "time to expiration", 0.0),
        lookahead=_num(r, 80, 85, 6, n, "lookahead time", 0.0),
        expiry=_date(r, 92, n, "expiration date"), underlying=_s(r, 100, 109)))


def _price_conversion(f: SpanFile, r: str, n: int) -> None:
    """Type "P": 3-5 exchange, 6-15 product, 16-18 type, 34-36 settlement price decimal locator,
    37-39 strike decimal locator, 42-55 contract value factor 9(7)V9(7), 66-68 settlement
    currency (after the readers named above; CME's page not read in full)."""
    f.price_conversions[(_s(r, 6, 15), _s(r, 16, 18))] = PriceConversion(
        exchange=_s(r, 3, 5), product=_s(r, 6, 15), contract_type=_s(r, 16, 18),
        settlement_decimals=_int(r, 34, 36, n, "settlement price decimal locator", blank=0),
        strike_decimals=_int(r, 37, 39, n, "strike decimal locator", blank=0),
        contract_value_factor=_num(r, 42, 55, 7, n, "contract value factor"),
        currency=_s(r, 66, 68) or "USD")


def _array_values(r: str, first: int, count: int, n: int) -> list[float]:
    out = []
    for k in range(count):
        a = first + 6 * k
        s = r[a + 4:a + 5]
        if s not in ("+", "-"):
            raise SpanFileError(n, f"sign of array value (column {a + 5}): {s!r}")
        out.append(_sign(r, a + 5) * _int(r, a, a + 4, n, "array value"))
    return out


def _risk_array(f: SpanFile, r: str, n: int, second: bool) -> None:
    """Types "81"/"82": 3-5 exchange, 6-15 product, 16-25 underlying, 26-28 type, 29 right, 30-35
    futures month, 39-44 option month, 48-54 strike; "81": array values 1-9 from 55 (5 digits +
    sign each); "82": values 10-16 from 55, 97-101 composite delta 9V9(4) with its sign at 102,
    103-110 implied volatility 9(2)V9(6) (the "82" layout after the readers named above)."""
    key = (_s(r, 3, 5), _s(r, 6, 15), _s(r, 26, 28), _s(r, 29, 29),
           _month(r, 30, n, "futures month"), _month(r, 39, n, "option month"),
           _int(r, 48, 54, n, "strike", blank=0))
    if not second:
        f.risk_arrays.append(RiskArrayRecord(
            exchange=key[0], product=key[1], underlying=_s(r, 16, 25), contract_type=key[2],
            right=key[3], futures_month=key[4], option_month=key[5], strike_raw=key[6],
            values=_array_values(r, 55, 9, n), line=n))
        return
    last = f.risk_arrays[-1] if f.risk_arrays else None
    if last is None or len(last.values) != 9 or key != (
            last.exchange, last.product, last.contract_type, last.right, last.futures_month,
            last.option_month, last.strike_raw):
        raise SpanFileError(n, "an 82 record must follow the 81 record of the same contract")
    last.values.extend(_array_values(r, 55, 7, n))
    last.composite_delta = _sign(r, 102) * _num(r, 97, 101, 4, n, "composite delta")
    last.implied_volatility = _num(r, 103, 110, 6, n, "implied volatility", 0.0)


def parse_span_text(text: str) -> SpanFile:
    """Parse the text of a risk-parameter file (raises :class:`SpanFileError`)."""
    f = SpanFile()
    handlers = {"0 ": _header, "2 ": _combined_commodity, "3 ": _intra_tiers,
                "C ": _tier_spread, "4 ": _delivery, "5 ": _group, "6 ": _inter,
                "B ": _array_parameters, "P ": _price_conversion}
    for n, line in enumerate(text.splitlines(), start=1):
        rec = line.rstrip("\r\n")
        if not rec.strip():
            continue
        if len(rec) > RECORD_LENGTH:
            raise SpanFileError(n, f"{len(rec)} bytes, a record has at most {RECORD_LENGTH}")
        if not rec.isascii():
            raise SpanFileError(n, "not ASCII")
        rec = rec.ljust(RECORD_LENGTH)
        rid = rec[:2]
        if rid in handlers:
            handlers[rid](f, rec, n)
        elif rid == "1 ":
            f.exchanges.append(_s(rec, 3, 5))
        elif rid in ("81", "82"):
            _risk_array(f, rec, n, second=rid == "82")
        elif rid in RECOGNISED or rid[0] in RECOGNISED:
            f.skipped[rid.strip()] = f.skipped.get(rid.strip(), 0) + 1
        else:
            raise SpanFileError(n, f"record type {rid!r} is not one of the expanded format's")
    if f.business_date is None:
        raise SpanFileError(1, "no type 0 (exchange complex header) record with a business date")
    for ra in f.risk_arrays:
        if len(ra.values) != 16:
            raise SpanFileError(ra.line, f"risk array of {ra.product} {ra.futures_month}: "
                                         "the 82 record is missing")
    return f


def read_span_file(path: str | Path) -> SpanFile:
    """Read and parse a risk-parameter file; errors are :class:`InputError` naming the parameter,
    the file and the line."""
    p = Path(path)
    where = "--param risk_parameters"
    try:
        if p.stat().st_size > MAX_BYTES:
            raise InputError(where, f"{p}: larger than {MAX_BYTES // 2**20} MiB")
        raw = p.read_bytes()
    except OSError as exc:
        raise InputError(where, f"cannot read {p}: {exc.strerror or exc}") from None
    try:
        text = raw.decode("ascii")
    except UnicodeDecodeError as exc:
        raise InputError(where, f"{p}: not ASCII (byte {exc.start})") from None
    try:
        return parse_span_text(text)
    except SpanFileError as exc:
        raise InputError(where, f"{p}: {exc}") from None


# ---------------------------------------------------------------------------------------------
# to the span model's parameters


def _contract_symbol(ra: RiskArrayRecord, strike_decimals: int) -> str:
    if ra.contract_type == "FUT":
        return f"{ra.product}-{ra.futures_month}"
    strike = ra.strike_raw / 10 ** strike_decimals
    return f"{ra.product}-{ra.option_month}-{ra.right}-{strike:g}"


def span_options(f: SpanFile, origin: str = "file") -> dict[str, Any]:
    """The ``span`` model's parameters from a parsed file.

    Per combined commodity (keyed by its code, which names the underlying): price scan points =
    the front futures contract's B-record price scan range in settlement-price units; the
    volatility scan range from the first option series (absolute vol points; 0 without
    options); extreme move, cover and look-ahead from the futures B record; the largest
    tier-to-tier charge, the delivery charges and the short option minimum per contract divided
    by the futures multiplier (USD per underlying unit); the delivery months. The initial factor
    is the largest HRP initial-to-maintenance ratio. Two-leg intercommodity spreads become
    ``inter_spreads`` (ratios in underlying units), in priority order. Risk arrays of USD
    contracts become ``risk_arrays`` by contract symbol.
    """
    ccs: dict[str, Any] = {}
    mult: dict[str, float] = {}
    arrays: dict[str, Any] = {}
    for code, cc in sorted(f.combined_commodities.items()):
        futs = sorted((b for b in f.array_parameters
                       if b.contract_type == "FUT" and f.product_cc(b.product, "FUT") == code),
                      key=lambda b: b.futures_month)
        if not futs:
            raise InputError("--param risk_parameters",
                             f"{origin}: combined commodity {code!r} has no futures type B record")
        front = futs[0]
        pc = f.price_conversions.get((front.product, "FUT"))
        if pc is None:
            raise InputError("--param risk_parameters",
                             f"{origin}: no type P record for futures product {front.product!r}")
        m = pc.contract_value_factor
        mult[code] = m
        opts = [b for b in f.array_parameters
                if b.contract_type != "FUT" and f.product_cc(b.product, b.contract_type) == code]
        out: dict[str, Any] = {
            "price_scan_points": front.price_scan_range / 10 ** pc.settlement_decimals,
            "vol_scan_range": opts[0].volatility_scan_range if opts else 0.0,
            "vol_scan_mode": "absolute", "extreme_move": front.extreme_move,
            "extreme_cover": front.extreme_cover,
            "lookahead_days": front.lookahead * 365.0}
        if cc.intra_spreads:
            out["intra_spread_points"] = max(s["rate"] for s in cc.intra_spreads) / m
        if cc.delivery_months:
            out["delivery_months"] = [d[0] for d in cc.delivery_months]
            out["spot_charge_spread_points"] = max(d[1] for d in cc.delivery_months) / m
            out["spot_charge_outright_points"] = max(d[2] for d in cc.delivery_months) / m
        out["short_option_minimum_points"] = cc.short_option_minimum / m
        ccs[code] = out
    for ra in f.risk_arrays:
        holder = f.product_cc(ra.product, ra.contract_type)
        own = f.price_conversions.get((ra.product, ra.contract_type))
        und = f.price_conversions.get((ra.underlying, "FUT"))
        if holder is None or own is None or und is None or own.currency != "USD":
            continue
        loc = next(p.decimal_locator for p in f.combined_commodities[holder].products
                   if p.code == ra.product and p.contract_type == ra.contract_type)
        arrays[_contract_symbol(ra, own.strike_decimals)] = {
            "values": [v / 10 ** loc for v in ra.values],
            "composite_delta": ra.composite_delta * und.contract_value_factor,
            "contract_units": own.contract_value_factor, "combined_commodity": holder}
    inter = []
    for s in sorted(f.inter_spreads, key=lambda s: s.priority):
        if len(s.legs) != 2 or s.flat:
            raise InputError("--param risk_parameters",
                             f"{origin}: intercommodity spread priority {s.priority}: only "
                             "two-leg delta-based (weighted futures price risk) spreads are "
                             "modelled")
        (_, a, ra_, _), (_, b, rb, _) = s.legs
        if a not in mult or b not in mult:
            raise InputError("--param risk_parameters",
                             f"{origin}: intercommodity spread priority {s.priority}: unknown "
                             f"combined commodity {a if a not in mult else b!r}")
        inter.append({"legs": [a, b], "ratios": [ra_ * mult[a], rb * mult[b]],
                      "rate": s.credit_rate, "ratio_unit": "underlying"})
    ratios = [cc.initial_ratios[2] for cc in f.combined_commodities.values()]
    assert f.business_date is not None
    return {"combined_commodities": ccs, "inter_spreads": inter,
            "initial_factor": max(ratios) if ratios else 1.0, "risk_arrays": arrays,
            "parameter_source": f"{origin} ({f.exchange_complex} {f.business_date.isoformat()}"
                                f"{' settlement' if f.settlement == 'S' else ''})"}


def load_span_options(path: str | Path) -> dict[str, Any]:
    """:func:`span_options` of the file at ``path``."""
    return span_options(read_span_file(path), Path(path).name)
