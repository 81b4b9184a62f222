"""The registry of named models (DESIGN §4 model names)."""

from __future__ import annotations

from importlib import import_module
from typing import Any

from margin_engine.errors import InputError
from margin_engine.models.core.base import MarginModel
from margin_engine.models.core.catalog import MODULES

_MODELS: dict[str, type[MarginModel]] = {}


def register(cls: type[MarginModel]) -> type[MarginModel]:
    """Class decorator: make a model available by its ``name``."""
    if cls.name in _MODELS:
        raise ValueError(f"model {cls.name!r} registered twice")
    _MODELS[cls.name] = cls
    return cls


def model_names() -> list[str]:
    _load_builtin()
    return sorted(_MODELS)


def model_class(name: str) -> type[MarginModel]:
    if name not in _MODELS:
        _load_builtin(name)
    try:
        return _MODELS[name]
    except KeyError:
        _load_builtin()
        raise InputError("--model", f"unknown model {name!r} (known: "
                         f"{', '.join(sorted(_MODELS))})") from None


def get_model(name: str, options: dict[str, Any] | None = None) -> MarginModel:
    """Instantiate a registered model from ``--param`` style options.

    Parameters
    ----------
    name : str
        A registered name (``margin-engine models`` lists them with their parameters).
    options : dict, optional
        Parameter values by name; the others keep their documented defaults. Risk-based
        models take their price history as ``history`` (a
        :class:`~margin_engine.domain.history.PriceSeries`).

    Returns
    -------
    MarginModel
        The model, its parameters validated and frozen.

    Raises
    ------
    InputError
        ``--model`` for an unknown name, ``--param KEY`` for an unknown or invalid parameter.
    """
    return model_class(name).from_options(options or {})


def _load_builtin(name: str | None = None) -> None:
    """Import the module of the built-in model ``name`` (every one when ``None``): importing
    a model's module registers it."""
    wanted = MODULES.values() if name is None else [MODULES[name]] if name in MODULES else []
    for module in dict.fromkeys(wanted):
        import_module(module)
