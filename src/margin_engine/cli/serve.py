"""``margin-engine serve [--db URL] [--host H] [--port P] --model NAME [--param k=v ...]
[--history FILE ...] [--market FILE]``: the margin service (DESIGN §8) under uvicorn.

Without ``--market`` the service starts on the demo market (``margin_engine.demo.synthetic``,
seed 7); without ``--db`` on ``sqlite:///margin-engine.db``. It prints its URL and, when it
generated one, the operator key (once: set ``MARGIN_ENGINE_OPERATOR_KEY`` to keep a key across
restarts).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from margin_engine.cli.main import HistoryOpt, ParamOpt, app, err_console, fail
from margin_engine.cli.params import parse_params
from margin_engine.demo.synthetic import generate_market
from margin_engine.domain.market import MarketSnapshot
from margin_engine.errors import InputError
from margin_engine.io.loaders import load_market, parse_model
from margin_engine.io.model_options import build_model

DEFAULT_DB = "sqlite:///margin-engine.db"


@app.command()
def serve(model: Annotated[str, typer.Option("--model", "-m", help="registered model name")],
          db: Annotated[str, typer.Option("--db", help="SQLAlchemy database URL")] = DEFAULT_DB,
          host: Annotated[str, typer.Option("--host", help="address to listen on")] = (
              "127.0.0.1"),
          port: Annotated[int, typer.Option("--port", min=0, max=65535,
                                            help="TCP port")] = 8000,
          param: ParamOpt = None,
          history: HistoryOpt = None,
          market: Annotated[Path | None, typer.Option(
              "--market", help="market snapshot JSON at start (default: the demo market)")]
          = None) -> None:
    """Run the margin service: REST + WebSocket, durable storage, audit log, proofs."""
    import uvicorn

    from margin_engine.service.app import create_app
    from margin_engine.service.auth import operator_key
    from margin_engine.service.repository import Repository

    try:
        snap = load_market(market) if market is not None else parse_model(
            MarketSnapshot, generate_market(seed=7), "market")
        mdl, note = build_model(model, parse_params(param), history, snap)
        try:
            key = operator_key()
        except ValueError as exc:
            raise InputError("MARGIN_ENGINE_OPERATOR_KEY", str(exc).split(": ", 1)[-1]) from None
        try:  # migrate now, so a bad URL is one line here rather than a startup traceback
            Repository.open(db).close()
        except InputError:
            raise
        except Exception as exc:  # the driver's own error (unreachable server, bad file)
            raise InputError("--db", f"{type(exc).__name__}: {exc}".splitlines()[0]) from None
    except InputError as exc:
        fail(exc)
        return
    if note:
        err_console.print(f"note: {note}", style="dim")
    application = create_app(mdl, snap, db, operator_key=key.key)
    shown = f"[{host}]" if ":" in host else host
    print(f"margin-engine serving {mdl.name} on http://{shown}:{port} (database {db})",
          flush=True)
    if key.generated:
        print(f"operator key (shown once; set MARGIN_ENGINE_OPERATOR_KEY to keep it): {key.key}",
              flush=True)
    # access_log off: at "warning" it never prints, but each request still paid for the call
    uvicorn.run(application, host=host, port=port, log_level="warning", access_log=False)
