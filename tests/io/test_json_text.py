"""``dumps_indent2`` writes exactly ``json.dumps(doc, indent=2, allow_nan=False)``."""

from __future__ import annotations

import json
import math
import random
from enum import IntEnum, StrEnum

import pytest

from margin_engine.io.json_text import dumps_indent2


class Colour(StrEnum):
    RED = "red"


class Level(IntEnum):
    ONE = 1


class Money(float):
    pass


def leaf(rng: random.Random) -> object:
    kind = rng.randrange(12)
    return [
        lambda: rng.uniform(-1e6, 1e6),
        lambda: rng.random() * 10.0 ** rng.randint(-320, 308),
        lambda: rng.randint(-10**20, 10**20),
        lambda: rng.choice([True, False, None]),
        lambda: "".join(rng.choice('aZ9 "\\/\n\té€😀\x00') for _ in range(rng.randint(0, 6))),
        lambda: Colour.RED,
        lambda: Level.ONE,
        lambda: Money(rng.random()),
        lambda: -0.0,
        lambda: 0,
        lambda: 5e-324,
        lambda: 1.7976931348623157e308,
    ][kind]()


def document(rng: random.Random, depth: int = 0) -> object:
    r = rng.random()
    if depth > 4 or r < 0.4:
        return leaf(rng)
    n = rng.choice([0, 1, 2, 5])
    if r < 0.6:
        return [document(rng, depth + 1) for _ in range(n)]
    if r < 0.7:
        return tuple(document(rng, depth + 1) for _ in range(n))
    return {str(leaf(rng)) if rng.random() < 0.9 else f"k{k}": document(rng, depth + 1)
            for k in range(n)}


@pytest.mark.parametrize("seed", range(200))
def test_random_documents_match_the_standard_library(seed: int) -> None:
    doc = document(random.Random(seed))
    assert dumps_indent2(doc) == json.dumps(doc, indent=2, allow_nan=False)


@pytest.mark.parametrize("doc", [
    {}, [], (), {"a": {}}, {"a": []}, [[], {}], "x", 1, 1.5, None, True,
    {"leaves": [1, 2.5, "s", None, False]}, {"1": 1, "b": {"c": [1, {"d": 2}]}},
    {1: "int key"}, {2.5: "float key"}, {None: 1, True: 2},
])
def test_edge_documents(doc: object) -> None:
    assert dumps_indent2(doc) == json.dumps(doc, indent=2, allow_nan=False)


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
def test_non_finite_fails_as_json_does(bad: float) -> None:
    for doc in (bad, [bad], {"a": bad}, {"a": [1, {"b": bad}]}, {"a": {"b": 1, "c": bad}}):
        with pytest.raises(ValueError, match="Out of range float values"):
            dumps_indent2(doc)


def test_unencodable_fails_as_json_does() -> None:
    for doc in ({"a": object()}, [1, {2, 3}], {("t",): 1}):
        with pytest.raises(TypeError):
            dumps_indent2(doc)
    loop: list[object] = []
    loop.append(loop)
    with pytest.raises(ValueError, match="Circular reference"):
        dumps_indent2(loop)
