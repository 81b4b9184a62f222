"""Building a registered model from command-line style options."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from margin_engine.domain.market import MarketSnapshot
from margin_engine.errors import InputError
from margin_engine.io.series import load_price_series, synthetic_series
from margin_engine.models.core.base import MarginModel
from margin_engine.models.core.registry import model_class


def build_model(name: str, options: dict[str, Any], history: Sequence[Path] | None,
                market: MarketSnapshot) -> tuple[MarginModel, str | None]:
    """The model and, when it fell back to the embedded synthetic history, a warning saying so
    (one line, for stderr and the JSON ``warnings`` list).

    Models with a ``history`` parameter get the ``--history`` files, or without them the
    synthetic history ending the day before the market snapshot.
    """
    cls = model_class(name)
    if "history" in options:
        raise InputError("--param history", "give price history files with --history FILE")
    note = None
    if "history" in cls.Params.model_fields:
        if history:
            options = {**options, "history": load_price_series(history)}
        else:
            options = {**options, "history": synthetic_series(market.timestamp.date())}
            note = (f"{name}: no --history given, so its scenarios come from the embedded "
                    f"synthetic history (seed 7), not real prices; give --history FILE")
    elif history:
        raise InputError("--history", f"{name} does not use a price history")
    return cls.from_options(options), note
