"""The ``--feed SOURCE`` grammar (DESIGN §8).

::

    SOURCE  = "replay:" FILES [ "@" SPEED ]
            | "nats://" HOST ":" PORT "/" SUBJECT [ "?durable=" NAME ]
    FILES   = FILE { "," FILE }
    SPEED   = a number > 0 (× real time: 3600 replays one hour of data per second) | "max"

``replay:`` without ``@SPEED`` replays at real time (1×); ``@max`` applies the updates one after
the other as fast as the service takes them. The NATS durable consumer is named ``NAME``
(default ``margin-engine``).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

from margin_engine.errors import InputError

DEFAULT_DURABLE = "margin-engine"
_NAME = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
_SUBJECT = re.compile(r"^[A-Za-z0-9_*>.-]{1,200}$")


@dataclass(frozen=True)
class ReplaySpec:
    """``replay:FILES[@SPEED]``: the files and the speed (None: as fast as possible)."""

    paths: tuple[Path, ...]
    speed: float | None = 1.0

    @property
    def key(self) -> str:
        """The feed's name in logs and in stored positions."""
        return "replay:" + ",".join(p.name for p in self.paths)


@dataclass(frozen=True)
class NatsSpec:
    """``nats://HOST:PORT/SUBJECT[?durable=NAME]``."""

    server: str
    subject: str
    durable: str = DEFAULT_DURABLE

    @property
    def key(self) -> str:
        """The feed's name in stored positions (server, subject and durable consumer)."""
        return f"{self.server}/{self.subject}#{self.durable}"


FeedSpec = ReplaySpec | NatsSpec


def parse_feed(text: str, path: str = "--feed") -> FeedSpec:
    """Parse one ``--feed`` value; replay files must exist.

    Raises
    ------
    InputError
        ``--feed: <reason>`` for anything else than the grammar above.
    """
    if text.startswith("replay:"):
        return _replay(text.removeprefix("replay:"), path)
    if text.startswith("nats://"):
        return _nats(text, path)
    raise InputError(path, f"{text!r}: expected replay:FILE[,FILE...][@SPEED] or "
                     "nats://HOST:PORT/SUBJECT")


def _replay(rest: str, path: str) -> ReplaySpec:
    speed: float | None = 1.0
    files = rest
    if "@" in rest:
        files, _, raw = rest.rpartition("@")
        if raw == "max":
            speed = None
        else:
            try:
                speed = float(raw)
            except ValueError:
                raise InputError(path, f"speed {raw!r}: expected a number > 0 or max") from None
            if not math.isfinite(speed) or speed <= 0:
                raise InputError(path, f"speed {raw!r}: expected a number > 0 or max")
    names = [f for f in files.split(",") if f]
    if not names:
        raise InputError(path, "replay: needs at least one file")
    paths = tuple(Path(f) for f in names)
    for p in paths:
        if not p.is_file():
            raise InputError(path, f"no such file: {p}")
    return ReplaySpec(paths, speed)


def _nats(text: str, path: str) -> NatsSpec:
    u = urlsplit(text)
    try:
        port = u.port
    except ValueError:
        raise InputError(path, f"{text!r}: bad port") from None
    if not u.hostname or port is None:
        raise InputError(path, f"{text!r}: expected nats://HOST:PORT/SUBJECT")
    subject = u.path.lstrip("/")
    if not _SUBJECT.match(subject):
        raise InputError(path, f"{text!r}: missing or invalid SUBJECT")
    query = parse_qs(u.query)
    unknown = sorted(set(query) - {"durable"})
    if unknown:
        raise InputError(path, f"unknown option {unknown[0]!r} (known: durable)")
    durable = query.get("durable", [DEFAULT_DURABLE])[-1]
    if not _NAME.match(durable):
        raise InputError(path, f"durable {durable!r}: letters, digits, _ and - only")
    return NatsSpec(f"nats://{u.hostname}:{port}", subject, durable)
