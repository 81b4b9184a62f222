"""HTML report with PNG plots for one or several backtests (issue 5, "Reports").

:func:`write_report` writes ``index.html`` (one self-contained file: the plots are embedded as
base64 PNG) and the same plots as ``png/*.png``. The page opens with the comparison of every
run (a table of headline figures, margin as a share of notional over time, bar charts of
exceedance rate, capital cost and procyclicality), then one section per run: price and margin
over time with exceedances marked, realised loss against margin, the rolling 250-day traffic
light, the traffic-light table per calendar year and the procyclicality figures.

Plots use matplotlib's object API with the Agg canvas (no global pyplot state, no display).
"""

from __future__ import annotations

import base64
import html
import io
import re
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from margin_engine.analysis import backtest_stats as bs
from margin_engine.analysis.backtest import BacktestResult, summary_rows

if TYPE_CHECKING:  # pragma: no cover
    from matplotlib.figure import Figure

__all__ = ["write_report"]

_ZONE_COLOURS = {"green": "#2e7d32", "yellow": "#f9a825", "red": "#c62828"}
_PALETTE = ["#1f77b4", "#ff7f0e", "#2ca02c", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f",
            "#bcbd22", "#17becf", "#d62728"]


def _figure(width: float = 10.0, height: float = 4.0) -> Figure:
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError:  # pragma: no cover - depends on the environment
        raise RuntimeError("the HTML report needs matplotlib (pip install matplotlib)") from None
    fig = Figure(figsize=(width, height), dpi=100, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def _slug(text: str, k: int) -> str:
    s = re.sub(r"[^A-Za-z0-9]+", "-", text).strip("-").lower()
    return f"{k:02d}-{s or 'run'}"


def _save(fig: Figure, path: Path) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    data = buf.getvalue()
    path.write_bytes(data)
    return base64.b64encode(data).decode("ascii")


def _price_margin(r: BacktestResult) -> Figure:
    fig = _figure(10.0, 6.0)
    top, bottom = fig.subplots(2, 1, sharex=True, height_ratios=(1, 1.4))
    unds = list(r.prices)
    for k, u in enumerate(unds):
        p = r.prices[u]
        if len(unds) > 1:
            first = p[np.isfinite(p)][0]
            top.plot(r.dates, 100 * p / first, lw=1, color=_PALETTE[k % 10], label=u)
        else:
            top.plot(r.dates, p, lw=1, color=_PALETTE[0], label=u)
    top.set_yscale("log")
    top.set_ylabel("index (start = 100)" if len(unds) > 1 else f"{unds[0]} price (USD)"
                   if unds else "price")
    top.legend(loc="upper left", fontsize=8)
    top.grid(alpha=0.3)
    top.set_title(f"{r.label}: price and margin ({r.horizon_days}-day horizon)")
    bottom.vlines(r.dates, 0, np.maximum(r.realised_loss, 0), color="#8a8a8a", lw=0.6,
                  label="realised loss")
    if r.controller is not None and not np.array_equal(r.margin, r.model_margin):
        bottom.plot(r.dates, r.model_margin, lw=0.8, color="#90caf9", label="model margin")
    bottom.plot(r.dates, r.margin, lw=1.1, color=_PALETTE[0], label=f"{r.margin_kind} margin")
    x = r.exceedance
    bottom.scatter(r.dates[x], r.realised_loss[x], s=14, color=_ZONE_COLOURS["red"], zorder=3,
                   label=f"exceedance ({int(x.sum())})")
    bottom.set_ylabel(f"{r.currency}")
    bottom.set_ylim(bottom=0)
    # above the axis, in one row: inside it would hide the largest losses
    bottom.legend(loc="lower left", bbox_to_anchor=(0.0, 1.0), ncol=4, fontsize=8,
                  frameon=False, borderaxespad=0.2)
    bottom.grid(alpha=0.3)
    return fig


def _loss_vs_margin(r: BacktestResult) -> Figure:
    fig = _figure(5.5, 5.0)
    ax = fig.subplots()
    x = r.exceedance
    ax.scatter(r.margin[~x], r.realised_loss[~x], s=5, alpha=0.5, color=_PALETTE[0],
               label=f"covered, loss ≤ margin ({int((~x).sum())})")
    ax.scatter(r.margin[x], r.realised_loss[x], s=14, color=_ZONE_COLOURS["red"],
               label=f"exceedance ({int(x.sum())})")
    hi = float(max(np.max(r.margin), np.max(r.realised_loss), 0.0)) * 1.05 or 1.0
    ax.plot([0, hi], [0, hi], color="black", lw=0.8, ls="--", label="loss = margin")
    ax.set_xlim(0, hi)
    ax.set_xlabel(f"margin ({r.currency})")
    ax.set_ylabel(f"realised loss over {r.horizon_days} d ({r.currency})")
    ax.set_title(f"{r.label}: realised loss vs margin")
    ax.legend(loc="lower right", fontsize=8)  # large margins with a loss: the empty corner
    ax.grid(alpha=0.3)
    return fig


def _rolling_exceptions(flags: np.ndarray, window: int = 250) -> np.ndarray:
    c = np.concatenate([[0], np.cumsum(flags.astype(np.int64))])
    out = np.full(flags.size, np.nan)
    if flags.size >= window:
        out[window - 1:] = c[window:] - c[:-window]
    return out


def _share_and_light(r: BacktestResult) -> Figure:
    from matplotlib.patches import Patch
    from matplotlib.ticker import MaxNLocator

    fig = _figure(10.0, 5.4)
    top, bottom = fig.subplots(2, 1, sharex=True)
    with np.errstate(divide="ignore", invalid="ignore"):
        share = np.where(r.notional > 0, r.margin / r.notional, np.nan)
    top.plot(r.dates, 100 * share, lw=1, color=_PALETTE[0],
             label=f"{r.margin_kind} margin / notional (both in {r.currency})")
    top.set_ylabel(f"% of notional ({r.currency})")
    hi = float(np.nanmax(share)) * 100 if np.isfinite(share).any() else 1.0
    top.set_ylim(0, hi * 1.15 if hi > 0 else 1.0)
    top.grid(alpha=0.3)
    top.legend(loc="lower left", fontsize=8)
    top.set_title(f"{r.label}: margin as a share of notional, rolling 250-day exceptions")
    roll = _rolling_exceptions(r.exceedance)
    p = 1.0 - r.statistics.confidence
    green, yellow = bs.basel_zone_bounds(250, p)
    top_y = max(float(np.nanmax(roll)) if np.isfinite(roll).any() else 0.0, yellow + 2)
    bottom.axhspan(-0.5, green + 0.5, color=_ZONE_COLOURS["green"], alpha=0.12, lw=0)
    bottom.axhspan(green + 0.5, yellow + 0.5, color=_ZONE_COLOURS["yellow"], alpha=0.18, lw=0)
    y_max = (top_y + 1) * 1.35  # room above the data for the legend
    bottom.axhspan(yellow + 0.5, y_max, color=_ZONE_COLOURS["red"], alpha=0.12, lw=0)
    (count,) = bottom.step(r.dates, roll, where="post", color="black", lw=1,
                           label="exceptions in the last 250 days")
    expected = bottom.axhline(250 * p, color="black", ls=":", lw=0.8,
                              label=f"expected: 250 × {100 * p:g}% = {250 * p:g}")
    bands = [Patch(color=_ZONE_COLOURS["green"], alpha=0.3, label=f"green zone: 0–{green}"),
             Patch(color=_ZONE_COLOURS["yellow"], alpha=0.4,
                   label=f"yellow zone: {green + 1}–{yellow}"),
             Patch(color=_ZONE_COLOURS["red"], alpha=0.3, label=f"red zone: ≥ {yellow + 1}")]
    if not np.isfinite(roll).any():
        bottom.text(0.5, 0.5, f"fewer than 250 days ({r.n_days}): no rolling count",
                    transform=bottom.transAxes, ha="center", va="center", fontsize=9)
    bottom.legend(handles=[count, expected, *bands], loc="upper left", fontsize=7, ncol=2,
                  title=f"Basel traffic light (250 days, p = {p:g})", title_fontsize=7)
    bottom.set_ylim(-0.5, y_max)
    bottom.yaxis.set_major_locator(MaxNLocator(integer=True))
    bottom.set_ylabel("exceptions in last 250 d")
    bottom.grid(alpha=0.3)
    return fig


def _run_name(r: BacktestResult) -> str:
    """The run's label with its margin currency, for legends and bar labels."""
    return f"{r.label} [{r.currency}]"


def _comparison_share(results: Sequence[BacktestResult]) -> Figure:
    """Margin / notional over time, one panel per margin currency: a coin-margined run's share
    (BTC margin / BTC notional) is not drawn on the axis of USD-margined runs."""
    groups: dict[str, list[int]] = {}
    for k, r in enumerate(results):
        groups.setdefault(r.currency, []).append(k)
    fig = _figure(10.0, 1.0 + 3.0 * len(groups))
    axes = np.atleast_1d(fig.subplots(len(groups), 1, sharex=True, squeeze=False)[:, 0])
    for ax, (ccy, idx) in zip(axes, groups.items(), strict=True):
        hi = 0.0
        for k in idx:
            r = results[k]
            with np.errstate(divide="ignore", invalid="ignore"):
                share = np.where(r.notional > 0, r.margin / r.notional, np.nan)
            ax.plot(r.dates, 100 * share, lw=1, color=_PALETTE[k % 10], label=_run_name(r))
            if np.isfinite(share).any():
                hi = max(hi, 100 * float(np.nanmax(share)))
        ax.set_ylabel(f"% of {ccy} notional")
        ax.set_ylim(0, hi * 1.15 if hi > 0 else 1.0)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0)
        ax.set_title(f"margin in {ccy} as a share of notional in {ccy}", fontsize=10)
    return fig


def _comparison_bars(results: Sequence[BacktestResult]) -> Figure:
    fig = _figure(10.0, 3.6)
    axes = fig.subplots(1, 4)
    labels = [_run_name(r) for r in results]
    colours = [_PALETTE[k % 10] for k in range(len(results))]
    ypos = np.arange(len(results))

    def bars(ax: Any, values: list[float | None], title: str, ref: float | None = None,
             unit: str = "") -> None:
        v = np.array([np.nan if x is None else x for x in values], dtype=float)
        ax.barh(ypos, np.nan_to_num(v), color=colours)
        top = float(np.nanmax(np.append(v, ref if ref is not None else 0.0)))
        low = min(0.0, float(np.nanmin(np.append(v, 0.0))))  # a fall (negative rise) shows
        ax.set_xlim(1.3 * low, (top if top > 0 else 1.0) * 1.3)
        for y, x in zip(ypos, v, strict=True):
            ax.text(0 if not np.isfinite(x) else x, y, " n/a" if not np.isfinite(x)
                    else f" {x if abs(x) > 1e-9 else 0.0:.3g}{unit}", va="center", fontsize=8)
        if ref is not None:
            ax.axvline(ref, color="black", ls="--", lw=0.8, label=f"target {ref:g}{unit}")
            ax.legend(fontsize=7, loc="lower right")
        ax.set_title(title, fontsize=9)
        ax.set_yticks(ypos, labels if ax is axes[0] else [""] * len(labels), fontsize=8)
        ax.invert_yaxis()
        ax.grid(axis="x", alpha=0.3)
        ax.tick_params(axis="x", labelsize=8)

    st = [r.statistics for r in results]
    bars(axes[0], [100 * s.coverage.exception_rate for s in st], "exception rate",
         100 * (1.0 - st[0].confidence), unit="%")
    bars(axes[1], [None if s.margin_share is None else 100 * s.margin_share.mean_share
                   for s in st], "mean margin, % of notional\n(each in its margin currency)",
         unit="%")
    bars(axes[2], [None if s.procyclicality_of_share is None
                   else s.procyclicality_of_share.peak_to_trough.ratio for s in st],
         "peak-to-trough (share)")
    bars(axes[3], [None if s.procyclicality_of_share is None or
                   5 not in [n.horizon for n in s.procyclicality_of_share.n_day]
                   else 100 * (s.procyclicality_of_share.ratio(5) - 1) for s in st],
         "largest 5-day rise (share), %")
    return fig


# ---------------------------------------------------------------------------------------------
# HTML
# ---------------------------------------------------------------------------------------------


def _fmt(v: Any, kind: str = "") -> str:
    if v is None:
        return "—"
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, int | np.integer):
        return f"{int(v):,}"
    if isinstance(v, float | np.floating):
        v = float(v)
        if not np.isfinite(v):
            return "—"
        if kind == "pct":
            return f"{100 * v:.2f}%"
        if kind == "p":
            return f"{v:.4f}"
        if abs(v) >= 1000:
            return f"{v:,.0f}"
        return f"{v:.4g}"
    return html.escape(str(v))


def _zone(z: str | None) -> str:
    if z is None:
        return "—"
    return f'<span class="zone" style="background:{_ZONE_COLOURS[z]}">{html.escape(z)}</span>'


def _table(head: Sequence[str], rows: Sequence[Sequence[str]], cls: str = "") -> str:
    th = "".join(f"<th>{html.escape(h)}</th>" for h in head)
    body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in row) + "</tr>" for row in rows)
    return f'<table class="{cls}"><thead><tr>{th}</tr></thead><tbody>{body}</tbody></table>'


def _img(b64: str, alt: str) -> str:
    return f'<img alt="{html.escape(alt)}" src="data:image/png;base64,{b64}">'


def _summary_table(results: Sequence[BacktestResult]) -> str:
    rows = []
    for row, r in zip(summary_rows(results), results, strict=True):
        pcs = r.statistics.procyclicality_of_share
        rows.append([
            html.escape(row["label"]), html.escape(r.currency), _fmt(row["horizon_days"]),
            _fmt(row["days"]),
            f"{row['exceedances']} / {row['expected']:.1f}", _fmt(row["coverage"], "pct"),
            _fmt(row["kupiec_p"], "p"), _fmt(row["christoffersen_cc_p"], "p"),
            "— (< 250 d)" if row["zone_worst_250"] is None else
            f"{_zone(row['zone_worst_250'])} {row['exceptions_worst_250']} "
            f"({row['worst_250_first']} … {row['worst_250_last']})",
            _fmt(row["z2"], "p"), _fmt(row["mean_margin_share"], "pct"),
            _fmt(row["peak_to_trough"]),
            _fmt(None if pcs is None else pcs.peak_to_trough.ratio),
            _fmt(row["max_5d_increase"], "pct"),
            _fmt(None if pcs is None or 5 not in [n.horizon for n in pcs.n_day]
                 else pcs.ratio(5) - 1, "pct")])
    return _table(["run", "ccy", "h", "days", "exceed. / expected", "coverage", "Kupiec p",
                   "Christoffersen cc p", "worst 250 d", "Z2", "mean margin / notional",
                   "peak-to-trough", "… of share", "max 5-d rise", "… of share"], rows, "num")


def _run_section(r: BacktestResult, imgs: dict[str, str]) -> str:
    st = r.statistics
    p = 1.0 - st.confidence
    parts = [f'<section><h2 id="{html.escape(imgs["slug"])}">{html.escape(r.label)}</h2>']
    parts.append(
        f"<p>model <b>{html.escape(r.model)}</b> {html.escape(r.model_version)} (params "
        f"<code>{html.escape(r.params_hash)}</code>), account {html.escape(r.account)}, "
        f"{html.escape(r.margin_kind)} margin in {html.escape(r.currency)}, horizon "
        f"{r.horizon_days} d, target coverage {st.confidence:.2%}; {r.n_days:,} days "
        f"{r.dates[0]} … {r.dates[-1]} ({len(r.skipped)} skipped); controller: "
        f"{html.escape(r.controller or 'none')}; history: {html.escape(r.history_source)}</p>")
    parts.append(_img(imgs["price_margin"], "price and margin"))
    parts.append('<div class="row">' + _img(imgs["loss_vs_margin"], "loss vs margin")
                 + _img(imgs["share_light"], "share and traffic light") + "</div>")
    ch = st.christoffersen
    tests = [
        ["exceedances", f"{st.coverage.n_exceptions} of {st.coverage.n_obs} "
         f"(expected {p * st.coverage.n_obs:.1f})"],
        ["coverage", _fmt(st.coverage.coverage, "pct")],
        ["Kupiec POF LR (p-value)", f"{st.kupiec.lr:.3f} ({st.kupiec.p_value:.4f})"],
        ["Christoffersen independence LR (p)",
         "—" if ch is None else f"{ch.lr_ind:.3f} ({ch.p_value_ind:.4f})"],
        ["Christoffersen conditional coverage LR (p)",
         "—" if ch is None else f"{ch.lr_cc:.3f} ({ch.p_value_cc:.4f})"],
        *([[f"non-overlapping days (every {st.non_overlapping.step}): Kupiec p, "
             "Christoffersen cc p",
             f"{st.non_overlapping.kupiec.p_value:.4f}, "
             + ("—" if st.non_overlapping.christoffersen is None
                else f"{st.non_overlapping.christoffersen.p_value_cc:.4f}")]]
          if st.non_overlapping is not None else []),
        ["Acerbi–Szekely Z2 (zone)", "—" if st.z2 is None
         else f"{st.z2.z2:.4f} {_zone(st.z2.zone)} (α = {st.z2.alpha:g})"],
        ["largest realised loss", _fmt(st.max_loss)],
        ["mean margin", _fmt(st.mean_margin)],
        ["mean margin / notional", "—" if st.margin_share is None
         else _fmt(st.margin_share.mean_share, "pct")]]
    parts.append("<h3>coverage tests</h3>" + _table(["statistic", "value"], tests))
    tl = st.traffic_light_last_250
    light_rows = []
    ww = st.traffic_light_worst_250
    if ww is not None:
        w = ww.traffic_light
        light_rows.append([f"worst 250 days ({ww.first_day} … {ww.last_day})",
                           _fmt(w.n_exceptions), _zone(w.zone),
                           _fmt(w.cumulative_probability, "p"), _fmt(w.plus_factor, "p")])
    light_rows.append(["last " + str(tl.n_obs) + " days", _fmt(tl.n_exceptions),
                       _zone(tl.zone), _fmt(tl.cumulative_probability, "p"),
                       _fmt(tl.plus_factor, "p")])
    for y in st.traffic_light_by_year:
        t = y.traffic_light
        if t is None:  # no zone on fewer than 250 days
            light_rows.append([f"{y.year} ({y.n_obs} d)", _fmt(y.n_exceptions),
                               "— (< 250 d)", "—", "—"])
            continue
        light_rows.append([f"{y.year} ({t.n_obs} d)", _fmt(t.n_exceptions), _zone(t.zone),
                           _fmt(t.cumulative_probability, "p"), _fmt(t.plus_factor, "p")])
    parts.append("<h3>Basel traffic light</h3>" + _table(
        ["window", "exceptions", "zone", "P(X ≤ x)", "plus factor"], light_rows))
    pc_rows = []
    for name, pc in (("margin", st.procyclicality),
                     ("margin / notional", st.procyclicality_of_share)):
        if pc is None:
            continue
        ptt = pc.peak_to_trough
        row = [name, f"{ptt.ratio:.3f} (peak {r.dates[ptt.peak_index]}, trough "
               f"{r.dates[ptt.trough_index]})"]
        for n in (1, 5, 30):
            item = next((x for x in pc.n_day if x.horizon == n), None)
            row.append("—" if item is None else
                       f"{item.increase:+.1%} from {r.dates[item.start_index]}")
        pc_rows.append(row)
    if pc_rows:
        parts.append("<h3>procyclicality</h3>" + _table(
            ["series", "peak-to-trough", "largest 1-day rise", "largest 5-day rise",
             "largest 30-day rise"], pc_rows))
    if st.notes:
        parts.append("<p class='note'>" + "<br>".join(html.escape(n) for n in st.notes)
                     + "</p>")
    if r.controller_log:
        shown = r.controller_log[:200]
        parts.append(f"<h3>controller log ({len(r.controller_log)} entries"
                     f"{', first 200 shown' if len(r.controller_log) > 200 else ''})</h3>")
        parts.append(_table(["date", "entry"], [[html.escape(d), html.escape(str(e))]
                                                for d, e in shown]))
    parts.append("</section>")
    return "\n".join(parts)


def _dynamic_section(pairs: Sequence[tuple[BacktestResult, BacktestResult]]) -> str:
    if not pairs:
        return ""
    return ("<h3>dynamic controller: without → with, on the same days</h3>"
            "<p>The controller (policy.dynamic) multiplies the model's margin (the 25% buffer "
            "held in calm markets, released in volatility stress, a liquidity add-on) and "
            "applies the APC floor; procyclicality is measured on margin / notional.</p>"
            + _pairs_table(pairs))


_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:24px auto;
max-width:1100px;color:#222;line-height:1.4}
h1{font-size:1.6em}h2{border-top:2px solid #ddd;padding-top:14px;margin-top:36px}
table{border-collapse:collapse;margin:8px 0 16px;font-size:13px}
th,td{border:1px solid #ddd;padding:4px 8px;text-align:left;vertical-align:top}
th{background:#f4f4f4}table.num td{text-align:right}table.num td:first-child{text-align:left}
img{max-width:100%;margin:6px 0}.row{display:flex;gap:8px;flex-wrap:wrap}
.row img{max-width:49%}.zone{color:#fff;border-radius:3px;padding:0 6px;font-size:12px}
.note{color:#666;font-size:12px}code{font-size:12px}
"""


def _pairs_table(pairs: Sequence[tuple[BacktestResult, BacktestResult]]) -> str:
    """Each model without and with the dynamic controller, side by side (same days)."""
    rows = []
    for base, dyn in pairs:
        cells = [html.escape(base.label)]
        for a, b, kind in _pair_figures(base, dyn):
            cells.append(f"{_fmt(a, kind)} → {_fmt(b, kind)}")
        cells.append(_fmt(len(dyn.controller_log)))
        rows.append(cells)
    return _table(["model", "exceedances", "coverage", "Kupiec p", "mean margin / notional",
                   "peak-to-trough (share)", "max 1-d rise (share)", "max 5-d rise (share)",
                   "max 30-d rise (share)", "controller changes"], rows, "num")


def _pair_figures(base: BacktestResult, dyn: BacktestResult
                  ) -> list[tuple[Any, Any, str]]:
    def share_pc(r: BacktestResult) -> list[float | None]:
        pc = r.statistics.procyclicality_of_share
        if pc is None:
            return [None] * 4
        hs = [n.horizon for n in pc.n_day]
        return [pc.peak_to_trough.ratio,
                *[pc.ratio(n) - 1.0 if n in hs else None for n in (1, 5, 30)]]

    a, b = base.statistics, dyn.statistics
    out: list[tuple[Any, Any, str]] = [
        (a.coverage.n_exceptions, b.coverage.n_exceptions, ""),
        (a.coverage.coverage, b.coverage.coverage, "pct"),
        (a.kupiec.p_value, b.kupiec.p_value, "p"),
        (None if a.margin_share is None else a.margin_share.mean_share,
         None if b.margin_share is None else b.margin_share.mean_share, "pct")]
    for k, (x, y) in enumerate(zip(share_pc(base), share_pc(dyn), strict=True)):
        out.append((x, y, "" if k == 0 else "pct"))
    return out


def write_report(results: Sequence[BacktestResult], out_dir: str | Path, *,
                 title: str = "Margin model backtest",
                 pairs: Sequence[tuple[BacktestResult, BacktestResult]] = ()) -> Path:
    """Write ``out_dir/index.html`` (self-contained) and ``out_dir/png/*.png``; return the
    path of the HTML file.

    Parameters
    ----------
    results : one or more backtests (several are compared on the first part of the page)
    out_dir : created when missing; existing files of the same names are replaced
    title : the page title
    pairs : (without, with) the dynamic controller, for the side-by-side table that follows
        the comparison (``margin-engine backtest --dynamic``)
    """
    if not results:
        raise ValueError("results: give at least one backtest")
    out = Path(out_dir)
    png = out / "png"
    png.mkdir(parents=True, exist_ok=True)
    sections = []
    for k, r in enumerate(results):
        slug = _slug(r.label, k)
        imgs = {"slug": slug}
        for key, make in (("price_margin", _price_margin), ("loss_vs_margin", _loss_vs_margin),
                          ("share_light", _share_and_light)):
            imgs[key] = _save(make(r), png / f"{slug}-{key.replace('_', '-')}.png")
        sections.append(_run_section(r, imgs))
    cmp_share = _save(_comparison_share(results), png / "comparison-margin-share.png")
    cmp_bars = _save(_comparison_bars(results), png / "comparison-bars.png")
    nav = " · ".join(f'<a href="#{_slug(r.label, k)}">{html.escape(r.label)}</a>'
                     for k, r in enumerate(results))
    doc = f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<style>{_CSS}</style></head><body>
<h1>{html.escape(title)}</h1>
<p>Margin set from data up to each day only; realised loss over the next horizon by full
revaluation; an exceedance is a loss above the margin. Statistics: coverage and Kupiec POF,
Christoffersen independence and conditional coverage, Basel traffic light, Acerbi–Szekely Z2
(ES models), margin as a share of notional, and procyclicality (peak-to-trough, largest 1/5/30-day
rise) on the margin and on margin / notional. Runs: {nav}</p>
<h2>comparison</h2>
{_summary_table(results)}
{_dynamic_section(pairs)}
{_img(cmp_share, "margin share comparison")}
{_img(cmp_bars, "comparison bars")}
{"".join(sections)}
</body></html>
"""
    path = out / "index.html"
    path.write_text(doc, encoding="utf-8")
    return path
