"""The storage layer on SQLite and PostgreSQL: migrations, exact money, atomic and idempotent
writes, refusals that store nothing, and no lost update under concurrent fills."""

from __future__ import annotations

import threading
from decimal import Decimal

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from margin_engine.errors import InputError
from margin_engine.service.db import make_engine, migrate
from margin_engine.service.errors import ConflictError, NotFoundError
from margin_engine.service.repository import AccountState, MarginStamp, Repository
from margin_engine.service.tables import Base

D = Decimal
BACKENDS = pytest.mark.parametrize("db_url", ["sqlite", "postgresql"], indirect=True)


@BACKENDS
def test_migrated_schema_matches_the_table_classes(repo: Repository):
    insp = sa.inspect(repo.engine)
    tables = set(insp.get_table_names()) - {"alembic_version"}
    assert tables == set(Base.metadata.tables)
    for name, table in Base.metadata.tables.items():
        cols = {c["name"]: c["nullable"] for c in insp.get_columns(name)}
        assert cols == {c.name: c.nullable for c in table.columns}, name
    with repo.engine.connect() as c:
        assert c.exec_driver_sql("select version_num from alembic_version").scalar() == "0003"
    with repo.engine.connect() as c:  # Alembic's own autogenerate diff: no drift
        assert compare_metadata(MigrationContext.configure(c, opts={"compare_type": True}),
                                Base.metadata) == []
    migrate(repo.engine)  # idempotent: already at head


def test_sqlite_runs_in_wal_with_foreign_keys(repo: Repository):
    with repo.engine.connect() as c:
        assert c.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert c.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1


@BACKENDS
def test_money_is_exact_and_reads_back_equal(repo: Repository):
    repo.create_account("a1", collateral={"USDT": "0.1"})
    repo.deposit("a1", "USDT", "0.2")
    with pytest.raises(InputError, match="out of range"):
        repo.deposit("a1", "USDT", "100000000000000000000")
    repo.deposit("a1", "USDT", "0.000000000000000001")
    assert repo.get_account("a1").balances["USDT"] == D("0.300000000000000001")
    with pytest.raises(InputError, match="18 decimal places"):
        repo.deposit("a1", "USDT", "0.0000000000000000001")
    with pytest.raises(InputError, match="float"):
        repo.deposit("a1", "USDT", 0.1)  # type: ignore[arg-type]


@BACKENDS
def test_account_creation_key_and_duplicates(repo: Repository):
    made = repo.create_account("alice", "portfolio", credit_rating="A")
    assert made.api_key.startswith("me_") and made.audit_seq == 1
    assert repo.account_for_key(made.api_key) == "alice"
    assert repo.account_for_key(made.api_key + "x") is None
    with repo.engine.connect() as c:
        stored = c.exec_driver_sql("select api_key_hash from accounts").scalar()
    assert made.api_key not in stored and stored.startswith("sha256$")
    with pytest.raises(ConflictError, match="already exists"):
        repo.create_account("alice")
    with pytest.raises(InputError, match="margin_mode"):
        repo.create_account("bob", "leveraged")
    with pytest.raises(NotFoundError):
        repo.get_account("nobody")
    assert repo.account_ids() == ["alice"]


@BACKENDS
def test_withdrawal_refused_by_the_check_stores_nothing(repo: Repository):
    repo.create_account("a1", collateral={"USDT": "1000"})
    head = repo.verify_audit().head
    im = D("600")

    def equity_covers_im(after: AccountState) -> str | None:
        eq = after.balances.get("USDT", D(0))
        return None if eq >= im else f"would leave equity {eq} < initial margin {im}"

    with pytest.raises(ConflictError, match="equity 500 < initial margin 600"):
        repo.withdraw("a1", "USDT", "500", check=equity_covers_im)
    with pytest.raises(ConflictError, match="exceeds the balance"):
        repo.withdraw("a1", "USDT", "1000.01")
    assert repo.get_account("a1").balances == {"USDT": D(1000)}
    assert repo.verify_audit().head == head  # no audit entry either
    done = repo.withdraw("a1", "USDT", "400", check=equity_covers_im)
    assert (done.amount, done.balance) == (D(-400), D(600))


@BACKENDS
def test_fill_applies_once_and_replays_the_first_result(repo: Repository):
    repo.create_account("a1", collateral={"USDT": "10000"})
    stamp = MarginStamp("binance-usdm", "0.1.0", "ab" * 32, "2026-02-05T00:00:00Z",
                        {"initial_margin": D("300"), "maintenance_margin": D("150"),
                         "equity": D("10000")})
    first = repo.apply_fill("a1", "f-1", "BTCUSDT", "0.5", "60000", stamp=stamp)
    again = repo.apply_fill("a1", "f-1", "BTCUSDT", "0.5", "60000")
    assert not first.replayed and again.replayed
    assert (again.position_after, again.audit_seq) == (first.position_after, first.audit_seq)
    with pytest.raises(ConflictError, match="different"):
        repo.apply_fill("a1", "f-1", "BTCUSDT", "0.6", "60000")
    repo.apply_fill("a1", "f-2", "BTCUSDT", "0.25", "66000")
    pos = repo.get_account("a1").positions["BTCUSDT"]
    # avg = (0.5*60000 + 0.25*66000) / 0.75 = 62000 exactly
    assert (pos.size, pos.avg_price, pos.realised_pnl) == (D("0.75"), D(62000), D(0))
    repo.apply_fill("a1", "f-3", "BTCUSDT", "-1", "61000")
    pos = repo.get_account("a1").positions["BTCUSDT"]
    # 0.75 closed at 61000 against 62000 → −750 realised; 0.25 short opened at 61000
    assert (pos.size, pos.avg_price, pos.realised_pnl) == (D("-0.25"), D(61000), D(-750))
    assert [f.fill_id for f in repo.fills("a1")] == ["f-1", "f-2", "f-3"]
    entry = repo.audit_after(0)[1]
    assert (entry.action, entry.model, entry.margin["initial_margin"]) == (
        "fill.apply", "binance-usdm", "300")
    with pytest.raises(NotFoundError):
        repo.apply_fill("nobody", "f-9", "BTCUSDT", "1", "1")
    with pytest.raises(InputError, match="price"):
        repo.apply_fill("a1", "f-9", "BTCUSDT", "1", "-1")


@BACKENDS
def test_concurrent_fills_lose_no_update(db_url: str):
    """Four threads, each with its own repository (connection pool), apply 8 fills to one
    account, every fill sent twice: the position is the exact sum, each fill applied once."""
    setup = Repository.open(db_url)
    setup.create_account("a1", collateral={"USDT": "1"})
    errors: list[BaseException] = []

    def worker(t: int) -> None:
        r = Repository.open(db_url, upgrade=False)
        try:
            for i in range(8):
                for _ in range(2):
                    r.apply_fill("a1", f"t{t}-{i}", "BTCUSDT", "0.001", "50000")
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)
        finally:
            r.close()

    threads = [threading.Thread(target=worker, args=(t,)) for t in range(4)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert not errors
    assert setup.get_account("a1").positions["BTCUSDT"].size == D("0.032")
    assert len(setup.fills("a1")) == 32
    check = setup.verify_audit()
    assert check.ok and check.checked == 33
    assert setup.reconcile() == []
    setup.close()


@BACKENDS
def test_events_are_numbered_without_gaps_and_filtered_by_account(repo: Repository):
    repo.create_account("a1")
    repo.create_account("a2")
    for acc in ("a1", "a2", "a1"):
        repo.append_event("margin_call", {"equity": D("10.50")}, acc)
    assert [e.seq for e in repo.events_after(0)] == [1, 2, 3]
    mine = repo.events_after(1, account_id="a1")
    assert [(e.seq, e.payload["equity"]) for e in mine] == [(3, "10.5")]


@BACKENDS
def test_model_configuration_and_snapshots(repo: Repository):
    h = repo.save_model_config("deribit-pm", "0.1.0", {"scan": D("0.15"), "vol_shift": 0})
    assert repo.active_model_config() == ("deribit-pm", "0.1.0",
                                          {"scan": "0.15", "vol_shift": 0}, h)
    h2 = repo.save_model_config("deribit-pm", "0.1.0", {"scan": D("0.2")})
    assert h2 != h and repo.active_model_config()[3] == h2  # type: ignore[index]
    repo.create_account("a1")
    repo.save_snapshot("a1", MarginStamp("deribit-pm", "0.1.0", h2, "2026-02-05T00:00:00Z",
                                         {"initial_margin": D(1), "maintenance_margin": D(1),
                                          "equity": D(2)}), "healthy")
    with repo.engine.connect() as c:
        assert c.exec_driver_sql("select count(*) from margin_snapshots").scalar() == 1


def test_unsupported_url_is_one_input_error():
    with pytest.raises(InputError, match="unsupported database 'mysql'"):
        make_engine("mysql://x@y/z")


def test_sqlite_readers_do_not_wait_for_a_writer(repo: Repository):
    """A read during an open write transaction answers at once from the WAL snapshot."""
    repo.create_account("a1", collateral={"USDT": "5"})
    with repo.engine.connect() as writer:
        writer.exec_driver_sql("UPDATE collateral_balances SET amount = '6'")
        assert writer.in_transaction()  # BEGIN IMMEDIATE: the write lock is held
        assert repo.get_account("a1").balances["USDT"] == D(5)  # the committed state
        writer.rollback()
