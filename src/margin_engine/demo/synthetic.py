"""Synthetic market generator: the embedded default data behind ``make demo``.

Pure, seeded functions (NumPy ``Generator``; the same seed gives bit-identical output on the same
NumPy version) that produce, in the public file formats of DESIGN §4:

- :func:`generate_history` — daily closes from a correlated multi-asset GARCH(1,1) with Student-t
  innovations and negative-skewed Poisson jumps; :func:`history_csv` writes the generic
  ``date,BTC,ETH`` history CSV;
- :func:`generate_market` — a market snapshot: index, FX, linear and inverse perpetuals, inverse
  dated futures with a contango basis, linear USDC perpetuals, an inverse option chain priced with
  Black-76 off an SSVI smile (put skew, higher short-dated vol), ``vol_surface`` slices and
  order books with a few-bp spread and depth that grows away from the touch;
- :func:`generate_book` — a dozen descriptively named accounts across ``isolated``, ``cross`` and
  ``portfolio`` margin modes.

Units follow DESIGN §3: prices in USD; linear ``contract_size`` in base units per contract,
inverse futures ``contract_size`` in USD per contract, options ``contract_size`` 1 coin; inverse
option ``mark_price`` in coin; vols annualised decimals; time to expiry ACT/365 to 08:00 UTC.
The model and its parameters are documented in ``docs/synthetic-data.md``.
"""

from __future__ import annotations

import calendar
import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from types import MappingProxyType
from typing import Any

import numpy as np

from margin_engine.maths.black76 import price_coin

__all__ = [
    "DEFAULT_INDEX",
    "GARCH_PARAMS",
    "JUMP_PARAMS",
    "SURFACE_PARAMS",
    "generate_book",
    "generate_history",
    "generate_market",
    "history_csv",
    "ssvi_vol",
]

# --------------------------------------------------------------------------------------------
# Parameters (documented in docs/synthetic-data.md)
# --------------------------------------------------------------------------------------------

DEFAULT_INDEX: Mapping[str, float] = MappingProxyType({"BTC": 73000.0, "ETH": 2100.0})
"""Default index prices (USD) of the market snapshot and last closes of the history."""

_STREAM_HISTORY = 1
_STREAM_MARKET = 2
_STREAM_BOOK = 3

GARCH_PARAMS: Mapping[str, float] = MappingProxyType({
    "alpha": 0.10,  # ARCH coefficient
    "beta": 0.87,  # GARCH coefficient (persistence alpha + beta = 0.97)
    "nu": 3.5,  # Student-t degrees of freedom of the innovations (shared mixing → tail dependence)
    "rho": 0.8,  # correlation of the Gaussian parts of the innovations
    "t_persistence": 0.5,  # probability that the t mixing variable carries over to the next day
    "z_clip": 7.0,  # standardised innovations truncated at ± z_clip
    "vol_cap": 3.0,  # conditional vol capped at vol_cap × the unconditional daily vol
    "burn_in": 500,  # days simulated and dropped before the first reported date
})
"""Shared GARCH(1,1)-t parameters of the history generator."""

_DAILY_VOL: Mapping[str, float] = MappingProxyType({"BTC": 0.025, "ETH": 0.033})
"""Unconditional daily volatility of the diffusive part per underlying (decimal)."""
_GENERIC_DAILY_VOL = 0.050

JUMP_PARAMS: Mapping[str, float] = MappingProxyType({
    "intensity": 4.0 / 365.0,  # Poisson jumps per day (about 4 a year)
    "p_down": 0.75,  # probability that a jump is a crash
    "mean_down": 0.05,  # mean size of a crash, log-return (exponential)
    "mean_up": 0.03,  # mean size of an up-jump, log-return (exponential)
})
"""Common jump factor, scaled per asset by ``daily_vol / daily_vol['BTC']``."""


@dataclass(frozen=True)
class _Surface:
    """SSVI parameters of one underlying (Gatheral-Jacquier power-law φ)."""

    vol_short: float  # ATM vol as T → 0
    vol_long: float  # ATM vol as T → ∞
    tau: float  # years: decay time of the ATM term structure
    rho: float  # skew (< 0: puts richer than calls)
    eta: float  # wing level of φ(θ) = η / (θ^γ (1 + θ)^(1 - γ))
    gamma: float  # power of φ
    basis: float  # annualised futures basis (continuous), contango > 0


SURFACE_PARAMS: Mapping[str, _Surface] = MappingProxyType({
    "BTC": _Surface(0.58, 0.47, 0.20, -0.25, 0.80, 0.5, 0.050),
    "ETH": _Surface(0.75, 0.62, 0.20, -0.22, 0.80, 0.5, 0.055),
})
"""Vol-surface and basis parameters per underlying (before the seeded jitter)."""


@dataclass(frozen=True)
class _Spec:
    """Static contract specification of one underlying's listed products."""

    linear_tick: float
    linear_lot: float
    usdc_tick: float
    inverse_perp_tick: float
    inverse_future_tick: float
    inverse_contract_size: float  # USD per inverse contract
    option_lot: float


_SPECS: Mapping[str, _Spec] = MappingProxyType({
    "BTC": _Spec(0.1, 0.001, 0.5, 0.5, 2.5, 10.0, 0.1),
    "ETH": _Spec(0.01, 0.001, 0.05, 0.05, 0.05, 1.0, 1.0),
})

_MONTHS = ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC")


# --------------------------------------------------------------------------------------------
# Small helpers
# --------------------------------------------------------------------------------------------


def _rng(seed: int, stream: int) -> np.random.Generator:
    if isinstance(seed, bool) or not isinstance(seed, int | np.integer) or int(seed) < 0:
        raise ValueError(f"seed: expected a non-negative integer, got {seed!r}")
    return np.random.default_rng([int(seed), stream])


def _sig(x: float, digits: int = 10) -> float:
    """Round to ``digits`` significant digits (stable, compact JSON)."""
    if x == 0.0 or not math.isfinite(x):
        return float(x)
    return float(f"{x:.{digits}g}")


def _round_to(x: float, step: float, mode: str = "nearest") -> float:
    n = x / step
    if mode == "down":
        k = math.floor(n + 1e-9)
    elif mode == "up":
        k = math.ceil(n - 1e-9)
    else:
        k = round(n)
    decimals = max(0, -math.floor(math.log10(step)) + 2)
    return round(k * step, decimals)


def _parse_timestamp(value: str, name: str) -> datetime:
    if not isinstance(value, str):
        raise ValueError(f"{name}: expected an ISO 8601 string, got {value!r}")
    try:
        ts = datetime.fromisoformat(value)
    except ValueError as exc:
        raise ValueError(f"{name}: not an ISO 8601 timestamp ({value!r})") from exc
    if ts.tzinfo is None:
        ts = ts.replace(tzinfo=UTC)
    return ts.astimezone(UTC)


def _iso(ts: datetime) -> str:
    return ts.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _last_friday(year: int, month: int) -> date:
    last = date(year, month, calendar.monthrange(year, month)[1])
    return last - timedelta(days=(last.weekday() - calendar.FRIDAY) % 7)


def _expiry_at(d: date) -> datetime:
    return datetime(d.year, d.month, d.day, 8, 0, 0, tzinfo=UTC)


def _add_months(year: int, month: int, n: int) -> tuple[int, int]:
    m = month - 1 + n
    return year + m // 12, m % 12 + 1


def _listed_expiries(ts: datetime, min_days: float = 14.0) -> list[datetime]:
    """Next monthly last-Friday expiry ≥ ``min_days`` away, then the next two quarterlies."""
    y, m = ts.year, ts.month
    while True:
        first = _expiry_at(_last_friday(y, m))
        if (first - ts).total_seconds() >= min_days * 86400.0:
            break
        y, m = _add_months(y, m, 1)
    out = [first]
    while len(out) < 3:
        y, m = _add_months(y, m, 1)
        if m in (3, 6, 9, 12):
            out.append(_expiry_at(_last_friday(y, m)))
    return out


def _deribit_date(d: datetime) -> str:
    return f"{d.day}{_MONTHS[d.month - 1]}{d.year % 100:02d}"


def _fmt_strike(k: float) -> str:
    if float(k).is_integer():
        return str(int(k))
    return f"{k:g}".replace(".", "d")


def _nice_floor(x: float) -> float:
    """Largest value of the form {1, 2, 2.5, 5} × 10^n not above ``x``."""
    p = 10.0 ** math.floor(math.log10(x))
    best = p
    for m in (1.0, 2.0, 2.5, 5.0, 10.0):
        if m * p <= x * (1 + 1e-12):
            best = m * p
    return best


def _check_prices(prices: dict[str, float], name: str) -> dict[str, float]:
    if not isinstance(prices, dict) or not prices:
        raise ValueError(f"{name}: expected a non-empty mapping of underlying to price")
    out: dict[str, float] = {}
    for key, val in prices.items():
        try:
            v = float(val)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"{name}.{key}: not a number ({val!r})") from exc
        if not math.isfinite(v) or v <= 0.0:
            raise ValueError(f"{name}.{key}: expected a positive finite price, got {val!r}")
        out[str(key)] = v
    return out


# --------------------------------------------------------------------------------------------
# 1. History: correlated GARCH(1,1)-t with jumps
# --------------------------------------------------------------------------------------------


def generate_history(
    *,
    seed: int = 7,
    start: str = "2023-01-01",
    days: int = 1000,
    underlyings: tuple[str, ...] = ("BTC", "ETH"),
    spot: dict[str, float] | None = None,
) -> dict[str, Any]:
    """Simulate daily closes of several underlyings (calendar days: crypto trades every day).

    Log-returns ``r_t = sqrt(h_t) z_t + s_i J_t`` with ``h_t = ω + α ε²_{t-1} + β h_{t-1}``
    (``ε`` includes the jump; ``h`` capped at ``(vol_cap · daily_vol)²``), ``z_t`` multivariate
    Student-t (ν, correlation ρ, unit variance, truncated at ± ``z_clip``) whose chi-square
    mixing variable is shared by all assets (crashes hit them together) and carries over to the
    next day with probability ``t_persistence`` (extreme days cluster; each ``z_t`` stays
    Student-t), and ``J_t`` a compound-Poisson, negative-skewed common jump scaled by
    ``s_i = daily_vol_i / daily_vol_BTC``. Parameters: :data:`GARCH_PARAMS`, :data:`JUMP_PARAMS`.

    Parameters
    ----------
    seed : non-negative int; the same seed gives identical output.
    start : ISO date of the first close.
    days : number of daily closes (≥ 2).
    underlyings : names of the columns; ``BTC`` and ``ETH`` have calibrated volatilities, other
        names use a 5 %/day volatility and need a ``spot`` entry.
    spot : USD close on the **last** date per underlying (the path is scaled to end there);
        defaults to :data:`DEFAULT_INDEX`, so the history ends at the default market's index.

    Returns
    -------
    dict ``{"dates": [ISO dates], "closes": {name: [USD closes]}}`` (closes rounded to 10
    significant digits).
    """
    if isinstance(days, bool) or not isinstance(days, int) or days < 2:
        raise ValueError(f"days: expected an integer >= 2, got {days!r}")
    try:
        d0 = date.fromisoformat(start)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"start: not an ISO date ({start!r})") from exc
    names = tuple(underlyings)
    if not names or len(set(names)) != len(names) or not all(isinstance(n, str) for n in names):
        raise ValueError(f"underlyings: expected distinct names, got {underlyings!r}")
    last = dict(DEFAULT_INDEX)
    if spot is not None:
        last.update(_check_prices(spot, "spot"))
    missing = [n for n in names if n not in last]
    if missing:
        raise ValueError(f"spot: no last close given for {', '.join(missing)}")

    rng = _rng(seed, _STREAM_HISTORY)
    n_assets = len(names)
    alpha, beta = GARCH_PARAMS["alpha"], GARCH_PARAMS["beta"]
    nu, rho = GARCH_PARAMS["nu"], GARCH_PARAMS["rho"]
    steps = days - 1 + int(GARCH_PARAMS["burn_in"])

    vol = np.array([_DAILY_VOL.get(n, _GENERIC_DAILY_VOL) for n in names], dtype=np.float64)
    h_bar = vol**2
    omega = h_bar * (1.0 - alpha - beta)
    h_max = h_bar * GARCH_PARAMS["vol_cap"] ** 2

    corr = np.full((n_assets, n_assets), rho) + (1.0 - rho) * np.eye(n_assets)
    chol = np.linalg.cholesky(corr)
    gauss = rng.standard_normal((steps, n_assets)) @ chol.T
    fresh = rng.chisquare(nu, size=steps) / nu
    keep = rng.random(steps) < GARCH_PARAMS["t_persistence"]
    keep[0] = False
    last_fresh = np.maximum.accumulate(np.where(keep, 0, np.arange(steps)))
    mix = np.sqrt(fresh[last_fresh])  # renewed with probability 1 - q: marginally chi2(nu)/nu
    z = gauss / mix[:, None] * math.sqrt((nu - 2.0) / nu)  # unit variance multivariate t
    z = np.clip(z, -GARCH_PARAMS["z_clip"], GARCH_PARAMS["z_clip"])

    counts = rng.poisson(JUMP_PARAMS["intensity"], size=steps)
    total = int(counts.sum())
    down = rng.random(total) < JUMP_PARAMS["p_down"]
    sizes = np.where(
        down,
        -rng.exponential(JUMP_PARAMS["mean_down"], size=total),
        rng.exponential(JUMP_PARAMS["mean_up"], size=total),
    )
    jump = np.zeros(steps)
    np.add.at(jump, np.repeat(np.arange(steps), counts), sizes)
    jumps = jump[:, None] * (vol / _DAILY_VOL["BTC"])[None, :]

    ret = np.empty((steps, n_assets))
    h = h_bar.copy()
    for t in range(steps):
        eps = np.sqrt(h) * z[t] + jumps[t]
        ret[t] = eps
        h = np.minimum(omega + alpha * eps * eps + beta * h, h_max)

    ret = ret[int(GARCH_PARAMS["burn_in"]) :]
    log_path = np.vstack([np.zeros((1, n_assets)), np.cumsum(ret, axis=0)])
    log_path -= log_path[-1]  # end at log(1): scaled to the requested last close
    closes = np.exp(log_path) * np.array([last[n] for n in names])[None, :]

    dates = [(d0 + timedelta(days=i)).isoformat() for i in range(days)]
    return {
        "dates": dates,
        "closes": {n: [_sig(float(x)) for x in closes[:, j]] for j, n in enumerate(names)},
    }


def history_csv(history: dict[str, Any]) -> str:
    """Write a :func:`generate_history` result as the generic history CSV (``date,BTC,ETH``)."""
    try:
        dates = list(history["dates"])
        closes = dict(history["closes"])
    except (KeyError, TypeError) as exc:
        raise ValueError("history: expected keys 'dates' and 'closes'") from exc
    names = list(closes)
    for n in names:
        if len(closes[n]) != len(dates):
            raise ValueError(
                f"history.closes.{n}: {len(closes[n])} values for {len(dates)} dates"
            )
    lines = [",".join(["date", *names])]
    for i, d in enumerate(dates):
        lines.append(",".join([str(d), *(repr(float(closes[n][i])) for n in names)]))
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------------------------
# 2. Market snapshot
# --------------------------------------------------------------------------------------------


def ssvi_vol(k: float, T: float, atm_vol: float, rho: float, eta: float, gamma: float) -> float:
    """SSVI implied vol (annualised decimal) at log-moneyness ``k = ln(K/F)`` and ``T`` years.

    Total variance ``w = θ/2 (1 + ρφk + sqrt((φk + ρ)² + 1 - ρ²))``, ``θ = atm_vol² T``,
    ``φ = η / (θ^γ (1 + θ)^(1-γ))`` (Gatheral & Jacquier 2014; free of static arbitrage when
    ``η (1 + |ρ|) ≤ 2`` and ``0 < γ ≤ 1/2``).
    """
    if not (T > 0.0 and atm_vol > 0.0):
        raise ValueError(f"T, atm_vol: expected positive values, got T={T!r}, atm_vol={atm_vol!r}")
    theta = atm_vol * atm_vol * T
    phi = eta / (theta**gamma * (1.0 + theta) ** (1.0 - gamma))
    w = 0.5 * theta * (1.0 + rho * phi * k + math.sqrt((phi * k + rho) ** 2 + 1.0 - rho * rho))
    return math.sqrt(w / T)


def _atm_vol(p: _Surface, T: float, level: float) -> float:
    return level * (p.vol_long + (p.vol_short - p.vol_long) * math.exp(-T / p.tau))


def _book_levels(
    rng: np.random.Generator,
    mid: float,
    tick: float,
    half_spread_bp: float,
    level_bp: float,
    top_contracts: float,
    lot: float,
    n_levels: int = 20,
) -> dict[str, list[list[float]]]:
    """Bid and ask ladders: offsets grow like i^1.2, sizes like (1 + 0.35 i) × lognormal noise."""
    out: dict[str, list[list[float]]] = {}
    for side, sign, mode in (("bids", -1.0, "down"), ("asks", 1.0, "up")):
        levels: list[list[float]] = []
        prev: float | None = None
        noise = np.exp(0.35 * rng.standard_normal(n_levels))
        for i in range(n_levels):
            off_bp = half_spread_bp + level_bp * i**1.2
            price = _round_to(mid * (1.0 + sign * off_bp * 1e-4), tick, mode)
            if prev is not None and (price - prev) * sign < tick * 0.5:
                price = _round_to(prev + sign * tick, tick)
            size = max(lot, _round_to(top_contracts * (1.0 + 0.35 * i) * noise[i], lot))
            levels.append([price, _num(size)])
            prev = price
        out[side] = levels
    return out


def generate_market(
    *,
    seed: int = 7,
    timestamp: str = "2026-02-04T09:30:00Z",
    index: dict[str, float] | None = None,
) -> dict[str, Any]:
    """Generate a market snapshot in the DESIGN §4 JSON format (a dict ready for ``json.dumps``).

    Parameters
    ----------
    seed : non-negative int; the same seed gives identical output.
    timestamp : snapshot time (ISO 8601, UTC); expiries are the next monthly last-Friday at
        least 14 days away and the two following quarterlies, at 08:00 UTC.
    index : USD index price per underlying (``BTC``, ``ETH``); defaults to
        :data:`DEFAULT_INDEX`. Only underlyings in it are generated.

    Returns
    -------
    dict with ``timestamp``, ``index``, ``fx``, ``instruments`` (perpetuals, futures, options),
    ``order_books`` (perpetuals and futures; ``[price, size]`` with size in contracts) and
    ``vol_surface`` (per underlying a list of ``{expiry, forward, strikes, vols}`` slices).
    """
    ts = _parse_timestamp(timestamp, "timestamp")
    spot = _check_prices(index if index is not None else dict(DEFAULT_INDEX), "index")
    unknown = [u for u in spot if u not in SURFACE_PARAMS]
    if unknown:
        raise ValueError(
            f"index: unsupported underlying {unknown[0]!r} (supported: "
            f"{', '.join(SURFACE_PARAMS)})"
        )
    rng = _rng(seed, _STREAM_MARKET)
    expiries = _listed_expiries(ts)

    fx = {
        "USDT": round(1.0 + 2e-4 * float(rng.standard_normal()), 5),
        "USDC": round(1.0 + 5e-5 * float(rng.standard_normal()), 5),
    }
    instruments: list[dict[str, Any]] = []
    books: dict[str, dict[str, list[list[float]]]] = {}
    surface: dict[str, list[dict[str, Any]]] = {}

    for u, s in spot.items():
        p, spec = SURFACE_PARAMS[u], _SPECS[u]
        level = math.exp(0.05 * float(rng.standard_normal()))
        rho = min(-0.05, p.rho + 0.04 * float(rng.standard_normal()))
        basis = p.basis + 0.01 * float(rng.standard_normal())
        prem = 1e-4 * rng.standard_normal(3)  # perp premia, fraction of index

        # --- perpetuals -----------------------------------------------------------------
        perps = [
            (f"{u}USDT", "USDT", False, 1.0, spec.linear_tick, spec.linear_lot, 250e3),
            (f"{u}-PERPETUAL", u, True, spec.inverse_contract_size, spec.inverse_perp_tick, 1.0,
             150e3),
            (f"{u}_USDC-PERPETUAL", "USDC", False, 1.0, spec.usdc_tick, spec.linear_lot, 40e3),
        ]
        for j, (sym, settle, inverse, csize, tick, lot, depth_usd) in enumerate(perps):
            mark = _round_to(s * (1.0 + float(prem[j])), tick)
            instruments.append(
                {"symbol": sym, "kind": "perpetual", "underlying": u, "settle": settle,
                 "inverse": inverse, "contract_size": _num(csize), "mark_price": mark}
            )
            top = depth_usd / csize if inverse else depth_usd / (mark * csize)
            books[sym] = _book_levels(
                rng, mark, tick, 0.5 + 0.5 * float(rng.random()), 1.5, top, lot
            )

        # --- dated futures and options ---------------------------------------------------
        slices: list[dict[str, Any]] = []
        for e_idx, exp in enumerate(expiries):
            T = (exp - ts).total_seconds() / (365.0 * 86400.0)
            fut_sym = f"{u}-{_deribit_date(exp)}"
            fwd = _round_to(s * math.exp(basis * T), spec.inverse_future_tick)
            instruments.append(
                {"symbol": fut_sym, "kind": "future", "underlying": u, "settle": u,
                 "inverse": True, "contract_size": _num(spec.inverse_contract_size),
                 "expiry": _iso(exp), "mark_price": fwd}
            )
            books[fut_sym] = _book_levels(
                rng, fwd, spec.inverse_future_tick, 1.5 + float(rng.random()), 3.0,
                60e3 / (1.0 + e_idx) / spec.inverse_contract_size, 1.0,
            )

            atm = _atm_vol(p, T, level)
            step = _nice_floor(0.5 * atm * math.sqrt(T) * fwd)
            centre = _round_to(fwd, step)
            n_listed = 5 if e_idx == len(expiries) - 1 else 4
            grid = [centre + i * step for i in range(-2 * n_listed, 2 * n_listed + 1)]
            grid = [_round_to(k, step) for k in grid if 0.3 * fwd <= k <= 3.0 * fwd]
            vols = [round(ssvi_vol(math.log(k / fwd), T, atm, rho, p.eta, p.gamma), 4)
                    for k in grid]
            slices.append({"expiry": _iso(exp), "forward": fwd, "strikes": [_num(k) for k in grid],
                           "vols": vols})
            for k, iv in zip(grid, vols, strict=True):
                if abs(k - centre) > n_listed * step * (1 + 1e-9):
                    continue
                for opt, is_call in (("call", True), ("put", False)):
                    instruments.append(
                        {"symbol": f"{fut_sym}-{_fmt_strike(k)}-{opt[0].upper()}",
                         "kind": "option", "underlying": u, "settle": u, "inverse": True,
                         "contract_size": 1, "expiry": _iso(exp), "strike": _num(k),
                         "option_type": opt, "mark_iv": iv, "underlying_price": fwd,
                         "mark_price": _sig(price_coin(fwd, k, T, iv, is_call))}
                    )
        surface[u] = slices

    return {
        "timestamp": _iso(ts),
        "index": {u: float(v) for u, v in spot.items()},
        "fx": fx,
        "instruments": instruments,
        "order_books": books,
        "vol_surface": surface,
    }


def _num(x: float) -> float | int:
    """Integers as ``int`` (``contract_size: 10``, ``strike: 80000``), the rest as floats."""
    xf = float(x)
    return int(xf) if xf.is_integer() and abs(xf) < 2**53 else xf


# --------------------------------------------------------------------------------------------
# 3. Book of accounts
# --------------------------------------------------------------------------------------------


class _Market:
    """Index of a market dict by what the book needs."""

    def __init__(self, market: dict[str, Any]) -> None:
        try:
            self.index = {str(k): float(v) for k, v in market["index"].items()}
            self.instruments = list(market["instruments"])
        except (KeyError, TypeError, AttributeError, ValueError) as exc:
            raise ValueError("market: expected 'index' and 'instruments' (DESIGN §4)") from exc
        self.by_symbol = {str(i["symbol"]): i for i in self.instruments}

    def mark(self, symbol: str) -> float:
        return float(self.by_symbol[symbol]["mark_price"])

    def perp(self, u: str, settle: str) -> str:
        for i in self.instruments:
            if (i.get("kind"), i.get("underlying"), i.get("settle")) == ("perpetual", u, settle):
                return str(i["symbol"])
        raise ValueError(f"market.instruments: no {u} perpetual settled in {settle}")

    def futures(self, u: str) -> list[str]:
        fut = [i for i in self.instruments
               if i.get("kind") == "future" and i.get("underlying") == u and i.get("inverse")]
        if not fut:
            raise ValueError(f"market.instruments: no inverse {u} futures")
        return [str(i["symbol"]) for i in sorted(fut, key=lambda i: str(i["expiry"]))]

    def option(self, u: str, expiry_rank: int, option_type: str, k_target: float) -> str:
        opts = [i for i in self.instruments
                if i.get("kind") == "option" and i.get("underlying") == u]
        expiries = sorted({str(i["expiry"]) for i in opts})
        if not expiries:
            raise ValueError(f"market.instruments: no {u} options")
        exp = expiries[min(expiry_rank, len(expiries) - 1)]
        cands = [i for i in opts if i["expiry"] == exp and i.get("option_type") == option_type]
        best = min(cands, key=lambda i: abs(
            math.log(float(i["strike"]) / float(i["underlying_price"])) - k_target))
        return str(best["symbol"])


def generate_book(market: dict[str, Any], *, seed: int = 7) -> dict[str, Any]:
    """Generate a sample book of 12 accounts in the DESIGN §4 book format, sized off ``market``.

    Accounts mix linear USDT/USDC perpetuals, inverse perpetuals and futures, and inverse options;
    collateral in USDT, USDC, BTC and ETH; ``leverage`` per linear symbol; credit ratings from AAA
    to CCC. Entry prices are the marks times a seeded ±2 % (futures) or ±10 % (options) noise,
    except ``near-liquidation``, whose entry puts its equity at 1 % of its notional.
    ``size`` is signed contracts (inverse: USD face / ``contract_size``); ``entry_price`` is in the
    instrument's price unit (USD, or coin for inverse options); ``isolated_margin`` in the
    position's settlement currency. Requires the BTC and ETH instruments that
    :func:`generate_market` lists.
    """
    if not isinstance(market, dict):
        raise ValueError("market: expected a market-snapshot dict")
    m = _Market(market)
    for u in ("BTC", "ETH"):
        if u not in m.index:
            raise ValueError(f"market.index: no {u} price")
    rng = _rng(seed, _STREAM_BOOK)
    btc, eth = m.index["BTC"], m.index["ETH"]

    def lin(sym: str, notional_usd: float, lot: float = 0.001) -> float:
        return _round_to(_sig(notional_usd / m.mark(sym), 3), lot)

    def inv(sym: str, notional_usd: float) -> int:
        return round(notional_usd / float(m.by_symbol[sym]["contract_size"]))

    def pos(sym: str, size: float, **extra: float) -> dict[str, Any]:
        if size == 0:
            raise ValueError(f"internal: zero size for {sym}")
        inst = m.by_symbol[sym]
        mark = float(inst["mark_price"])
        if inst["kind"] == "option":
            entry = max(0.0001, _round_to(mark * math.exp(0.10 * float(rng.standard_normal())),
                                          0.0001))
        else:
            entry = round(mark * (1.0 + 0.02 * float(rng.standard_normal())), 2)
        out: dict[str, Any] = {"symbol": sym, "size": _num(size), "entry_price": entry}
        out.update({k: _num(v) for k, v in extra.items()})
        return out

    b_lin, e_lin = m.perp("BTC", "USDT"), m.perp("ETH", "USDT")
    b_usdc, e_usdc = m.perp("BTC", "USDC"), m.perp("ETH", "USDC")
    b_inv, e_inv = m.perp("BTC", "BTC"), m.perp("ETH", "ETH")
    b_fut, e_fut = m.futures("BTC"), m.futures("ETH")

    accounts: list[dict[str, Any]] = []

    accounts.append({
        "id": "btc-long-cross", "margin_mode": "cross",
        "collateral": {"USDT": 250000, "BTC": 0.5},
        "positions": [pos(b_lin, lin(b_lin, 180e3)), pos(e_lin, -lin(e_lin, 60e3))],
        "leverage": {b_lin: 20, e_lin: 10}, "credit_rating": "A",
    })

    eth_short = -lin(e_lin, 105e3)
    accounts.append({
        "id": "eth-short-isolated", "margin_mode": "isolated",
        "collateral": {"USDT": 60000},
        "positions": [pos(e_lin, eth_short, isolated_margin=12000),
                      pos(b_lin, lin(b_lin, 60e3))],
        "leverage": {e_lin: 10, b_lin: 25}, "credit_rating": "BBB",
    })

    accounts.append({
        "id": "btc-inverse-isolated", "margin_mode": "isolated",
        "collateral": {"BTC": 1.5, "ETH": 5},
        "positions": [pos(b_inv, inv(b_inv, 150e3), isolated_margin=0.25),
                      pos(e_inv, -inv(e_inv, 40e3), isolated_margin=2)],
        "credit_rating": "BB",
    })

    accounts.append({
        "id": "basis-trader", "margin_mode": "cross",
        "collateral": {"BTC": 12, "ETH": 150, "USDT": 50000},
        "positions": [pos(b_fut[1], -inv(b_fut[1], 14 * btc)),
                      pos(b_fut[2], inv(b_fut[2], 2 * btc)),
                      pos(e_fut[1], -inv(e_fut[1], 150 * eth))],
        "credit_rating": "A",
    })

    accounts.append({
        "id": "miner-hedge", "margin_mode": "cross",
        "collateral": {"BTC": 40},
        "positions": [pos(b_inv, -inv(b_inv, 1.5e6)), pos(b_fut[2], -inv(b_fut[2], 1.0e6))],
        "credit_rating": "BBB",
    })

    accounts.append({
        "id": "usdc-multi-collateral", "margin_mode": "cross",
        "collateral": {"USDC": 80000, "ETH": 10, "BTC": 0.2},
        "positions": [pos(b_usdc, lin(b_usdc, 90e3)), pos(e_usdc, -lin(e_usdc, 50e3, 0.01)),
                      pos(e_lin, lin(e_lin, 30e3))],
        "leverage": {b_usdc: 10, e_usdc: 10, e_lin: 20}, "credit_rating": "BB",
    })

    accounts.append({
        "id": "whale-concentrated", "margin_mode": "cross",
        "collateral": {"USDT": 12000000},
        "positions": [pos(b_lin, lin(b_lin, 29e6)), pos(e_lin, lin(e_lin, 6.3e6))],
        "leverage": {b_lin: 5, e_lin: 5}, "credit_rating": "AA",
    })

    # near-liquidation: equity = collateral + size (mark - entry) = 1 % of notional.
    size_nl = lin(b_lin, 1.5 * btc)
    mark_nl = m.mark(b_lin)
    collateral_nl = 4000.0
    entry_nl = _round_to(mark_nl + (collateral_nl - 0.01 * size_nl * mark_nl) / size_nl, 0.1)
    accounts.append({
        "id": "near-liquidation", "margin_mode": "cross",
        "collateral": {"USDT": 4000},
        "positions": [{"symbol": b_lin, "size": _num(size_nl), "entry_price": entry_nl}],
        "leverage": {b_lin: 50}, "credit_rating": "CCC",
    })

    accounts.append({
        "id": "short-strangle-pm", "margin_mode": "portfolio",
        "collateral": {"BTC": 8, "USDC": 50000},
        "positions": [pos(m.option("BTC", 1, "call", 0.15), -10),
                      pos(m.option("BTC", 1, "put", -0.15), -10),
                      pos(b_inv, inv(b_inv, 20e3))],
        "credit_rating": "BBB",
    })

    accounts.append({
        "id": "covered-call", "margin_mode": "portfolio",
        "collateral": {"BTC": 10},
        "positions": [pos(m.option("BTC", 0, "call", 0.10), -10)],
        "credit_rating": "A",
    })

    accounts.append({
        "id": "long-straddle-pm", "margin_mode": "portfolio",
        "collateral": {"ETH": 60},
        "positions": [pos(m.option("ETH", 2, "call", 0.0), 100),
                      pos(m.option("ETH", 2, "put", 0.0), 100)],
        "credit_rating": "B",
    })

    mm: list[dict[str, Any]] = []
    seen: set[str] = set()
    for u, lot, scale in (("BTC", 0.1, 40.0), ("ETH", 1.0, 400.0)):
        for rank in range(3):
            for opt_type, k in (("put", -0.2), ("put", -0.05), ("call", 0.05), ("call", 0.2)):
                sym = m.option(u, rank, opt_type, k)
                if sym in seen:
                    continue
                seen.add(sym)
                size = _round_to(scale * (0.1 + float(rng.random())), lot)
                sign = 1.0 if rng.random() < 0.5 else -1.0
                mm.append(pos(sym, sign * size))
    mm += [pos(b_inv, -inv(b_inv, 0.8e6)), pos(e_inv, inv(e_inv, 0.3e6)),
           pos(b_lin, lin(b_lin, 0.5e6)), pos(b_fut[0], inv(b_fut[0], 0.4e6)),
           pos(e_fut[0], -inv(e_fut[0], 0.2e6))]
    accounts.append({
        "id": "market-maker", "margin_mode": "portfolio",
        "collateral": {"BTC": 60, "ETH": 800, "USDC": 3000000, "USDT": 1000000},
        "positions": mm, "leverage": {b_lin: 10}, "credit_rating": "AAA",
    })

    return {"accounts": accounts}
