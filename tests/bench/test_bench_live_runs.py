"""`python -m bench.bench_live` runs from a clean clone for every model it benchmarks (tiny
sizes: this checks the benchmark works, not how fast anything is)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
MODELS = ("binance-usdm", "filtered-es", "deribit-pm", "derive-pmrm", "span", "okx-pm",
          "hyperliquid", "dydx-v4", "deribit-standard")


@pytest.mark.slow
def test_every_model_of_the_live_bench_runs_and_reports_its_figures():
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), str(ROOT / "src")])}
    res = subprocess.run(
        [sys.executable, "-m", "bench.bench_live", "--models", ",".join(MODELS),
         "--accounts", "60", "--instruments", "500", "--ticks", "2", "--risk-ticks", "2",
         "--whatif-calls", "20", "--naive-sample", "1", "--no-growth",
         "--reference-accounts", "20"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=600, check=False)
    assert res.returncode == 0, res.stdout[-2000:] + res.stderr[-3000:]
    out = res.stdout
    for name in MODELS:
        section = out.split(f"--- {name}: ", 1)
        assert len(section) == 2, f"no section for {name}"
        body = section[1].split("\n---", 1)[0]
        for figure in ("1. full re-margin: ", "2. tick-to-margin", "3. what-if"):
            assert figure in body, (name, figure)
        assert f"--- {name} vs the reference engine" in out, name
    assert not re.search(r"\bnan\b|\binf\b", out, re.I)
