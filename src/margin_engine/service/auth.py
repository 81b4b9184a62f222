"""API keys: generation, hashing at rest, constant-time checks, the operator key.

Keys are ``me_`` + ``secrets.token_urlsafe(32)`` (256 bits of randomness). At rest a key is kept
as ``sha256$<salt hex>$<digest hex>`` with ``digest = SHA-256(salt || key)`` and a random 16-byte
salt per key. Why not scrypt/bcrypt: those slow hashes exist to protect *low-entropy* passwords
from guessing; a 256-bit random key cannot be guessed whatever the hash, and every API request
must verify its key, so a ~50 ms memory-hard hash per request would cap the service far below its
what-if goal (≥ 1,000/s). The salt makes equal keys hash differently and rules out precomputed
tables; comparison uses :func:`hmac.compare_digest` (constant time).
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from dataclasses import dataclass

KEY_PREFIX = "me_"
OPERATOR_ENV = "MARGIN_ENGINE_OPERATOR_KEY"
SCHEME = "sha256"


def generate_key() -> str:
    """A new API key: ``me_`` followed by 43 URL-safe characters (32 random bytes)."""
    return KEY_PREFIX + secrets.token_urlsafe(32)


def hash_key(key: str, *, salt: bytes | None = None) -> str:
    """The at-rest form ``sha256$<salt hex>$<digest hex>`` of ``key`` (fresh salt by default)."""
    salt = secrets.token_bytes(16) if salt is None else salt
    digest = hashlib.sha256(salt + key.encode("utf-8")).hexdigest()
    return f"{SCHEME}${salt.hex()}${digest}"


def key_id(key: str) -> str:
    """A 16-hex-digit lookup id of a key (the first 64 bits of its unsalted SHA-256).

    It finds the row whose salted hash to check without scanning every account; 64 bits of a hash
    of a 256-bit random key reveal nothing usable about the key.
    """
    return hashlib.sha256(key.encode("utf-8")).hexdigest()[:16]


def check_key(key: str, stored: str) -> bool:
    """Whether ``key`` matches the stored hash, compared in constant time.

    A malformed stored value never matches (and still costs one hash, so timing does not reveal
    which stored values are malformed).
    """
    try:
        scheme, salt_hex, digest = stored.split("$")
        salt = bytes.fromhex(salt_hex)
    except ValueError:
        scheme, salt, digest = "", b"", ""
    want = hashlib.sha256(salt + key.encode("utf-8")).hexdigest()
    return hmac.compare_digest(want, digest) and scheme == SCHEME


@dataclass(frozen=True)
class OperatorKey:
    """The operator key in force and whether it was generated (print it once, then)."""

    key: str
    generated: bool


def operator_key(environ: dict[str, str] | None = None) -> OperatorKey:
    """The operator key from ``MARGIN_ENGINE_OPERATOR_KEY``, or a freshly generated one.

    Raises
    ------
    ValueError
        When the variable is set but shorter than 16 characters (a placeholder, not a secret).
    """
    env = os.environ if environ is None else environ
    given = env.get(OPERATOR_ENV)
    if given is not None:
        if len(given) < 16:
            raise ValueError(f"{OPERATOR_ENV}: must be at least 16 characters")
        return OperatorKey(given, generated=False)
    return OperatorKey(generate_key(), generated=True)
