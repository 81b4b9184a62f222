"""Every refusal as ``{"error": "<field path>: <reason>"}`` (DESIGN §8), with its status code.

- :class:`~margin_engine.errors.InputError` → 400, its subclasses
  :class:`~margin_engine.service.errors.NotFoundError` → 404 and
  :class:`~margin_engine.service.errors.ConflictError` → 409;
- :class:`ApiError` carries its own status (401, 403, 413, 429 with ``Retry-After``, ...);
- FastAPI's request validation (normally 422 with a list) → 422 with the one line;
- Starlette's own 404/405 → the one line naming the path;
- anything else → 500 ``internal: <type>`` (a bug; never a traceback to the client).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from starlette.exceptions import HTTPException as StarletteHTTPException

from margin_engine.errors import InputError, one_line

from .errors import ConflictError, NotFoundError

log = logging.getLogger("margin_engine.service")


class ApiError(Exception):
    """A refusal with an HTTP status, a field path and a reason."""

    def __init__(self, status: int, path: str, reason: str, *,
                 retry_after: float | None = None) -> None:
        super().__init__(f"{path}: {reason}")
        self.status, self.path, self.reason = status, path, reason
        self.retry_after = retry_after


class ErrorBody(BaseModel):
    """Every refusal's body (DESIGN §8)."""

    error: str
    """``<field path>: <reason>``, one line."""


_WHY = {400: "a value the engine or storage refuses", 401: "no or unknown bearer key",
        403: "the key may not do this", 404: "no such account (or not the caller's)",
        409: "conflicts with the stored state", 413: "request body too large",
        422: "the body or query fails the schema", 429: "the key's rate limit is exceeded"}


def responses(*codes: int) -> dict[int | str, dict[str, Any]]:
    """The OpenAPI ``responses`` entries of the refusals a route can answer, each with the
    one-line :class:`ErrorBody` (FastAPI's own 422 schema is replaced: this service reshapes
    validation errors)."""
    return {c: {"model": ErrorBody, "description": _WHY[c]} for c in sorted(set(codes))}


def error_body(path: str, reason: str) -> dict[str, str]:
    """The one-line error document."""
    return {"error": f"{one_line(path or '<body>', 200)}: {one_line(reason or 'invalid')}"}


def status_of(exc: InputError) -> int:
    """404, 409 or 400 by the error's class."""
    if isinstance(exc, NotFoundError):
        return 404
    if isinstance(exc, ConflictError):
        return 409
    return 400


def field_path(loc: Sequence[Any]) -> str:
    """``("body", "orders", 0, "size")`` → ``orders[0].size`` (the ``body``/``query``/
    ``path`` prefix dropped)."""
    out = ""
    parts = list(loc)
    if parts and parts[0] in ("body", "query", "path", "header"):
        parts = parts[1:]
    for p in parts:
        if isinstance(p, int):
            out += f"[{p}]"
        else:
            out += f".{p}" if out else str(p)
    return out


def install(app: FastAPI) -> None:
    """Register the handlers on ``app``."""

    @app.exception_handler(InputError)
    async def _input(_req: Request, exc: InputError) -> JSONResponse:
        return JSONResponse(error_body(exc.path, exc.reason), status_code=status_of(exc))

    @app.exception_handler(ApiError)
    async def _api(_req: Request, exc: ApiError) -> JSONResponse:
        headers = {"WWW-Authenticate": "Bearer"} if exc.status == 401 else {}
        if exc.retry_after is not None:
            headers["Retry-After"] = str(max(1, math.ceil(exc.retry_after)))
        return JSONResponse(error_body(exc.path, exc.reason), status_code=exc.status,
                            headers=headers)

    @app.exception_handler(RequestValidationError)
    async def _validation(_req: Request, exc: RequestValidationError) -> JSONResponse:
        errs = exc.errors()
        if not errs:
            return JSONResponse(error_body("body", "invalid request"), status_code=422)
        e = errs[0]
        path = field_path(e.get("loc", ()))
        kind = e.get("type", "")
        if kind == "json_invalid":
            path, reason = "body", "not valid JSON"
        elif kind == "missing":
            reason = "required"
        else:
            reason = str(e.get("msg", "invalid"))
        return JSONResponse(error_body(path or "body", reason), status_code=422)

    @app.exception_handler(StarletteHTTPException)
    async def _http(req: Request, exc: StarletteHTTPException) -> JSONResponse:
        if exc.status_code == 400 and "parsing the body" in str(exc.detail):
            # FastAPI's answer to a body it cannot decode (not UTF-8): same line as bad JSON
            return JSONResponse(error_body("body", "not valid JSON"), status_code=422)
        return JSONResponse(error_body(req.url.path, str(exc.detail)),
                            status_code=exc.status_code, headers=exc.headers)

    @app.exception_handler(Exception)
    async def _internal(_req: Request, exc: Exception) -> JSONResponse:
        log.exception("internal error")
        return JSONResponse(error_body("internal", type(exc).__name__), status_code=500)
