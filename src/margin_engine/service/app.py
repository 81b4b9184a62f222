"""The margin service as a FastAPI application (DESIGN §8).

:func:`create_app` opens the storage (migrating it), rebuilds the live book from it on the given
market and wires the routes (:mod:`.routes`), the WebSocket stream (:mod:`.stream`), the
bearer-key access rules (:mod:`.access`) and the one-line error shape (:mod:`.http_errors`).
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from margin_engine import __version__
from margin_engine.domain.market import MarketSnapshot
from margin_engine.io.feeds.spec import FeedSpec
from margin_engine.live.dynamic import LiveDynamic
from margin_engine.models.core.base import MarginModel

from . import dashboard, http_errors, routes, stream
from .auth import operator_key as env_operator_key
from .core import MARGIN_EVENT_THRESHOLD, ServiceCore
from .fastpath import WhatIfFastPath
from .feeds import start_feeds, stop_feeds
from .http_errors import error_body
from .ratelimit import RateLimiter
from .repository import Repository

MAX_BODY_BYTES = 1 << 20
"""Request bodies above 1 MiB are refused with 413 (a market snapshot of a few thousand
instruments is well under it)."""

DEFAULT_RATE_LIMIT = (1000.0, 2000)
"""Per key: requests/s sustained, burst."""


class BodyLimit:
    """ASGI middleware: read an HTTP request body up to ``limit`` bytes, answer 413 beyond it
    (whether or not ``Content-Length`` announced it), else hand the buffered body on, labelled
    ``application/json`` (the only body type the service reads)."""

    def __init__(self, app: ASGIApp, limit: int = MAX_BODY_BYTES) -> None:
        self.app, self.limit = app, limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        for name, value in scope.get("headers", ()):
            if name == b"content-length" and value.isdigit() and int(value) > self.limit:
                await self._refuse(send)
                return
        chunks: list[bytes] = []
        size = 0
        while True:
            msg = await receive()
            if msg["type"] == "http.disconnect":
                return
            body = msg.get("body", b"")
            size += len(body)
            if size > self.limit:
                await self._refuse(send)
                return
            chunks.append(body)
            if not msg.get("more_body", False):
                break
        # Every body is JSON, whatever the client labelled it (curl -d sends a form type).
        headers = [(k, v) for k, v in scope.get("headers", ()) if k != b"content-type"]
        scope = {**scope, "headers": [*headers, (b"content-type", b"application/json")]}
        done = False

        async def replay() -> Message:
            nonlocal done
            if not done:
                done = True
                return {"type": "http.request", "body": b"".join(chunks), "more_body": False}
            return await receive()

        await self.app(scope, replay, send)

    async def _refuse(self, send: Send) -> None:
        body = json.dumps(error_body("body", f"larger than {self.limit} bytes")).encode()
        await send({"type": "http.response.start", "status": 413,
                    "headers": [(b"content-type", b"application/json"),
                                (b"content-length", str(len(body)).encode())]})
        await send({"type": "http.response.body", "body": body})


def create_app(model: MarginModel, market: MarketSnapshot, db_url: str, *,
               operator_key: str | None = None,
               max_body_bytes: int = MAX_BODY_BYTES,
               rate_limit: RateLimiter | tuple[float, int] | None = DEFAULT_RATE_LIMIT,
               dynamic: LiveDynamic | None = None,
               feeds: Sequence[FeedSpec] = (),
               fast_what_if: bool = True,
               margin_event_threshold: float = MARGIN_EVENT_THRESHOLD) -> FastAPI:
    """The service application.

    Parameters
    ----------
    model : MarginModel
        The active model.
    market : MarketSnapshot
        The market at start (later moved by ``POST /v1/market``).
    db_url : str
        SQLAlchemy URL (``sqlite:///margin-engine.db``, ``postgresql+psycopg://...``); migrated
        to the newest revision at start-up.
    operator_key : str, optional
        The operator key; from ``MARGIN_ENGINE_OPERATOR_KEY`` or generated when omitted (read
        it back from ``app.state.operator_key``).
    max_body_bytes : int
        The request-size limit (413 above it).
    rate_limit : RateLimiter, (rate, burst) or None
        Per-caller token buckets (429 beyond them); None: no limit. The default allows each key
        1,000 requests/s sustained and bursts of 2,000, a bound on a runaway client rather than
        a quota (the issue's load goal is 1,000 what-if/s on two cores).
    dynamic : LiveDynamic, optional
        The dynamic margin controller on the feed (``serve --dynamic``); its
        ``margin_parameters`` events go to ``/v1/events`` and the stream.
    feeds : sequence of FeedSpec
        Market feeds (``--feed``), each run as a background task from start-up to shut-down
        (:mod:`.feeds`); what each has done is in ``app.state.feeds``.
    fast_what_if : bool
        Answer the what-if route's happy path in :class:`~.fastpath.WhatIfFastPath` (same
        answers, a fraction of the framework's CPU); False leaves every request to FastAPI.
    margin_event_threshold : float
        Relative move of IM, MM or equity that publishes a ``margin`` event
        (:data:`.core.MARGIN_EVENT_THRESHOLD`, 1 %; 0: every move).

    Returns
    -------
    FastAPI
        Storage is opened and the live book rebuilt when the application starts (its
        lifespan), and closed when it stops.
    """
    key = operator_key or env_operator_key().key

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        repo = Repository.open(db_url)
        try:
            app.state.core = ServiceCore.open(model, market, repo, dynamic=dynamic,
                                              margin_threshold=margin_event_threshold)
            tasks, app.state.feeds = start_feeds(app.state.core, feeds)
            try:
                yield
            finally:
                await stop_feeds(tasks)
        finally:
            repo.close()

    app = FastAPI(title="margin-engine", version=__version__, lifespan=lifespan,
                  description="Real-time margin service (DESIGN §8): accounts, fills, "
                              "pre-trade what-if, market updates, events, audit log and "
                              "Merkle proofs.")
    app.state.operator_key = key
    app.state.rate_limit = (RateLimiter(*rate_limit) if isinstance(rate_limit, tuple)
                            else rate_limit)
    http_errors.install(app)
    app.include_router(routes.router)
    app.include_router(stream.router)
    dashboard.install(app)  # issue 13: /dashboard pages and their read-only endpoints
    if fast_what_if:
        app.add_middleware(WhatIfFastPath, state=app.state)
    app.add_middleware(BodyLimit, limit=max_body_bytes)  # outermost: bounds every body
    return app


def app_info(app: FastAPI) -> dict[str, Any]:
    """The operator key in force (for the ``serve`` command to print once)."""
    return {"operator_key": app.state.operator_key}
