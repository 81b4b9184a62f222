"""Strict JSON reading and the one-line error helpers (issue 8)."""

from __future__ import annotations

from pathlib import Path

import pytest

from margin_engine.errors import InputError, error_line, first_non_finite, one_line
from margin_engine.io.loaders import read_json


def _write(tmp_path: Path, raw: bytes) -> Path:
    p = tmp_path / "x.json"
    p.write_bytes(raw)
    return p


@pytest.mark.parametrize(("raw", "must"), [
    (b'{"a": 1, "a": 2}', "duplicate key 'a'"),
    (b'{"b": {"a": 1, "a": 1}}', "duplicate key 'a'"),
    (b'\xfe\xff\x00{\x00}', "UTF-16/32 byte-order mark"),
    (b'{"a": "\xc3"}', "not valid UTF-8 (byte 0xc3 at offset 7)"),
    (b"[" * 5000 + b"]" * 5000, "nested too deeply"),
    (b'{"a": 1' + b"0" * 5000 + b"}", "malformed JSON"),
    (b"", "malformed JSON: Expecting value"),
])
def test_bad_json_files_name_the_file(tmp_path: Path, raw: bytes, must: str) -> None:
    p = _write(tmp_path, raw)
    with pytest.raises(InputError) as info:
        read_json(p)
    assert info.value.path == str(p) and must in info.value.reason


def test_a_utf8_byte_order_mark_is_skipped(tmp_path: Path) -> None:
    assert read_json(_write(tmp_path, b'\xef\xbb\xbf{"a": [1, 2.5]}')) == {"a": [1, 2.5]}


def test_one_line_drops_links_and_escapes_control_characters() -> None:
    text = "bad\n  value \x07 \ud800 For further information visit https://errors.pydantic.dev/2/v/x"
    assert one_line(text) == "bad value \\x07 \\ud800"
    assert len(one_line("x" * 5000)) == 600


def test_error_line_joins_problems_on_one_line() -> None:
    exc = InputError("a", "r1", more=[(f"p{i}", "r") for i in range(7)])
    line = error_line(exc)
    assert "\n" not in line and line.startswith("error: a: r1; p0: r; ")
    assert line.endswith("(and 3 more problems)")


def test_within_keeps_command_line_options() -> None:
    exc = InputError("--history", "stale", more=[("positions[0].size", "bad")])
    moved = exc.within("accounts[3]")
    assert moved.problems == (("--history", "stale"), ("accounts[3].positions[0].size", "bad"))


def test_first_non_finite_names_the_path() -> None:
    assert first_non_finite({"a": [1.0, {"b": 2}], "c": None}) is None
    assert first_non_finite({"a": [1.0, {"b": float("inf")}]}) == "a[1].b"
    assert first_non_finite([[float("nan")]]) == "[0][0]"


def test_non_finite_walk_agrees_with_fast_check() -> None:
    assert first_non_finite({"a": (1.0, [2, {"b": -float("inf")}])}) == "a[1][1].b"
    assert first_non_finite({"a": object(), "b": float("nan")}) == "b"  # not JSON: walked
    assert first_non_finite({"a": object(), "b": 1.0}) is None
