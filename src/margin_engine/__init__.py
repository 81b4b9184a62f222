"""margin-engine: margin requirements for crypto derivatives.

The public Python API (imported on first use, so ``import margin_engine`` stays light):

- :func:`compute` — margin a book under a named model (the twin of ``margin-engine compute``);
- :func:`load_book`, :func:`load_market` — read the JSON formats of DESIGN §4;
- :func:`get_model` — a registered model with parameters;
- :func:`assess_book` — reports for a book of accounts the model margins;
- :class:`InputError` — what bad input raises (``path: reason``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

__all__ = ["InputError", "__version__", "assess_book", "compute", "get_model", "load_book",
           "load_market"]

_LAZY = {"compute": "margin_engine.api", "load_book": "margin_engine.io.loaders",
         "load_market": "margin_engine.io.loaders",
         "get_model": "margin_engine.models.core.registry",
         "assess_book": "margin_engine.policy.assess", "InputError": "margin_engine.errors"}

if TYPE_CHECKING:
    from margin_engine.api import compute
    from margin_engine.errors import InputError
    from margin_engine.io.loaders import load_book, load_market
    from margin_engine.models.core.registry import get_model
    from margin_engine.policy.assess import assess_book


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'margin_engine' has no attribute {name!r}")
