"""Verifiable margin: a tampered audit entry, a changed balance and a forged proof are each
detected, through the repository and through ``margin-engine audit verify|prove``."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from margin_engine.cli.main import app
from margin_engine.service.audit_chain import GENESIS, entry_hash, verify_chain
from margin_engine.service.repository import AccountFigures, Repository, account_id_hash

D = Decimal
BACKENDS = pytest.mark.parametrize("db_url", ["sqlite", "postgresql"], indirect=True)
runner = CliRunner()


def _book(repo: Repository) -> None:
    repo.create_account("a1", collateral={"USDT": "1000"})
    repo.create_account("a2", "portfolio")
    repo.deposit("a2", "USDC", "2500.5")
    repo.apply_fill("a1", "f1", "BTCUSDT", "0.01", "60000")
    repo.withdraw("a2", "USDC", "500")


def _cli(*args: str) -> tuple[int, str]:
    res = runner.invoke(app, list(args))
    return res.exit_code, res.output


def test_chain_hash_is_sha256_over_prev_hash_and_canonical_json():
    """Recomputed here with hashlib and json alone (not the module's canonical encoder)."""
    import hashlib

    body = {"seq": 1, "recorded_at": "2026-02-05T00:00:00+00:00", "actor": "operator",
            "action": "collateral.deposit", "account": "a1",
            "changes": {"currency": "USDT", "amount": "10"}, "model": None,
            "model_version": None, "params_hash": None, "market_timestamp": None, "margin": {}}
    text = ('{"account":"a1","action":"collateral.deposit","actor":"operator","changes":'
            '{"amount":"10","currency":"USDT"},"margin":{},"market_timestamp":null,"model":null,'
            '"model_version":null,"params_hash":null,"recorded_at":"2026-02-05T00:00:00+00:00",'
            '"seq":1}')
    assert json.loads(text) == body
    want = hashlib.sha256(bytes(32) + text.encode()).hexdigest()
    assert entry_hash(GENESIS, body) == want
    assert verify_chain([{**body, "prev_hash": GENESIS, "hash": want}]).ok


@BACKENDS
def test_clean_log_verifies_and_cli_says_ok(repo: Repository, db_url: str):
    _book(repo)
    check = repo.verify_audit()
    assert check.ok and check.checked == 5
    code, out = _cli("audit", "verify", "--db", db_url)
    assert code == 0 and out.startswith("ok: 5 audit entries"), out


@BACKENDS
@pytest.mark.parametrize(("sql", "seq", "reason"), [
    ("UPDATE audit_log SET changes = replace(changes, '0.01', '0.02') WHERE seq = 4", 4,
     "hash mismatch"),
    ("UPDATE audit_log SET actor = 'intruder' WHERE seq = 2", 2, "hash mismatch"),
    ("DELETE FROM audit_log WHERE seq = 3", 4, "missing or out of order"),
    ("UPDATE audit_log SET hash = '" + "0" * 64 + "' WHERE seq = 5", 5, "hash mismatch"),
])
def test_tampered_entry_is_named(repo: Repository, db_url: str, sql: str, seq: int,
                                 reason: str):
    _book(repo)
    with repo.engine.begin() as c:
        c.exec_driver_sql(sql)
    check = repo.verify_audit()
    assert not check.ok and check.broken_seq == seq and reason in check.reason
    code, out = _cli("audit", "verify", "--db", db_url)
    assert code == 1
    assert out.strip().splitlines()[0].startswith(f"error: audit[seq={seq}]: "), out


@BACKENDS
def test_rewritten_entry_with_recomputed_hash_breaks_the_next_link(repo: Repository):
    """Rewriting an entry and its own hash still breaks the chain at the next entry."""
    _book(repo)
    row = repo.audit_after(1, limit=1)[0].to_json()
    row["changes"]["amount"] = "9999"
    new_hash = entry_hash(row["prev_hash"], row)
    with repo.engine.begin() as c:
        c.exec_driver_sql("UPDATE audit_log SET changes = ?, hash = ? WHERE seq = 2"
                          if repo.engine.dialect.name == "sqlite" else
                          "UPDATE audit_log SET changes = %s, hash = %s WHERE seq = 2",
                          (json.dumps(row["changes"], sort_keys=True, separators=(",", ":")),
                           new_hash))
    check = repo.verify_audit()
    assert (check.ok, check.broken_seq) == (False, 3)


@BACKENDS
def test_changed_balance_is_detected(repo: Repository, db_url: str):
    _book(repo)
    with repo.engine.begin() as c:
        c.exec_driver_sql("UPDATE collateral_balances SET amount = '1500' "
                          "WHERE account_id = 'a1'")
    assert repo.verify_audit().ok  # the log itself is intact ...
    assert repo.reconcile() == [("collateral_balances[a1,USDT]",
                                 "1500 stored, the audit log gives 1000")]  # ... the state not
    code, out = _cli("audit", "verify", "--db", db_url)
    assert code == 1
    assert "error: collateral_balances[a1,USDT]: 1500 stored, the audit log gives 1000" in out


def _published(repo: Repository, tmp_path: Path) -> tuple[str, Path, dict]:
    _book(repo)
    figs = {"a1": AccountFigures(D("120.5"), D("60.25"), D("1003.1")),
            "a2": AccountFigures(D(0), D(0), D("2000.5"))}
    c = repo.publish_commitment(figs, "2026-02-05T12:00:00Z")
    bundle = repo.proof_for("a1").to_json()
    path = tmp_path / "proof.json"
    path.write_text(json.dumps(bundle))
    return c.root, path, bundle


@BACKENDS
def test_published_proof_verifies_and_names_the_owner(repo: Repository, tmp_path: Path):
    root, path, bundle = _published(repo, tmp_path)
    leaf = json.loads(bundle["proof"]["leaf"])
    assert leaf == {"account": account_id_hash(bundle["salt"], "a1"), "equity": "1003.1",
                    "initial_margin": "120.5", "maintenance_margin": "60.25",
                    "market_timestamp": "2026-02-05T12:00:00Z"}
    assert bundle["commitment"] == {"root": root, "tree_size": 2,
                                    "market_timestamp": "2026-02-05T12:00:00Z", "seq": 1}
    code, out = _cli("audit", "prove", "--root", root, "--proof", str(path))
    assert code == 0 and out.startswith("ok: leaf 0 of 2"), out
    assert repo.verify_audit().ok  # the commitment is itself an audit entry
    assert repo.audit_after(5)[0].changes["root"] == root


@BACKENDS
def test_forged_proof_is_detected(repo: Repository, tmp_path: Path):
    root, path, bundle = _published(repo, tmp_path)
    forged = json.loads(json.dumps(bundle))
    forged["proof"]["leaf"] = bundle["proof"]["leaf"].replace('"equity":"1003.1"',
                                                              '"equity":"5003.1"')
    path.write_text(json.dumps(forged))
    code, out = _cli("audit", "prove", "--root", root, "--proof", str(path))
    assert code == 1 and out.startswith("error: proof: leaf 0 of 2 does not lead to root"), out
    forged = json.loads(json.dumps(bundle))
    forged["proof"]["leaf_index"] = 1
    path.write_text(json.dumps(forged["proof"]))  # a bare proof object also reads
    assert _cli("audit", "prove", "--root", root, "--proof", str(path))[0] == 1
    other = "ab" * 32
    path.write_text(json.dumps(bundle))
    code, out = _cli("audit", "prove", "--root", other, "--proof", str(path))
    assert code == 1 and "commitment.root: differs" in out


def test_prove_and_verify_bad_input_is_one_line_exit_2(tmp_path: Path):
    bad = tmp_path / "p.json"
    bad.write_text('{"leaf": "x", "leaf_index": -1, "tree_size": 1, "hashes": []}')
    cases = [
        (("audit", "prove", "--root", "zz", "--proof", str(bad)), "error: --root: must be 64"),
        (("audit", "prove", "--root", "00" * 32, "--proof", str(bad)),
         "error: leaf_index: must be a non-negative integer"),
        (("audit", "prove", "--root", "00" * 32, "--proof", str(tmp_path / "none.json")),
         "error: --proof: cannot read"),
        (("audit", "verify", "--db", "sqlite:///" + str(tmp_path / "none.db")),
         "error: --db: no database file"),
        (("audit", "verify", "--db", "notaurl"), "error: --db: not a database URL"),
    ]
    for args, want in cases:
        code, out = _cli(*args)
        assert code == 2 and out.strip().startswith(want) and len(out.strip().splitlines()) == 1


def _chain(n: int) -> list[dict]:
    prev, out = GENESIS, []
    for seq in range(1, n + 1):
        body = {"seq": seq, "recorded_at": f"2026-02-05T00:00:{seq:02d}+00:00",
                "actor": "operator", "action": "collateral.deposit", "account": f"a{seq % 3}",
                "changes": {"currency": "USDT", "amount": str(seq)}, "model": None,
                "model_version": None, "params_hash": None, "market_timestamp": None,
                "margin": {}}
        h = entry_hash(prev, body)
        out.append({**body, "prev_hash": prev, "hash": h})
        prev = h
    return out


@settings(max_examples=60, deadline=None)
@given(st.integers(1, 12), st.data())
def test_any_changed_field_breaks_the_chain_at_that_entry(n, data):
    entries = _chain(n)
    assert verify_chain(entries).ok
    k = data.draw(st.integers(0, n - 1))
    name = data.draw(st.sampled_from(["recorded_at", "actor", "action", "account", "changes",
                                      "prev_hash", "hash", "margin"]))
    e = dict(entries[k])
    e[name] = ({"amount": "x"} if name in ("changes", "margin")
               else ("f" * 64 if name in ("prev_hash", "hash") else e[name] + "!"))
    check = verify_chain([*entries[:k], e, *entries[k + 1:]])
    assert not check.ok and check.broken_seq == k + 1
