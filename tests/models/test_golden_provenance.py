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


def test_there_are_golden_files():
    assert len(FILES) > 30 and len({f.parent.name for f in FILES}) >= 8


@pytest.mark.parametrize("path", FILES, ids=[f"{f.parent.name}/{f.name}" for f in FILES])
def test_golden_case_says_where_its_numbers_come_from(path: Path):
    doc = json.loads(path.read_text())
    assert isinstance(doc, dict)
    assert doc.get("provenance") in KINDS, f"{path.name}: provenance {doc.get('provenance')!r}"
    source = doc.get("source")
    assert isinstance(source, str) and len(source) >= 20, f"{path.name}: no source"
