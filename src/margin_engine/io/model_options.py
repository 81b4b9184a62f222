"""Building a registered model from command-line style options."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from margin_engine.domain.market import MarketSnapshot
from margin_engine.errors import InputError
from margin_engine.io.series import load_price_series, synthetic_series
from margin_engine.io.span_file import load_span_options
from margin_engine.models.core.base import MarginModel
from margin_engine.models.core.registry import model_class

#: ``--param KEY=FILE`` options that stand for a parsed file: (model, key) → the reader that
#: returns the model parameters the file holds. Models never read files themselves.
FILE_PARAMETERS = {("span", "risk_parameters"): load_span_options}


def expand_file_parameters(name: str, options: dict[str, Any]) -> dict[str, Any]:
    """Replace a file option (:data:`FILE_PARAMETERS`) by the parameters read from the file;
    options given beside it win, combined commodities field by field."""
    for (model, key), reader in FILE_PARAMETERS.items():
        if model != name or key not in options:
            continue
        path = options[key]
        if not isinstance(path, str):
            raise InputError(f"--param {key}", "expected the path of a file")
        rest = {k: v for k, v in options.items() if k != key}
        parsed = reader(path)
        out = {**parsed, **rest}
        if isinstance(rest.get("combined_commodities"), dict):
            base = parsed.get("combined_commodities", {})
            out["combined_commodities"] = {
                cc: ({**base.get(cc, {}), **cfg} if isinstance(cfg, dict) else cfg)
                for cc, cfg in {**base, **rest["combined_commodities"]}.items()}
        options = out
    return options


def build_model(name: str, options: dict[str, Any], history: Sequence[Path] | None,
                market: MarketSnapshot) -> tuple[MarginModel, str | None]:
    """The model and, when it fell back to the embedded synthetic history, a warning saying so
    (one line, for stderr and the JSON ``warnings`` list).

    Models with a ``history`` parameter get the ``--history`` files, or without them the
    synthetic history ending the day before the market snapshot.
    """
    cls = model_class(name)
    options = expand_file_parameters(name, options)
    if "history" in options:
        raise InputError("--param history", "give price history files with --history FILE")
    note = None
    if "history" in cls.Params.model_fields:
        if history:
            options = {**options, "history": load_price_series(  # DVOL: the vol factor
                history, keep_vol="vol_factor" in cls.Params.model_fields)}
        else:
            options = {**options, "history": synthetic_series(market.timestamp.date())}
            note = (f"{name}: no --history given, so its scenarios come from the embedded "
                    f"synthetic history (seed 7), not real prices; give --history FILE")
    elif history:
        raise InputError("--history", f"{name} does not use a price history")
    return cls.from_options(options), note
