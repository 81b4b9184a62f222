"""Writes docs/examples/cme-span-crypto-2026-02-04.pa2: a small SPAN risk-parameter file in CME's
expanded unpacked (pa2) format, CONSTRUCTED to the published column layouts (not a CME file).

Provenance: derived. The values are chosen, not CME's: BTC price scan range 31,390 points (43% of
a 73,000 index, the span model's sourced default), ETH 1,323 (63% of 2,100), VSR 12 vol points,
extreme move 2 × PSR at 35%, look-ahead one day; a BTC calendar spread charge of $1,500 per 5-BTC
spread; February 2026 in delivery at $500 / $1,000 per contract; SOM $785 per 5-BTC equivalent;
BTC/ETH 1:3 futures at a 30% credit. Futures risk arrays are the SPAN scenarios of a long contract
(loss positive) rounded to the record's precision; the option array is Black-76 (r = 0) written
here with math.erf, independent of the model.
Run: ``python tests/golden/span/write_cme_crypto_pa2.py``.
"""

from __future__ import annotations

import math
from pathlib import Path

OUT = Path(__file__).resolve().parents[3] / "docs" / "examples" / "cme-span-crypto-2026-02-04.pa2"
MOVES = (0, 0, 1 / 3, 1 / 3, -1 / 3, -1 / 3, 2 / 3, 2 / 3, -2 / 3, -2 / 3, 1, 1, -1, -1)
VOLS = (1, -1) * 7


class Rec:
    """A 132-byte record filled at 1-based inclusive columns."""

    def __init__(self, rid: str) -> None:
        self.b = [" "] * 132
        self.put(1, 2, rid.ljust(2))

    def put(self, a: int, b: int, text: str) -> Rec:
        assert len(text) == b - a + 1, (a, b, text)
        self.b[a - 1:b] = list(text)
        return self

    def num(self, a: int, b: int, value: float, decimals: int = 0) -> Rec:
        return self.put(a, b, str(round(value * 10 ** decimals)).rjust(b - a + 1, "0"))

    def txt(self, a: int, b: int, value: str) -> Rec:
        return self.put(a, b, value.ljust(b - a + 1))

    def line(self) -> str:
        return "".join(self.b).rstrip()


def cc2(code: str, products: list[tuple[str, str, int, str]]) -> str:
    r = Rec("2").txt(3, 5, "CME").txt(7, 12, code).num(13, 13, 0).txt(14, 16, "USD")
    r.txt(17, 17, "$").txt(18, 18, "P").txt(19, 19, "N")
    for k, (pc, ptype, loc, sign) in enumerate(products):
        a = 23 + 16 * k
        r.txt(a, a + 9, pc).txt(a + 10, a + 12, ptype).num(a + 13, a + 13, loc)
        r.txt(a + 14, a + 14, sign)
    return r.line()


def cc3(code: str, tiers: list[tuple[int, int, int]]) -> str:
    r = Rec("3").txt(3, 8, code).txt(9, 10, "10")
    for k, (t, s, e) in enumerate(tiers):
        a = 11 + 14 * k
        r.num(a, a + 1, t).num(a + 2, a + 7, s).num(a + 8, a + 13, e)
    return r.num(69, 72, 1.0, 3).num(73, 76, 1.0, 3).num(77, 80, 1.1, 3).line()


def b_rec(product: str, ptype: str, fut: int, opt: int, base_vol: float, vsr: float, psr: int,
          tte: float, expiry: str, underlying: str) -> str:
    r = Rec("B").txt(3, 5, "CME").txt(6, 15, product).txt(16, 18, ptype).num(19, 24, fut)
    if opt:
        r.num(28, 33, opt)
    r.num(37, 44, base_vol, 6).num(45, 52, vsr, 6).num(53, 57, psr).num(58, 62, 2.0, 3)
    r.num(63, 67, 0.35, 4).num(68, 72, 0.0, 4).num(73, 79, tte, 6).num(80, 85, 1 / 365, 6)
    r.num(86, 91, 1.0, 4).txt(92, 99, expiry).txt(100, 109, underlying)
    return r.line()


def p_rec(product: str, ptype: str, cvf: float, name: str) -> str:
    r = Rec("P").txt(3, 5, "CME").txt(6, 15, product).txt(16, 18, ptype).txt(19, 33, name)
    return r.num(34, 36, 0).num(37, 39, 0).num(42, 55, cvf, 7).txt(66, 68, "USD").line()


def arrays(product: str, und: str, ptype: str, right: str, fut: int, opt: int, strike: int,
           values: list[float], delta: float, scale: int, iv: float = 0.0) -> list[str]:
    def key(r: Rec) -> Rec:
        r.txt(3, 5, "CME").txt(6, 15, product).txt(16, 25, und).txt(26, 28, ptype)
        r.txt(29, 29, right).num(30, 35, fut)
        if opt:
            r.num(39, 44, opt)
        return r.num(48, 54, strike)

    stored = [round(v / scale) for v in values]
    r1, r2 = key(Rec("81")), key(Rec("82"))
    for k in range(9):
        a = 55 + 6 * k
        r1.num(a, a + 4, abs(stored[k])).txt(a + 5, a + 5, "-" if stored[k] < 0 else "+")
    for k in range(7):
        a = 55 + 6 * k
        v = stored[9 + k]
        r2.num(a, a + 4, abs(v)).txt(a + 5, a + 5, "-" if v < 0 else "+")
    r2.num(97, 101, abs(delta), 4).txt(102, 102, "-" if delta < 0 else "+").num(103, 110, iv, 6)
    return [r1.line(), r2.line()]


def future_array(psr: float, units: float) -> list[float]:
    """Loss of one long future: −move·PSR·units; extremes ∓2·PSR·units·0.35."""
    out = [-m * psr * units for m in MOVES]
    return [*out, -2 * psr * units * 0.35, 2 * psr * units * 0.35]


def _n(x: float) -> float:
    return 0.5 * (1.0 + math.erf(x / math.sqrt(2.0)))


def b76(F: float, K: float, T: float, vol: float, call: bool) -> float:
    sd = vol * math.sqrt(T)
    d1 = (math.log(F / K) + 0.5 * sd * sd) / sd
    return F * _n(d1) - K * _n(d1 - sd) if call else K * _n(sd - d1) - F * _n(-d1)


def option_array(F: float, K: float, T: float, vol: float, vsr: float, psr: float,
                 units: float) -> tuple[list[float], float]:
    """Loss of one long call per scenario (one-day look-ahead), and its delta after it."""
    la = 1 / 365
    v0 = b76(F, K, T, vol, True)
    out = [(v0 - b76(F + m * psr, K, T - la, vol + s * vsr, True)) * units
           for m, s in zip(MOVES, VOLS, strict=True)]
    out += [(v0 - b76(F + x * psr, K, T - la, vol, True)) * units * 0.35 for x in (2, -2)]
    sd = vol * math.sqrt(T - la)
    delta = _n((math.log(F / K) + 0.5 * sd * sd) / sd)
    return out, delta


def main() -> None:
    t_mar = 51 / 365          # 2026-02-04 → 2026-03-27
    opt, opt_delta = option_array(73500.0, 80000.0, t_mar, 0.55, 0.12, 31390.0, 0.1)
    lines = [
        Rec("0").txt(3, 8, "CME").txt(9, 16, "20260204").txt(17, 17, "S").txt(18, 19, "F")
        .num(20, 23, 1800).txt(24, 31, "20260204").num(32, 35, 1815).txt(36, 37, "U2").line(),
        Rec("T").txt(3, 5, "USD").txt(6, 6, "$").txt(7, 9, "USD").txt(10, 10, "$")
        .num(11, 20, 1.0, 6).line(),
        Rec("1").txt(3, 5, "CME").num(8, 9, 1).line(),
        cc2("BTC", [("BTC", "FUT", 1, "-"), ("MBT", "FUT", 0, "+"), ("MBT", "OOF", 0, "+")]),
        cc3("BTC", [(1, 202602, 202602), (2, 202603, 202612)]),
        Rec("C").txt(3, 8, "BTC").txt(9, 10, "10").num(11, 12, 1).num(13, 14, 2)
        .num(15, 21, 1500).put(22, 28, "010101A").put(29, 35, "020201B").line(),
        Rec("4").txt(3, 8, "BTC").txt(9, 10, "10").num(11, 12, 1).num(13, 14, 1)
        .num(15, 20, 202602).num(21, 27, 500).num(28, 34, 1000).num(63, 69, 785)
        .num(70, 72, 1.0, 2).num(73, 75, 1.0, 2).num(76, 78, 1.0, 2).line(),
        cc2("ETH", [("ETH", "FUT", 0, "+"), ("MET", "FUT", 0, "+")]),
        cc3("ETH", [(1, 202602, 202612)]),
        Rec("4").txt(3, 8, "ETH").txt(9, 10, "10").num(11, 12, 0).num(63, 69, 0).line(),
        Rec("5").txt(3, 5, "CRY").txt(13, 18, "BTC").txt(19, 24, "ETH").line(),
        Rec("6").txt(3, 5, "CRY").num(6, 9, 1).num(10, 16, 30.0, 4)
        .txt(17, 19, "CME").txt(21, 26, "BTC").num(27, 33, 1.0, 4).txt(34, 34, "A")
        .txt(35, 37, "CME").txt(39, 44, "ETH").num(45, 51, 3.0, 4).txt(52, 52, "B")
        .txt(89, 90, "01").line(),
        b_rec("BTC", "FUT", 202602, 0, 0.0, 0.0, 31390, 23 / 365, "20260227", "BTC"),
        b_rec("BTC", "FUT", 202603, 0, 0.0, 0.0, 31390, t_mar, "20260327", "BTC"),
        b_rec("MBT", "FUT", 202603, 0, 0.0, 0.0, 31390, t_mar, "20260327", "MBT"),
        b_rec("MBT", "OOF", 202603, 202603, 0.55, 0.12, 31390, t_mar, "20260327", "MBT"),
        b_rec("ETH", "FUT", 202603, 0, 0.0, 0.0, 1323, t_mar, "20260327", "ETH"),
        b_rec("MET", "FUT", 202603, 0, 0.0, 0.0, 1323, t_mar, "20260327", "MET"),
        p_rec("BTC", "FUT", 5.0, "BITCOIN FUTURES"),
        p_rec("MBT", "FUT", 0.1, "MICRO BITCOIN FU"[:15]),
        p_rec("MBT", "OOF", 0.1, "MICRO BTC OPTNS"),
        p_rec("ETH", "FUT", 50.0, "ETHER FUTURES"),
        p_rec("MET", "FUT", 0.1, "MICRO ETHER FUT"),
        *arrays("BTC", "BTC", "FUT", " ", 202603, 0, 0, future_array(31390, 5), 1.0, 10),
        *arrays("MBT", "MBT", "FUT", " ", 202603, 0, 0, future_array(31390, 0.1), 1.0, 1),
        *arrays("MBT", "MBT", "OOF", "C", 202603, 202603, 80000, opt, opt_delta, 1, 0.55),
        *arrays("ETH", "ETH", "FUT", " ", 202603, 0, 0, future_array(1323, 50), 1.0, 1),
    ]
    OUT.write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
