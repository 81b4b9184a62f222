"""Order-book model of the liquidation engine, fitted on the real Bitstamp BTC/USD capture.

Run from the repository root (``../shared/data/real`` must be present; about 10 s)::

    python -m studies.orderbook_model [--data DIR] [--out docs/study]

Input (shared/data/real/SOURCES.md §6): the 30-minute Bitstamp L3 order events of 2026-05-02
02:36–03:06 UTC (the book at t=0 plus every create/change/delete) and its 284 trades. The book is
replayed order by order (time = exchange timestamp) and read:

- **depth curves**: size within 1…100 bps of the mid, per side, sampled every second;
- **impact, static**: the relative cost of walking the book with a market order of 0.01…50 BTC,
  at every 10th sample, and a fit ``I(q) = Y·(q/1 BTC)^δ`` (free δ, and δ = ½) of the median
  curve over 0.5…50 BTC (below 0.5 BTC the cost is the half spread);
- **impact, realised**: per taker order (trades grouped by taker id), the mid move from just
  before its first fill to 1 s after its last, in its direction, against its size; square-root
  and power fits (the quality is reported as it is);
- **resilience**: for each taker order that removed at least 5 % of the depth within 2 bps of
  the pre-trade mid on its side, that depth at τ = 0.05…60 s after it as a ratio to its
  pre-trade value; the median ratio ``ρ(τ)`` over those orders gives the recovery ``R(τ) =
  (ρ(τ) − ρ(0⁺))/(1 − ρ(0⁺))``, fitted by ``1 − 2^(−τ/h)`` for τ ≤ 10 s (later, the price has
  moved away from the reference).

Writes ``OUT/orderbook_model.json`` and three PNGs (``orderbook_depth.png``,
``orderbook_impact.png``, ``orderbook_resilience.png``); docs/liquidation.md quotes them.
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from margin_engine.analysis.liquidation.orderbook_fit import (
    book_impact,
    fit_half_life,
    fit_power_law,
    fit_sqrt,
)

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data" / "real"
EVENTS = "bitstamp_btcusd_l3_order_events_2026-05-02_0236-0306utc.csv.gz"
TRADES = "bitstamp_btcusd_trades_2026-05-02_0236-0306utc.csv"
DEPTH_BPS = (1, 2, 5, 10, 25, 50, 100)
SIZES = np.exp(np.linspace(math.log(0.01), math.log(50.0), 40))
TAUS = (0.05, 0.1, 0.2, 0.5, 1, 2, 5, 10, 30, 60)
RES_BPS = 2.0
FIT_MIN_BTC = 0.5  # below, the cost is the half spread (one level); liquidations are larger
RES_MIN_DROP = 0.05
RES_FIT_MAX_S = 10.0
BAND = 0.02  # levels further than 2 % from the snapshot mid are junk (SOURCES.md §6 caveat)


class Book:
    """The replayed order-level book: order id → (side, price, size) and size per price.

    The t=0 snapshot's order ids (REST ``order_book?group=2``) mostly do not match the live
    stream's (only 218 of 6,512 ever get a live event before the synthetic close), so a
    snapshot order filled or cancelled later is never deleted. We therefore remove snapshot
    orders that a newer live order crosses (a live bid at ``p`` removes snapshot asks at ``≤ p``,
    and vice versa): without it the replayed book is crossed (median spread −6 bps).
    """

    def __init__(self) -> None:
        self.orders: dict[int, tuple[bool, float, float]] = {}
        self.levels: tuple[dict[float, float], dict[float, float]] = ({}, {})
        self.snapshot_time: int | None = None
        self.snap: tuple[list[tuple[float, int]], list[tuple[float, int]]] = ([], [])

    def freeze_snapshot(self) -> None:
        """Mark the orders now in the book as the snapshot's."""
        bids = sorted((p, oid) for oid, (b, p, _) in self.orders.items() if b)
        asks = sorted(((p, oid) for oid, (b, p, _) in self.orders.items() if not b),
                      reverse=True)
        self.snap = (bids, asks)  # both popped from the end: highest bid, lowest ask

    def _uncross(self, is_bid: bool, price: float) -> None:
        stack = self.snap[1] if is_bid else self.snap[0]
        while stack and (stack[-1][0] <= price if is_bid else stack[-1][0] >= price):
            _, oid = stack.pop()
            old = self.orders.pop(oid, None)
            if old is not None:
                self._add(old[0], old[1], -old[2])

    def _add(self, is_bid: bool, price: float, size: float) -> None:
        lv = self.levels[0 if is_bid else 1]
        v = lv.get(price, 0.0) + size
        if v <= 1e-12:
            lv.pop(price, None)
        else:
            lv[price] = v

    def apply(self, oid: int, action: str, is_bid: bool, price: float, size: float) -> None:
        old = self.orders.pop(oid, None)
        if old is not None:
            self._add(old[0], old[1], -old[2])
        if action != "deleted" and size > 0:
            if action == "created" and self.snap != ([], []):
                self._uncross(is_bid, price)
            self.orders[oid] = (is_bid, price, size)
            self._add(is_bid, price, size)

    def side(self, is_bid: bool, lo: float, hi: float) -> tuple[np.ndarray, np.ndarray]:
        """Prices and sizes of one side within ``[lo, hi]``, best first."""
        lv = self.levels[0 if is_bid else 1]
        items = sorted(((p, s) for p, s in lv.items() if lo <= p <= hi), reverse=is_bid)
        if not items:
            return np.empty(0), np.empty(0)
        arr = np.asarray(items)
        return arr[:, 0], arr[:, 1]


def replay(events: pd.DataFrame, times: np.ndarray, mid0: float) -> list[dict[str, Any]]:
    """Book states after all events with exchange time ≤ each of ``times`` (sorted, ms)."""
    lo, hi = mid0 * (1 - BAND), mid0 * (1 + BAND)
    book = Book()
    ts = events["exchange_timestamp"].to_numpy()
    ids = events["id"].to_numpy()
    act = events["action"].to_numpy()
    bid = (events["direction"] == "bid").to_numpy()
    px = events["price"].to_numpy()
    vol = events["volume"].to_numpy()
    out = []
    i, n = 0, len(ts)
    t0 = ts[0]
    while i < n and ts[i] == t0:
        book.apply(int(ids[i]), act[i], bool(bid[i]), float(px[i]), float(vol[i]))
        i += 1
    book.freeze_snapshot()
    for t in times:
        while i < n and ts[i] <= t:
            book.apply(int(ids[i]), act[i], bool(bid[i]), float(px[i]), float(vol[i]))
            i += 1
        bp, bs = book.side(True, lo, hi)
        ap, as_ = book.side(False, lo, hi)
        out.append({"t": int(t), "bp": bp, "bs": bs, "ap": ap, "as": as_})
    return out


def mid(state: dict[str, Any]) -> float:
    return 0.5 * (state["bp"][0] + state["ap"][0]) if len(state["bp"]) and len(state["ap"]) \
        else math.nan


def side_depth(state: dict[str, Any], is_bid: bool, ref: float, bps: float) -> float:
    p, s = (state["bp"], state["bs"]) if is_bid else (state["ap"], state["as"])
    return float(s[np.abs(p - ref) <= ref * bps / 1e4].sum())


def taker_orders(trades: pd.DataFrame) -> pd.DataFrame:
    """Trades grouped by taker order: side, size, first and last exchange time."""
    t = trades.copy()
    t["taker"] = np.where(t["side"] == "buy", t["buy_order_id"], t["sell_order_id"])
    g = t.groupby(["taker", "side"], sort=False).agg(
        size=("amount", "sum"), t0=("exchange_timestamp", "min"),
        t1=("exchange_timestamp", "max")).reset_index()
    return g.sort_values("t0").reset_index(drop=True)


def run(data: Path, out: Path) -> dict[str, Any]:
    events = pd.read_csv(data / EVENTS)
    trades = pd.read_csv(data / TRADES)
    t_start, t_end = int(events["exchange_timestamp"].min()), int(
        events["exchange_timestamp"].max())
    snap = replay(events, np.array([t_start]), float(events["price"].median()))
    mid0 = mid(snap[0])
    grid = np.arange(t_start, t_end - 120_000, 1000)
    takers = taker_orders(trades)
    sample_t = [grid]
    for r in takers.itertuples():
        sample_t.append(np.array([r.t0 - 1, r.t1, r.t1 + 1000]
                                 + [r.t1 + int(1000 * x) for x in TAUS]))
    times = np.unique(np.concatenate(sample_t))
    states = replay(events, times, mid0)
    at = {s["t"]: s for s in states}

    # depth curves
    depth: dict[str, dict[int, dict[str, float]]] = {"bid": {}, "ask": {}}
    for bps in DEPTH_BPS:
        for name, is_bid in (("bid", True), ("ask", False)):
            vals = [side_depth(at[int(t)], is_bid, mid(at[int(t)]), bps) for t in grid]
            depth[name][bps] = {"median": float(np.nanmedian(vals)),
                                "p10": float(np.nanpercentile(vals, 10)),
                                "p90": float(np.nanpercentile(vals, 90))}
    spreads = [(at[int(t)]["ap"][0] - at[int(t)]["bp"][0]) / mid(at[int(t)]) * 1e4 for t in grid]

    # static impact: walk the book at every 10th second
    curves = []
    for t in grid[::10]:
        s = at[int(t)]
        m = mid(s)
        sell = book_impact(s["bp"], s["bs"], m, SIZES)
        buy = book_impact(s["ap"], s["as"], m, SIZES)
        curves.append(0.5 * (sell + buy))
    curve = np.nanmedian(np.asarray(curves), axis=0)
    big = SIZES >= FIT_MIN_BTC
    static_power = fit_power_law(SIZES[big], curve[big])
    static_sqrt = fit_sqrt(SIZES[big], curve[big])

    # realised impact per taker order
    rows = []
    for r in takers.itertuples():
        m0, m1 = mid(at[r.t0 - 1]), mid(at[r.t1 + 1000])
        sign = 1 if r.side == "buy" else -1
        rows.append((float(r.size), sign * (m1 - m0) / m0))
    real = np.asarray(rows)
    real_sqrt = fit_sqrt(real[:, 0], real[:, 1])
    pos = real[real[:, 1] > 0]
    real_power = fit_power_law(pos[:, 0], pos[:, 1]) if len(pos) >= 3 else None

    # resilience: depth within RES_BPS of the pre-trade mid on the hit side, as a ratio to
    # its pre-trade value, median over taker orders that removed at least RES_MIN_DROP of it
    ratios = []
    for r in takers.itertuples():
        is_bid = r.side == "sell"  # a sell hits the bids
        before = at[r.t0 - 1]
        ref = mid(before)
        d0 = side_depth(before, is_bid, ref, RES_BPS)
        d1 = side_depth(at[r.t1], is_bid, ref, RES_BPS)
        if d0 <= 0 or (d0 - d1) / d0 < RES_MIN_DROP:
            continue
        ratios.append([d1 / d0] + [side_depth(at[r.t1 + int(1000 * x)], is_bid, ref, RES_BPS)
                                   / d0 for x in TAUS])
    rat = np.asarray(ratios)
    med = np.median(rat, axis=0)
    rec = (med[1:] - med[0]) / (1.0 - med[0])
    fit_mask = np.asarray(TAUS) <= RES_FIT_MAX_S
    hl = fit_half_life(np.asarray(TAUS)[fit_mask], rec[fit_mask])

    result = {
        "source": "shared/data/real " + EVENTS + " and " + TRADES + " (SOURCES.md §6)",
        "window_utc": "2026-05-02 02:36:20 – 03:06:20",
        "mid_at_start": mid0, "events": len(events), "trades": len(trades),
        "taker_orders": len(takers), "samples": len(grid),
        "spread_bps": {"median": float(np.median(spreads)),
                       "p90": float(np.percentile(spreads, 90))},
        "depth_btc": {k: {str(b): v for b, v in d.items()} for k, d in depth.items()},
        "static_impact": {
            "fit_min_btc": FIT_MIN_BTC,
            "sizes_btc": [float(x) for x in SIZES], "median_relative_cost": [
                None if math.isnan(x) else float(x) for x in curve],
            "power": vars(static_power), "sqrt": vars(static_sqrt)},
        "realised_impact": {"n": len(real), "sqrt": vars(real_sqrt),
                            "power_positive_moves": vars(real_power) if real_power else None,
                            "share_zero_move": float(np.mean(real[:, 1] == 0))},
        "resilience": {"depth_bps": RES_BPS, "min_drop": RES_MIN_DROP, "events": len(rat),
                       "tau_s": list(TAUS), "median_depth_ratio_after": float(med[0]),
                       "median_depth_ratio": [float(x) for x in med[1:]],
                       "recovery": [float(x) for x in rec], "fit_max_s": RES_FIT_MAX_S,
                       "half_life_s": hl.half_life, "rmse": hl.rmse},
    }
    out.mkdir(parents=True, exist_ok=True)
    (out / "orderbook_model.json").write_text(json.dumps(result, indent=1) + "\n")
    _plots(result, real, rat, out)
    return result


def _plots(res: dict[str, Any], real: np.ndarray, rec: np.ndarray, out: Path) -> None:
    fig, ax = plt.subplots(figsize=(6, 4))
    for side, c in (("bid", "tab:green"), ("ask", "tab:red")):
        d = res["depth_btc"][side]
        x = [int(b) for b in d]
        ax.plot(x, [d[b]["median"] for b in d], "o-", color=c, label=f"{side} median")
        ax.fill_between(x, [d[b]["p10"] for b in d], [d[b]["p90"] for b in d], color=c,
                        alpha=0.15, label=f"{side} 10–90 %")
    ax.set_xscale("log")
    ax.set_xlabel("distance from mid (bps)")
    ax.set_ylabel("cumulative depth (BTC)")
    ax.set_title("Bitstamp BTC/USD depth, 2026-05-02 02:36–03:06 UTC")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out / "orderbook_depth.png", dpi=110)
    plt.close(fig)

    fig, ax = plt.subplots(figsize=(6, 4))
    si = res["static_impact"]
    q = np.asarray(si["sizes_btc"])
    cost = np.asarray([np.nan if v is None else v for v in si["median_relative_cost"]])
    ax.loglog(q, cost * 1e4, "k.", label="book walk, median (static)")
    p, s = si["power"], si["sqrt"]
    q = q[q >= si["fit_min_btc"]]
    ax.loglog(q, p["y"] * q ** p["delta"] * 1e4, "b-",
              label=f"power fit δ={p['delta']:.2f}, R²={p['r2']:.3f}")
    ax.loglog(q, s["y"] * np.sqrt(q) * 1e4, "b--", label=f"√ fit, R²={s['r2']:.3f}")
    pos = real[real[:, 1] > 0]
    ax.loglog(pos[:, 0], pos[:, 1] * 1e4, "r+", alpha=0.6,
              label="realised mid move, taker orders (>0)")
    ax.set_xlabel("order size (BTC)")
    ax.set_ylabel("impact (bps)")
    ax.legend(fontsize=7)
    ax.set_title("Price impact")
    fig.tight_layout()
    fig.savefig(out / "orderbook_impact.png", dpi=110)
    plt.close(fig)

    fig, ax = plt.subplots(figsize=(6, 4))
    r = res["resilience"]
    tau = np.asarray(r["tau_s"])
    for row in rec:
        ax.plot(tau, row[1:], color="0.85", lw=0.6)
    ax.plot(tau, r["median_depth_ratio"], "ko-", label=f"median of {r['events']} taker orders")
    tt = np.linspace(tau.min(), tau.max(), 400)
    d1 = r["median_depth_ratio_after"]
    ax.plot(tt, 1 - (1 - d1) * 2 ** (-tt / r["half_life_s"]), "b-",
            label=f"fit (τ ≤ {r['fit_max_s']:g} s): h = {r['half_life_s']:.2f} s")
    ax.axhline(1.0, color="0.5", lw=0.5)
    ax.set_xscale("log")
    ax.set_ylim(0, 2)
    ax.set_xlabel("seconds after the taker order (log)")
    ax.set_ylabel(f"depth within {r['depth_bps']:g} bps of pre-trade mid / before")
    ax.legend(fontsize=8)
    ax.set_title("Resilience")
    fig.tight_layout()
    fig.savefig(out / "orderbook_resilience.png", dpi=110)
    plt.close(fig)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=DATA)
    ap.add_argument("--out", type=Path, default=ROOT / "docs" / "study")
    args = ap.parse_args(argv)
    res = run(args.data, args.out)
    print(json.dumps({k: res[k] for k in ("spread_bps", "static_impact", "realised_impact",
                                          "resilience")}, default=str)[:2000])


if __name__ == "__main__":
    main()
