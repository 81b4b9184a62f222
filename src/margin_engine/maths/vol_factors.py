"""Implied volatility as a risk factor: the surface's factors, their history and the proxy.

Pure functions, arrays in, arrays out (docs/vol-factors.md):

- :func:`surface_factors` — one option-chain snapshot to its factors: the at-the-money implied
  vol at fixed tenors (7, 30, 90 days; term structure) and the 30-day skew (slope of implied
  vol against standardised log-moneyness ``z = ln(K/F) / (σ_ATM √T)``);
- :func:`fit_tenor_power` — the exponent ``p`` of ``Δσ_T = Δσ_30·(30d/T)^p`` that fits the
  daily ATM changes of the chains best (least squares through the origin);
- :func:`fit_skew_loading` — the skew's daily change regressed on the ATM log-change;
- :func:`realised_vol_proxy` — the stated proxy of the implied-vol index before DVOL exists:
  the EWMA realised vol (λ 0.94, annualised by √365) scaled by ``scale`` (fitted where both
  exist by :func:`proxy_scale`), and :func:`proxy_error`, its error against the index;
- :func:`vol_log_changes` — the daily log-changes of the vol factor along a price history:
  DVOL where it exists, the proxy before it.

The scenario generators then treat ``ln σ_30`` as one more column of the returns, so that each
generator (historical, filtered, Monte Carlo) draws price and vol jointly
(:mod:`margin_engine.maths.joint_scenarios`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

FloatArray = NDArray[np.float64]

#: The tenors (days) at which the at-the-money vol is read off each chain snapshot.
ATM_TENORS_DAYS: tuple[float, ...] = (7.0, 30.0, 90.0)
#: The skew is the slope of implied vol against z over |z| ≤ this (about the 16–84 delta range).
SKEW_Z_BAND = 1.0
#: RiskMetrics daily decay for the realised-vol proxy (ccp-standards §5.1).
PROXY_DECAY = 0.94


@dataclass(frozen=True)
class SurfaceFactors:
    """One snapshot's factors.

    Attributes
    ----------
    atm : float64 [len(ATM_TENORS_DAYS)]
        At-the-money implied vol (annualised decimal) at each tenor; NaN where the chain does
        not reach it (no extrapolation beyond the listed expiries).
    skew30 : float
        30-day slope dσ/dz (annualised decimal per unit of standardised moneyness); negative
        when puts are dearer than calls.
    """

    atm: FloatArray
    skew30: float


def _expiry_atm_and_skew(k: FloatArray, iv: FloatArray, years: float) -> tuple[float, float]:
    """ATM vol (linear in log-moneyness at k = 0) and the slope dσ/dz of one expiry."""
    order = np.argsort(k)
    k, iv = k[order], iv[order]
    if k.size < 3 or not (k[0] < 0.0 < k[-1]):
        return float("nan"), float("nan")
    atm = float(np.interp(0.0, k, iv))
    z = k / (atm * np.sqrt(years))
    band = np.abs(z) <= SKEW_Z_BAND
    if band.sum() < 3 or np.ptp(z[band]) == 0.0:
        return atm, float("nan")
    slope = float(np.polyfit(z[band], iv[band], 1)[0])
    return atm, slope


def surface_factors(strikes: FloatArray, forwards: FloatArray, years: FloatArray,
                    ivs: FloatArray) -> SurfaceFactors:
    """The factors of one chain snapshot (one underlying).

    Parameters
    ----------
    strikes, forwards, years, ivs : float64 [n_options]
        Strike and forward (USD), time to expiry (years) and mark implied vol (decimal) of
        each option; options of one expiry share ``years``.

    Returns
    -------
    SurfaceFactors
        ATM vol at ``ATM_TENORS_DAYS`` by linear interpolation of the ATM total variance
        ``σ²T`` in ``T`` between the listed expiries (NaN outside them), and the 30-day skew
        interpolated linearly in ``T``. Expiries under 2 days are skipped (their smiles are
        mostly intrinsic value).
    """
    s, f = np.asarray(strikes, float), np.asarray(forwards, float)
    t, v = np.asarray(years, float), np.asarray(ivs, float)
    ok = (s > 0) & (f > 0) & (t > 2.0 / 365.0) & (v > 0) & np.isfinite(v)
    s, f, t, v = s[ok], f[ok], t[ok], v[ok]
    exp_t, atm_e, skew_e = [], [], []
    for ty in np.unique(t):
        m = t == ty
        a, sk = _expiry_atm_and_skew(np.log(s[m] / f[m]), v[m], float(ty))
        if np.isfinite(a):
            exp_t.append(float(ty))
            atm_e.append(a)
            skew_e.append(sk)
    nodes = np.array(ATM_TENORS_DAYS) / 365.0
    atm = np.full(nodes.size, np.nan)
    skew30 = float("nan")
    if len(exp_t) >= 2:
        et, ea, es = np.array(exp_t), np.array(atm_e), np.array(skew_e)
        inside = (nodes >= et[0]) & (nodes <= et[-1])
        w = np.interp(nodes, et, ea * ea * et)
        atm[inside] = np.sqrt(w[inside] / nodes[inside])
        fin = np.isfinite(es)
        t30 = 30.0 / 365.0
        if fin.sum() >= 2 and et[fin][0] <= t30 <= et[fin][-1]:
            skew30 = float(np.interp(t30, et[fin], es[fin]))
    return SurfaceFactors(atm, skew30)


def fit_tenor_power(atm_changes: FloatArray,
                    tenors_days: tuple[float, ...] = ATM_TENORS_DAYS) -> float:
    """Exponent ``p`` of ``Δσ_T ≈ Δσ_30·(30/T)^p`` fitted on daily ATM changes.

    Parameters
    ----------
    atm_changes : float64 [n_days, n_tenors]
        Daily changes of the ATM vol at each tenor (annualised decimal); rows with NaN skipped.

    Returns
    -------
    float
        The ``p`` in [0, 1] minimising the squared error of every tenor's change against the
        30-day change times ``(30/T)^p`` (a grid search at 0.001 steps: exact to that step).
    """
    d = np.asarray(atm_changes, float)
    d = d[np.isfinite(d).all(axis=1)]
    j30 = tenors_days.index(30.0)
    ratio = 30.0 / np.array(tenors_days)
    grid = np.linspace(0.0, 1.0, 1001)
    err = [float(((d - d[:, [j30]] * ratio ** p) ** 2).sum()) for p in grid]
    return float(grid[int(np.argmin(err))])


def fit_skew_loading(skew_changes: FloatArray, atm_log_changes: FloatArray
                     ) -> tuple[float, float]:
    """Least-squares slope (through the origin) of the daily skew change on the ATM log-change,
    and the share of the skew's variance it explains (R²)."""
    y, x = np.asarray(skew_changes, float), np.asarray(atm_log_changes, float)
    ok = np.isfinite(x) & np.isfinite(y)
    x, y = x[ok], y[ok]
    b = float(x @ y / (x @ x))
    r2 = 1.0 - float(((y - b * x) ** 2).sum() / (y * y).sum())
    return b, r2


def ewma_vol(log_returns: FloatArray, decay: float = PROXY_DECAY, seed_window: int = 30
             ) -> FloatArray:
    """Annualised EWMA vol after each return: ``σ²_t = λσ²_{t−1} + (1−λ)r_t²`` (×365), seeded
    with the mean square of the first ``seed_window`` returns. NaN returns leave σ unchanged."""
    r = np.asarray(log_returns, float)
    out = np.empty(r.size)
    fin = r[np.isfinite(r)][:seed_window]
    var = float((fin * fin).mean()) if fin.size else 0.0
    for i, x in enumerate(r):
        if np.isfinite(x):
            var = decay * var + (1.0 - decay) * x * x
        out[i] = var
    return np.sqrt(out * 365.0)


def proxy_scale(proxy: FloatArray, index: FloatArray) -> float:
    """Scale making the proxy's mean equal the index's where both exist (DVOL / realised-vol
    ratio, the variance risk premium in the level)."""
    p, x = np.asarray(proxy, float), np.asarray(index, float)
    ok = np.isfinite(p) & np.isfinite(x) & (p > 0)
    return float(x[ok].mean() / p[ok].mean())


def realised_vol_proxy(log_returns: FloatArray, scale: float,
                       decay: float = PROXY_DECAY) -> FloatArray:
    """The implied-vol proxy: ``scale ×`` EWMA realised vol (annualised decimal)."""
    return scale * ewma_vol(log_returns, decay)


@dataclass(frozen=True)
class ProxyError:
    """How well the proxy's daily log-changes track the index's, where both exist."""

    days: int
    corr: float            # correlation of the daily log-changes
    rmse: float            # root mean square of (proxy − index) daily log-change
    std_ratio: float       # std of proxy changes / std of index changes
    up99_ratio: float      # 99th percentile of proxy changes / that of the index's
    level_mape: float      # mean |proxy − index| / index of the levels


def proxy_error(proxy: FloatArray, index: FloatArray) -> ProxyError:
    """Compare the proxy with the index on the days both exist (both arrays on one date axis)."""
    p, x = np.asarray(proxy, float), np.asarray(index, float)
    with np.errstate(divide="ignore", invalid="ignore"):
        dp, dx = np.diff(np.log(p)), np.diff(np.log(x))
    ok = np.isfinite(dp) & np.isfinite(dx)
    dp, dx = dp[ok], dx[ok]
    lv = np.isfinite(p) & np.isfinite(x) & (x > 0)
    return ProxyError(
        days=int(ok.sum()), corr=float(np.corrcoef(dp, dx)[0, 1]),
        rmse=float(np.sqrt(((dp - dx) ** 2).mean())),
        std_ratio=float(dp.std() / dx.std()),
        up99_ratio=float(np.quantile(dp, 0.99) / np.quantile(dx, 0.99)),
        level_mape=float((np.abs(p[lv] - x[lv]) / x[lv]).mean()))


def vol_log_changes(price_log_returns: FloatArray, index_levels: FloatArray,
                    decay: float = PROXY_DECAY) -> tuple[FloatArray, FloatArray]:
    """Daily log-changes of the vol factor on the price returns' date axis, and the proxy flag.

    Parameters
    ----------
    price_log_returns : float64 [n]
        Daily log returns of the underlying (NaN where missing); row ``i`` ends on day ``i``.
    index_levels : float64 [n + 1]
        The implied-vol index (e.g. DVOL, decimal) on the closes: ``index_levels[i + 1]`` at the
        end of return ``i``; NaN where it does not exist.

    Returns
    -------
    changes : float64 [n]
        ``ln σ_{i+1} − ln σ_i`` from the index where it exists at both ends, else the
        realised-vol proxy's log-change (its scale cancels); NaN where neither exists.
    proxied : bool [n]
        True where the proxy was used.
    """
    r = np.asarray(price_log_returns, float)
    lv = np.asarray(index_levels, float)
    if lv.size != r.size + 1:
        raise ValueError(f"index_levels: {lv.size} values for {r.size} returns (need n + 1)")
    with np.errstate(divide="ignore", invalid="ignore"):
        idx = np.diff(np.log(lv))
        prox = np.diff(np.log(np.concatenate([[np.nan], ewma_vol(r, decay)])))
    have = np.isfinite(idx)
    out = np.where(have, idx, prox)
    out[~np.isfinite(r)] = np.nan
    return out, ~have & np.isfinite(out)


#: |z| beyond which a skew move no longer grows (deep wings: the slope is not measured there).
SKEW_Z_CLIP = 3.0


def scenario_vols(vol: float, strike: float, forward: float, years_after: float,
                  price_moves: FloatArray, level_shifts: FloatArray,
                  skew_shifts: FloatArray | None, smile: tuple[FloatArray, FloatArray] | None,
                  tenor_power: float) -> FloatArray:
    """One option's implied vol in each scenario (before the revaluation's vol floor).

    ``σ' = σ_base + level·(30d/T')^p + skew·clip(z', ±3)``, with ``T'`` the time left after
    the horizon (floored at 1 day), ``z' = ln(K/F') / (σ √T')`` at the shocked forward
    ``F' = F(1+x)``, and ``σ_base`` the option's own vol (sticky strike, ``smile`` None) or the
    smile of its expiry read at its new log-moneyness ``ln(K/F) − ln(1+x)`` (sticky
    moneyness; ``smile`` = sorted log-moneyness and vols, flat beyond the listed strikes).

    Parameters
    ----------
    vol : float
        The option's implied vol now (annualised decimal).
    strike, forward : float
        USD.
    years_after : float
        Years to expiry after the horizon.
    price_moves, level_shifts : float64 [n]
        Relative move of the underlying and the 30-day ATM vol shift (decimal) per scenario.
    skew_shifts : float64 [n] or None
        Change of the 30-day skew dσ/dz per scenario.
    smile : (float64 [k], float64 [k]) or None
    tenor_power : float
        ``p`` above.
    """
    x = np.asarray(price_moves, float)
    t = max(years_after, 1.0 / 365.0)
    out = np.asarray(level_shifts, float) * (30.0 / 365.0 / t) ** tenor_power
    if smile is None:
        out = vol + out
    else:
        k_new = np.log(strike / forward) - np.log1p(x)
        out = np.interp(k_new, smile[0], smile[1]) + out
    if skew_shifts is not None:
        z = np.log(strike / (forward * (1.0 + x))) / (vol * np.sqrt(t))
        out = out + np.asarray(skew_shifts, float) * np.clip(z, -SKEW_Z_CLIP, SKEW_Z_CLIP)
    return np.asarray(out, dtype=np.float64)
