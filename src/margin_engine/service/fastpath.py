"""The pre-trade what-if without the framework: an ASGI middleware answering
``POST /v1/accounts/{id}/what-if`` straight from the live book.

Why: the live book answers a what-if in tens of microseconds, while FastAPI's request machinery
(dependency solving, the thread-pool hop of a sync route, response re-encoding) costs several
hundred microseconds of CPU per request; on the 2-core machine that, not the margin, capped the
service below its load goal (issue 10: ≥ 1,000 what-if/s, p99 ≤ 25 ms).

What it does is exactly the route's happy path, with the same pieces: the body validated by
the route's own pydantic model (:class:`~.routes.WhatIfRequest`), the key checked as
:func:`~.access.caller` does (operator key in constant time, else an account key already
verified once by this process), the same per-key rate limit, the same ownership rule, the same
:meth:`~.core.ServiceCore.what_if` under the same lock, the same JSON. Anything else — no or
unknown key, a key not yet verified, a body that fails the schema, another account's id, the
lock held by a writer — is handed unchanged (body replayed) to the FastAPI route, which gives
the documented answer; so every refusal keeps its one exact shape and the OpenAPI spec still
describes the route. Refusals that happen after the rate-limit token is spent (a symbol the
book does not know, a 429) are answered here with the same one-line error as the route's.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import math
import re
from typing import Any

from pydantic import ValidationError
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from margin_engine.errors import InputError

from .http_errors import error_body, status_of
from .routes import WhatIfRequest, is_printable

_PATH = re.compile(r"/v1/accounts/([^/]{1,64})/what-if")
_JSON = (b"content-type", b"application/json")


def _dumps(doc: Any) -> bytes:
    """Starlette's ``JSONResponse`` encoding (compact, UTF-8, no NaN)."""
    return json.dumps(doc, ensure_ascii=False, allow_nan=False, indent=None,
                      separators=(",", ":")).encode("utf-8")


class WhatIfFastPath:
    """ASGI middleware: answer the what-if route's happy path; pass everything else on.

    Parameters
    ----------
    app : ASGIApp
        The FastAPI application (inside :class:`~.app.BodyLimit`, which has already bounded
        and buffered the body).
    state : Any
        The application's ``state`` (``core``, ``operator_key``, ``rate_limit``).
    """

    def __init__(self, app: ASGIApp, state: Any) -> None:
        self.app, self.state = app, state

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (scope["type"] != "http" or scope["method"] != "POST"
                or not scope["path"].endswith("/what-if")):
            await self.app(scope, receive, send)
            return
        m = _PATH.fullmatch(scope["path"])
        if m is None:
            await self.app(scope, receive, send)
            return
        chunks: list[bytes] = []
        while True:
            msg = await receive()
            if msg["type"] != "http.request":
                return  # disconnected
            chunks.append(msg.get("body", b""))
            if not msg.get("more_body", False):
                break
        body = b"".join(chunks)
        answer = self._answer(m.group(1), scope, body)
        if answer is None:
            replayed = False

            async def replay() -> Message:
                nonlocal replayed
                if not replayed:
                    replayed = True
                    return {"type": "http.request", "body": body, "more_body": False}
                return await receive()

            await self.app(scope, replay, send)
            return
        status, headers, payload = answer
        await send({"type": "http.response.start", "status": status,
                    "headers": [(b"content-length", str(len(payload)).encode()), _JSON,
                                *headers]})
        await send({"type": "http.response.body", "body": payload})

    def _answer(self, account_id: str, scope: Scope,
                body: bytes) -> tuple[int, list[tuple[bytes, bytes]], bytes] | None:
        """(status, extra headers, body), or None to let the FastAPI route answer."""
        key = _bearer(scope)
        core = getattr(self.state, "core", None)
        if key is None or core is None or not is_printable(account_id):
            return None
        if hmac.compare_digest(key.encode("utf-8"), self.state.operator_key.encode("utf-8")):
            owner = None
            actor = "operator"
        else:
            owner = core.known_keys.get(hashlib.sha256(key.encode("utf-8")).digest())
            if owner is None or owner != account_id:  # unverified key, another account
                return None
            actor = f"account:{owner}"
        try:
            req = WhatIfRequest.model_validate_json(body)
        except ValidationError:
            return None
        orders = [(o.symbol, o.size, o.price) for o in req.orders]
        if not core.lock.acquire(blocking=False):
            return None  # a writer holds the book: the route waits for it in a worker thread
        try:
            limiter = self.state.rate_limit
            wait = limiter.take(actor) if limiter is not None else None
            if wait is not None:
                doc = error_body("Authorization", f"rate limit of {limiter.rate:g} requests/s "
                                 f"exceeded; retry in {wait:.3g} s")
                return 429, [(b"retry-after", str(max(1, math.ceil(wait))).encode())], \
                    _dumps(doc)
            try:
                answer = core.what_if(account_id, orders).as_dict()
            except InputError as exc:
                return status_of(exc), [], _dumps(error_body(exc.path, exc.reason))
        finally:
            core.lock.release()
        try:
            return 200, [], _dumps(answer)
        except ValueError:  # a non-finite figure: the route's own handling decides
            return None


def _bearer(scope: Scope) -> str | None:
    """The key of an ``Authorization: Bearer KEY`` header, as FastAPI's ``HTTPBearer`` reads
    it; None when absent or malformed (the route then answers 401)."""
    for name, value in scope.get("headers", ()):
        if name == b"authorization":
            text = value.decode("latin-1")
            scheme, _, param = text.partition(" ")
            param = param.strip()
            if scheme.lower() != "bearer" or not param:
                return None
            return param
    return None
