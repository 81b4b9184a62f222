"""API keys: random, hashed at rest with a per-key salt, checked in constant time."""

from __future__ import annotations

import hashlib

import pytest

from margin_engine.service.auth import (
    OPERATOR_ENV,
    check_key,
    generate_key,
    hash_key,
    key_id,
    operator_key,
)


def test_keys_are_random_and_url_safe():
    keys = {generate_key() for _ in range(200)}
    assert len(keys) == 200
    assert all(k.startswith("me_") and len(k) == 46 for k in keys)
    assert all(set(k[3:]) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
                                 "0123456789-_") for k in keys)


def test_hash_is_salted_sha256_and_checks():
    key = generate_key()
    stored = hash_key(key, salt=b"\x01" * 16)
    scheme, salt, digest = stored.split("$")
    assert scheme == "sha256" and salt == "01" * 16
    assert digest == hashlib.sha256(b"\x01" * 16 + key.encode()).hexdigest()
    assert hash_key(key) != hash_key(key)  # a fresh salt each time
    assert check_key(key, hash_key(key))
    assert not check_key(key + "x", stored)
    assert not check_key(key, "garbage")
    assert key_id(key) == hashlib.sha256(key.encode()).hexdigest()[:16]


def test_operator_key_from_environment_or_generated():
    given = operator_key({OPERATOR_ENV: "s3cret-operator-key-123"})
    assert (given.key, given.generated) == ("s3cret-operator-key-123", False)
    made = operator_key({})
    assert made.generated and made.key.startswith("me_")
    with pytest.raises(ValueError, match="at least 16"):
        operator_key({OPERATOR_ENV: "changeme"})
