"""The one error type for rejected input: a field path plus a reason.

Every layer raises :class:`InputError` for bad input; the edges (CLI, service) print
``path: reason`` and exit non-zero / answer 4xx. Nothing is computed from rejected input.
"""

from __future__ import annotations

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
        """The same problems with every path placed under ``prefix``."""
        moved = [(f"{prefix}.{p}" if not p.startswith("[") else f"{prefix}{p}", r)
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
