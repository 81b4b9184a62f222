"""Errors of the service's storage layer; each is an :class:`InputError` (a path and a reason),
so the routes answer ``{"error": "<path>: <reason>"}`` with the status named below."""

from __future__ import annotations

from margin_engine.errors import InputError


class NotFoundError(InputError):
    """The account (or other object) does not exist: HTTP 404."""


class ConflictError(InputError):
    """The request is valid but the state refuses it (a withdrawal below IM, a reused id): 409."""
