"""The one error type for rejected input: a field path plus a reason.

Every layer raises :class:`InputError` for bad input; the edges (CLI, service) print
``path: reason`` and exit non-zero / answer 4xx. Nothing is computed from rejected input.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable, Sequence


def format_path(loc: Iterable[str | int]) -> str:
    """Render a location tuple as ``accounts[0].positions[2].size``."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out or "<root>"


class InputError(ValueError):
    """Rejected input: one or more ``(path, reason)`` problems."""

    def __init__(self, path: str, reason: str, *, more: Sequence[tuple[str, str]] = ()) -> None:
        self.problems: tuple[tuple[str, str], ...] = ((path, reason), *more)
        super().__init__("; ".join(f"{p}: {r}" for p, r in self.problems))

    @property
    def path(self) -> str:
        return self.problems[0][0]

    @property
    def reason(self) -> str:
        return self.problems[0][1]

    def within(self, prefix: str) -> InputError:
        """The same problems with every field path placed under ``prefix`` (a command-line
        option such as ``--history`` stays as it is)."""
        moved = [(p if p.startswith("--") else  # a command-line option is not in the account
                  f"{prefix}{p}" if p.startswith("[") else f"{prefix}.{p}", r)
                 for p, r in self.problems]
        return InputError(moved[0][0], moved[0][1], more=moved[1:])


def first_validation_problem(exc: Exception) -> tuple[str, str]:
    """``(path, reason)`` of a pydantic ``ValidationError``'s first error (``str(exc)`` else)."""
    errors = getattr(exc, "errors", None)
    if not callable(errors):
        return "", str(exc)
    err = errors()[0]
    msg = str(err["msg"]).removeprefix("Value error, ")
    path = format_path(err["loc"]) if err["loc"] else ""
    head, sep, tail = msg.partition(": ")
    if not path and sep and " " not in head:
        return head, tail
    return path, msg


_PYDANTIC_URL = re.compile(r"\s*For further information visit https?://\S+")
_UNPRINTABLE = re.compile(r"[\x00-\x1f\x7f-\x9f\ud800-\udfff]")
#: The longest reason printed; the rest is cut with an ellipsis.
MAX_REASON_CHARS = 600


def one_line(text: str, limit: int = MAX_REASON_CHARS) -> str:
    """``text`` made safe for a one-line message: pydantic's documentation links dropped,
    newlines and runs of white space collapsed to one space, control characters and unpaired
    surrogates escaped (``\\x07``, ``\\ud800``), and cut to ``limit`` characters."""
    s = _PYDANTIC_URL.sub("", text)
    s = " ".join(s.split())
    s = _UNPRINTABLE.sub(lambda m: m.group().encode("unicode_escape", "backslashreplace")
                         .decode("ascii"), s)
    return s if len(s) <= limit else s[: limit - 1] + "…"


def error_line(exc: InputError, max_problems: int = 5) -> str:
    """The single line the command line prints for rejected input:
    ``error: <path>: <reason>[; <path>: <reason> ...]``."""
    shown = [f"{one_line(p or '<root>', 200)}: {one_line(r or 'invalid')}"
             for p, r in exc.problems[:max_problems]]
    more = len(exc.problems) - max_problems
    tail = f" (and {more} more problem{'s' if more > 1 else ''})" if more > 0 else ""
    return "error: " + "; ".join(shown) + tail


def first_non_finite(doc: object) -> str | None:
    """Path (``rows[3].coverage``) of the first NaN or infinite float in a JSON-like document,
    ``None`` when every number is finite. Iterative, so depth does not matter."""
    try:  # fast path: the C encoder refuses NaN/Infinity; walk only to name the place
        json.dumps(doc, allow_nan=False)
        return None
    except (TypeError, ValueError, RecursionError):
        pass
    stack: list[tuple[tuple[str | int, ...], object]] = [((), doc)]
    while stack:
        loc, v = stack.pop()
        if isinstance(v, float):
            if not math.isfinite(v):
                return format_path(loc)
        elif isinstance(v, dict):
            stack.extend(((*loc, str(k)), x) for k, x in reversed(list(v.items())))
        elif isinstance(v, list | tuple):
            stack.extend(((*loc, i), x) for i, x in reversed(list(enumerate(v))))
    return None


#: pydantic error types meaning "this is not a number".
NUMBER_ERROR_TYPES = frozenset({"float_type", "float_parsing", "int_type", "int_parsing"})


def json_kind(value: object) -> str:
    """How a JSON value is described in an error: ``true``, ``a string``, ``an object``..."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    names: dict[type, str] = {str: "a string", dict: "an object", list: "an array",
                              int: "an integer", float: "a number"}
    return names.get(type(value), type(value).__name__)
