"""Who is asking: ``Authorization: Bearer KEY`` → the operator or one account (DESIGN §8).

A missing or unknown key is 401; a caller over its rate limit is 429 (:mod:`.ratelimit`); an
account key on an operator-only route is 403; an account key asking about another account gets
404 (the other account's existence is not disclosed).
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from .core import ServiceCore
from .http_errors import ApiError
from .ratelimit import RateLimiter

bearer = HTTPBearer(auto_error=False, description="the operator key or an account's key")


@dataclass(frozen=True)
class Principal:
    """The caller: the operator (``account`` None) or the owner of ``account``."""

    account: str | None

    @property
    def operator(self) -> bool:
        return self.account is None

    @property
    def actor(self) -> str:
        """The audit log's ``actor``."""
        return "operator" if self.account is None else f"account:{self.account}"


def core_of(request: Request) -> ServiceCore:
    core: ServiceCore = request.app.state.core
    return core


def principal_for(core: ServiceCore, operator_key: str, key: str | None) -> Principal | None:
    """The principal whose key ``key`` is, or None."""
    if not key:
        return None
    if hmac.compare_digest(key.encode("utf-8"), operator_key.encode("utf-8")):
        return Principal(None)
    digest = hashlib.sha256(key.encode("utf-8")).digest()
    owner = core.known_keys.get(digest)
    if owner is None:
        owner = core.repo.account_for_key(key)
        if owner is None:
            return None
        core.known_keys[digest] = owner  # keys never change: checked once per process
    return Principal(owner)


def caller(request: Request,
           cred: HTTPAuthorizationCredentials | None = Depends(bearer)) -> Principal:
    """The authenticated caller, else 401."""
    if cred is None:
        raise ApiError(401, "Authorization", "a Bearer key is required")
    who = principal_for(core_of(request), request.app.state.operator_key, cred.credentials)
    if who is None:
        raise ApiError(401, "Authorization", "unknown key")
    limiter: RateLimiter | None = request.app.state.rate_limit
    if limiter is not None:
        wait = limiter.take(who.actor)
        if wait is not None:
            raise ApiError(429, "Authorization", f"rate limit of {limiter.rate:g} requests/s "
                           f"exceeded; retry in {wait:.3g} s", retry_after=wait)
    return who


def operator(who: Principal = Depends(caller)) -> Principal:
    """The caller when it is the operator, else 403."""
    if not who.operator:
        raise ApiError(403, "Authorization", "operator key required")
    return who


def may_see(who: Principal, account_id: str) -> None:
    """404 for an account key asking about another account."""
    if not who.operator and who.account != account_id:
        raise ApiError(404, "id", f"no account {account_id!r}")
