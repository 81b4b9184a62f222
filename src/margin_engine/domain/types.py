"""Validated scalar types shared by the domain models (pydantic annotated aliases)."""

from __future__ import annotations

from typing import Annotated

from pydantic import AfterValidator, ConfigDict, Field

#: Frozen, strict-about-unknown-fields, no NaN/inf configuration used by every domain model.
FROZEN = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False, str_strip_whitespace=True)

#: A size or price above this is taken to be a unit or typing error, not a position.
ABSURD = 1e15


def _not_absurd(x: float) -> float:
    if abs(x) > ABSURD:
        raise ValueError(f"absurd magnitude {x!r} (limit {ABSURD:g})")
    return x


Finite = Annotated[float, Field(allow_inf_nan=False), AfterValidator(_not_absurd)]
Positive = Annotated[float, Field(gt=0.0, allow_inf_nan=False), AfterValidator(_not_absurd)]
NonNegative = Annotated[float, Field(ge=0.0, allow_inf_nan=False), AfterValidator(_not_absurd)]
Fraction = Annotated[float, Field(ge=0.0, lt=1.0, allow_inf_nan=False)]
Name = Annotated[str, Field(min_length=1, max_length=128)]
