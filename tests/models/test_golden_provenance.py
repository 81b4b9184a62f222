"""Every golden case says where its numbers come from (issue 8 §6): a top-level
``"provenance"`` — ``published`` (the venue's or the methodology owner's own numbers: docs,
test files of its code, captured live output), ``peer`` (another implementation's output) or
``derived`` (worked from published rules and checked by a computation that does not share the
model's code) — and a ``"source"`` saying which document, file or computation."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

GOLDEN = Path(__file__).resolve().parents[1] / "golden"
FILES = sorted(GOLDEN.glob("*/*.json"))
KINDS = {"published", "peer", "derived"}
#: Folders whose files other branches of issue 8 are marking (venue-deribit: deribit-*;
#: venue-span-okx-binance: span, okx-pm, binance-usdm). The lead empties this set at merge:
#: the xfail is strict, so a folder that passes while still listed fails the suite.
NOT_YET_MARKED = {"binance-usdm", "deribit-pm", "deribit-standard", "okx-pm", "span"}


def params() -> list:
    out = []
    for f in FILES:
        marks = [pytest.mark.xfail(strict=True, reason="marked on another branch of issue 8")
                 ] if f.parent.name in NOT_YET_MARKED else []
        out.append(pytest.param(f, id=f"{f.parent.name}/{f.name}", marks=marks))
    return out


def test_there_are_golden_files():
    assert len(FILES) > 30 and len({f.parent.name for f in FILES}) >= 8


@pytest.mark.parametrize("path", params())
def test_golden_case_says_where_its_numbers_come_from(path: Path):
    doc = json.loads(path.read_text())
    assert isinstance(doc, dict)
    assert doc.get("provenance") in KINDS, f"{path.name}: provenance {doc.get('provenance')!r}"
    source = doc.get("source")
    assert isinstance(source, str) and len(source) >= 20, f"{path.name}: no source"
