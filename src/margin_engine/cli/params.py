"""``--param key=value`` parsing: values are JSON where they parse as JSON, else strings."""

from __future__ import annotations

import json
from typing import Any

from margin_engine.errors import InputError
from margin_engine.io.loaders import DuplicateKeyError, no_duplicate_keys


def parse_params(pairs: list[str] | None) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for raw in pairs or []:
        key, sep, value = raw.partition("=")
        key = key.strip()
        if not sep or not key:
            raise InputError(f"--param {raw}", "expected key=value")
        if key in out:
            raise InputError(f"--param {key}", "given twice")
        try:
            out[key] = json.loads(value, object_pairs_hook=no_duplicate_keys)
        except DuplicateKeyError as exc:
            raise InputError(f"--param {key}", f"duplicate key {exc.key!r} in the JSON "
                             f"value") from None
        except RecursionError:
            raise InputError(f"--param {key}", "JSON value nested too deeply") from None
        except ValueError:
            out[key] = value
    return out
