"""Service fixtures: a migrated repository on a fresh SQLite file and on PostgreSQL.

PostgreSQL runs at 127.0.0.1:5432 (trust auth, database ``test``); each test gets its own
schema (dropped afterwards), chosen through the URL's ``options=-csearch_path=...``, so parallel
runs never collide. Without a reachable server the PostgreSQL cases skip, saying so.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from margin_engine.service.repository import Repository

PG_BASE = "postgresql+psycopg://{user}@127.0.0.1:5432/test"


def _pg_admin() -> tuple[sa.Engine | None, str]:
    last = ""
    for user in ("postgres", "root"):
        eng = sa.create_engine(PG_BASE.format(user=user), pool_pre_ping=True)
        try:
            with eng.connect() as c:
                c.exec_driver_sql("select 1")
            return eng, user
        except sa.exc.OperationalError as exc:
            last = str(exc.orig).splitlines()[0]
            eng.dispose()
    return None, last


_ADMIN: tuple[sa.Engine | None, str] | None = None


def pg_admin() -> tuple[sa.Engine | None, str]:
    global _ADMIN
    if _ADMIN is None:
        _ADMIN = _pg_admin()
    return _ADMIN


@pytest.fixture
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A database URL for the parametrised backend (``sqlite`` or ``postgresql``)."""
    backend = getattr(request, "param", "sqlite")
    if backend == "sqlite":
        yield f"sqlite:///{tmp_path / 'service.db'}"
        return
    admin, user = pg_admin()
    if admin is None:
        pytest.skip(f"PostgreSQL at 127.0.0.1:5432 unreachable: {user}")
    schema = f"t_{uuid.uuid4().hex[:12]}"
    with admin.begin() as c:
        c.exec_driver_sql(f'CREATE SCHEMA "{schema}"')
    try:
        yield PG_BASE.format(user=user) + f"?options=-csearch_path%3D{schema}"
    finally:
        with admin.begin() as c:
            c.exec_driver_sql(f'DROP SCHEMA "{schema}" CASCADE')


@pytest.fixture
def repo(db_url: str) -> Iterator[Repository]:
    r = Repository.open(db_url)
    yield r
    r.close()

