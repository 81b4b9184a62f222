"""The registry's catalog (name → module) and the lazy loading it allows."""

from __future__ import annotations

import subprocess
import sys
from importlib import import_module

import pytest

from margin_engine.models.core.catalog import MODULES
from margin_engine.models.core.registry import model_class, model_names


def test_catalog_lists_exactly_what_the_modules_register() -> None:
    registered = {name: model_class(name).__module__ for name in model_names()}
    assert registered == MODULES
    for module in set(MODULES.values()):
        import_module(module)  # importing every module registers nothing else
    assert sorted(model_names()) == sorted(MODULES)


@pytest.mark.parametrize("name", ["binance-usdm", "dydx-v4", "hyperliquid"])
def test_rule_based_model_loads_without_numba_or_scipy(name: str) -> None:
    code = (f"import sys\nfrom margin_engine.models.core.registry import model_class\n"
            f"model_class({name!r})\n"
            "print(sorted(m for m in ('numba', 'scipy', 'margin_engine.models.risk_based.model')"
            " if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout
    assert out.strip() == "[]"


def test_unknown_model_names_every_model() -> None:
    from margin_engine.errors import InputError

    with pytest.raises(InputError) as exc:
        model_class("no-such-model")
    for name in MODULES:
        assert name in exc.value.reason
