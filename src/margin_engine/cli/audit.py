"""``margin-engine audit verify|prove``: check the service's audit log and Merkle proofs offline.

- ``audit verify --db URL`` recomputes the hash chain and replays the log's collateral and fill
  entries against the stored balances and positions. Exit 0 when both hold, 1 with
  ``error: audit[seq=N]: <reason>`` (the first broken entry) or ``error: <table>[...]: <reason>``,
  2 when the database cannot be read.
- ``audit prove --root ROOT --proof FILE`` checks an inclusion proof (``{leaf, leaf_index,
  tree_size, hashes}``, bare or inside ``{"commitment": ..., "proof": ...}`` as
  ``GET /v1/accounts/{id}/proof`` answers) against ROOT. Exit 0 / 1 / 2 likewise.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from margin_engine.errors import InputError
from margin_engine.service.merkle import InclusionProof

from .main import app, console, err_console, fail

audit_app = typer.Typer(add_completion=False, no_args_is_help=True,
                        help="Verify the service's audit log and Merkle inclusion proofs.")
app.add_typer(audit_app, name="audit")


def _say_error(text: str) -> None:
    err_console.print(f"error: {text}", markup=False, highlight=False)


@audit_app.command("verify")
def verify(db: Annotated[str, typer.Option("--db", help="database URL, e.g. sqlite:///FILE")]
           ) -> None:
    """Recompute the audit hash chain and reconcile balances and positions with it."""
    # imported here: SQLAlchemy and Alembic are ~30% of every other command's start-up
    from sqlalchemy.exc import SQLAlchemyError

    from margin_engine.service.repository import Repository

    try:
        if db.startswith("sqlite:///") and not Path(db.removeprefix("sqlite:///")).is_file():
            raise InputError("--db", f"no database file {db.removeprefix('sqlite:///')!r}")
        repo = Repository.open(db, upgrade=False)
        try:
            check = repo.verify_audit()
            mismatches = repo.reconcile() if check.ok else []
        finally:
            repo.close()
    except InputError as exc:
        fail(exc)
    except SQLAlchemyError as exc:
        detail = str(getattr(exc, "orig", None) or exc).strip().splitlines()[0]
        fail(InputError("--db", f"cannot read the audit log: {detail}"))
    if not check.ok:
        _say_error(f"audit[seq={check.broken_seq}]: {check.reason}")
        raise typer.Exit(1)
    if mismatches:
        for path, reason in mismatches:
            _say_error(f"{path}: {reason}")
        raise typer.Exit(1)
    console.print(f"ok: {check.checked} audit entries chain to head {check.head}; balances and"
                  " positions match the log", markup=False, highlight=False)


def _load_proof(path: Path) -> tuple[InclusionProof, dict[str, Any] | None]:
    try:
        doc = json.loads(path.read_text())
    except OSError as exc:
        raise InputError("--proof", f"cannot read {str(path)!r}: {exc.strerror}") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise InputError("--proof", f"not JSON: {exc}") from None
    if not isinstance(doc, dict):
        raise InputError("--proof", "must be a JSON object")
    commitment = doc.get("commitment")
    body = doc.get("proof", doc)
    prefix = "proof" if "proof" in doc else ""
    where = (lambda k: f"{prefix}.{k}" if prefix else k)  # noqa: E731
    if not isinstance(body, dict):
        raise InputError(where("proof"), "must be an object")
    leaf, index, size, hashes = (body.get(k) for k in ("leaf", "leaf_index", "tree_size",
                                                       "hashes"))
    if not isinstance(leaf, str):
        raise InputError(where("leaf"), "must be a string (the leaf's canonical JSON)")
    for name, v in (("leaf_index", index), ("tree_size", size)):
        if not isinstance(v, int) or isinstance(v, bool) or v < 0:
            raise InputError(where(name), "must be a non-negative integer")
    if not isinstance(hashes, list):
        raise InputError(where("hashes"), "must be a list of hex strings")
    for i, h in enumerate(hashes):
        if not isinstance(h, str) or len(h) != 64:
            raise InputError(where(f"hashes[{i}]"), "must be 64 hex digits")
        try:
            bytes.fromhex(h)
        except ValueError:
            raise InputError(where(f"hashes[{i}]"), "must be 64 hex digits") from None
    assert isinstance(index, int) and isinstance(size, int)
    return (InclusionProof(leaf, index, size, tuple(hashes)),
            commitment if isinstance(commitment, dict) else None)


@audit_app.command("prove")
def prove(root: Annotated[str, typer.Option("--root", help="the commitment's root (hex)")],
          proof: Annotated[Path, typer.Option("--proof", help="proof JSON file")]) -> None:
    """Check an RFC 6962 inclusion proof against a published root, offline."""
    try:
        if len(root) != 64 or any(c not in "0123456789abcdefABCDEF" for c in root):
            raise InputError("--root", "must be 64 hex digits")
        p, commitment = _load_proof(proof)
    except InputError as exc:
        fail(exc)
    if commitment is not None and str(commitment.get("root", "")).lower() != root.lower():
        _say_error("commitment.root: differs from --root (the proof belongs to another"
                   " commitment)")
        raise typer.Exit(1)
    if not p.verify(root):
        _say_error(f"proof: leaf {p.leaf_index} of {p.tree_size} does not lead to root {root}")
        raise typer.Exit(1)
    console.print(f"ok: leaf {p.leaf_index} of {p.tree_size} is included under root {root}",
                  markup=False, highlight=False)
