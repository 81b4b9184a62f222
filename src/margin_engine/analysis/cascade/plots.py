"""PNG figures of a cascade (matplotlib object API, Agg canvas; no global pyplot state)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from margin_engine.analysis.cascade.engine import CascadeResult


def plot_cascade(result: CascadeResult, path: str | Path, title: str = "") -> Path:
    """Two panels: each market's price with and without the cascade (relative to step 0), and
    the notional liquidated per step (book and ADL). Returns the file written."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(9.0, 6.0), layout="constrained")
    FigureCanvasAgg(fig)
    ax1, ax2 = fig.subplots(2, 1, sharex=True)
    steps = np.arange(result.price_with.shape[0])
    for j, sym in enumerate(result.symbols):
        base = result.price_without[0, j]
        line = ax1.plot(steps, result.price_without[:, j] / base, "--", lw=1.2,
                        label=f"{sym} without cascade")[0]
        ax1.plot(steps, result.price_with[:, j] / base, "-", lw=1.8, color=line.get_color(),
                 label=f"{sym} with cascade")
    ax1.set_ylabel("price / price at step 0")
    ax1.legend(fontsize=8, ncol=2)
    ax1.grid(alpha=0.3)
    book = np.zeros(steps.size)
    adl = np.zeros(steps.size)
    if result.rounds.size:
        s = result.rounds[:, 0].astype(np.int64)
        np.add.at(book, s, result.rounds[:, 3])
        np.add.at(adl, s, result.rounds[:, 4])
    ax2.bar(steps, book / 1e6, color="tab:red", label="liquidated on the book")
    ax2.bar(steps, adl / 1e6, bottom=book / 1e6, color="tab:purple", label="auto-deleveraged")
    ax2.set_ylabel("notional liquidated (USD m)")
    ax2.set_xlabel("step")
    ax2.legend(fontsize=8)
    ax2.grid(alpha=0.3)
    fig.suptitle(title or f"{result.model}: cascade ({result.accounts_liquidated:,} accounts "
                 f"liquidated, {result.liquidated_usd / 1e6:,.2f} m USD)", fontsize=10)
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=100)
    return out
