"""Database engines and migrations: SQLite (WAL, foreign keys) by default, PostgreSQL by URL.

``make_engine(url)`` returns a SQLAlchemy engine configured for the service;
``migrate(engine)`` brings the schema to the newest Alembic revision, using the migration scripts
shipped in this package (no ``alembic.ini``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, NoSuchModuleError

from margin_engine.errors import InputError

DEFAULT_URL = "sqlite:///margin-engine.db"
MIGRATIONS = Path(__file__).with_name("migrations")
SQLITE_BUSY_MS = 10_000


def _sqlite_setup(engine: Engine) -> None:
    """WAL, foreign keys and ``BEGIN IMMEDIATE`` transactions on every SQLite connection.

    pysqlite's own transaction handling is switched off (``isolation_level=None``) and each
    transaction starts ``BEGIN IMMEDIATE``: it takes the write lock up front, so two writers wait
    (``busy_timeout``) instead of failing with "database is locked" on a read-to-write upgrade.
    Connections with the execution option ``readonly=True`` (:func:`reader`) start a deferred
    ``BEGIN`` instead: under WAL they read a consistent snapshot without blocking the writer.
    """

    @event.listens_for(engine, "connect")
    def _connect(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_MS}")
        cur.execute("PRAGMA synchronous=FULL")
        cur.close()

    @event.listens_for(engine, "begin")
    def _begin(conn: Any) -> None:
        readonly = conn.get_execution_options().get("readonly", False)
        conn.exec_driver_sql("BEGIN" if readonly else "BEGIN IMMEDIATE")


def make_engine(url: str = DEFAULT_URL, **kwargs: Any) -> Engine:
    """A SQLAlchemy engine for ``url`` (``sqlite:///FILE`` or ``postgresql+psycopg://...``).

    Parameters
    ----------
    url : str
        The database URL. ``postgresql://`` is normalised to the psycopg 3 driver.
    **kwargs
        Passed to :func:`sqlalchemy.create_engine`.

    Raises
    ------
    InputError
        ``--db: ...`` when the URL cannot be parsed or names an unsupported backend.
    """
    try:
        parsed = make_url(url)
    except ArgumentError as exc:
        raise InputError("--db", f"not a database URL: {url!r}") from exc
    backend = parsed.get_backend_name()
    if backend == "postgresql" and parsed.drivername == "postgresql":
        parsed = parsed.set(drivername="postgresql+psycopg")
    if backend not in ("sqlite", "postgresql"):
        raise InputError("--db", f"unsupported database {backend!r} (sqlite or postgresql)")
    try:
        engine = create_engine(parsed, **kwargs)
    except (ArgumentError, NoSuchModuleError) as exc:
        raise InputError("--db", str(exc).splitlines()[0]) from exc
    if backend == "sqlite":
        _sqlite_setup(engine)
    return engine


def reader(engine: Engine) -> Engine:
    """The same engine (pool, events) marked ``readonly``: SQLite reads take no write lock."""
    return engine.execution_options(readonly=True)


def alembic_config() -> Config:
    """An Alembic configuration built in code, pointing at the shipped migration scripts."""
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    return cfg


def migrate(engine: Engine, revision: str = "head") -> None:
    """Upgrade the database of ``engine`` to ``revision`` (default: the newest)."""
    cfg = alembic_config()
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, revision)
