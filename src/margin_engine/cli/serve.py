"""``margin-engine serve [--db URL] [--host H] [--port P] --model NAME [--param k=v ...]
[--history FILE ...] [--market FILE] [--feed SOURCE ...] [--dynamic]
[--margin-event-threshold X]``: the margin service
(DESIGN §8) under uvicorn.

Without ``--market`` the service starts on the demo market (``margin_engine.demo.synthetic``,
seed 7); without ``--db`` on ``sqlite:///margin-engine.db``. It prints its URL and, when it
generated one, the operator key (once: set ``MARGIN_ENGINE_OPERATOR_KEY`` to keep a key across
restarts). ``--feed`` (repeatable) runs a market feed in the service: ``replay:FILE[,FILE...]
[@SPEED|@max]`` or ``nats://HOST:PORT/SUBJECT[?durable=NAME]`` (:mod:`margin_engine.io.feeds.spec`).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from margin_engine.cli.main import HistoryOpt, ParamOpt, app, err_console, fail
from margin_engine.cli.params import parse_params
from margin_engine.domain.market import MarketSnapshot
from margin_engine.errors import InputError
from margin_engine.io.loaders import load_market, parse_model
from margin_engine.io.model_options import build_model

if TYPE_CHECKING:
    from margin_engine.live.dynamic import LiveDynamic

DEFAULT_DB = "sqlite:///margin-engine.db"
MARGIN_EVENT_THRESHOLD = 0.01
"""``service.core.MARGIN_EVENT_THRESHOLD`` (1 %, documented there), repeated here so that the
CLI does not import the storage layer at start (tests/service/test_dynamic_state.py checks they
agree)."""


def live_dynamic(history: list[Path] | None, market: MarketSnapshot) -> LiveDynamic:
    """The dynamic controller of ``serve --dynamic``: default settings, its realised-vol seed
    from the ``--history`` files (else the embedded synthetic history ending the day before
    the market, the same rule as the models')."""
    from margin_engine.io.series import load_price_series, synthetic_series
    from margin_engine.live.dynamic import LiveDynamic, LiveDynamicConfig

    seed = (load_price_series(history) if history
            else synthetic_series(market.timestamp.date()))
    return LiveDynamic(LiveDynamicConfig(), seed)


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
          = None,
          dynamic: Annotated[bool, typer.Option(
              "--dynamic", help="run the dynamic margin controller on the feed "
              "(docs/dynamic-margin.md, Live)")] = False,
          feed: Annotated[list[str] | None, typer.Option(
              "--feed", help="market feed: replay:FILE[,FILE...][@SPEED|@max] or "
                             "nats://HOST:PORT/SUBJECT[?durable=NAME] (repeatable)")]
          = None,
          margin_event_threshold: Annotated[float, typer.Option(
              "--margin-event-threshold", help="relative move of IM, MM or equity that "
              "publishes a margin event, in [0, 1) (0: every move)")]
          = MARGIN_EVENT_THRESHOLD) -> None:
    """Run the margin service: REST + WebSocket, durable storage, audit log, proofs."""
    import uvicorn

    from margin_engine.demo.synthetic import generate_market
    from margin_engine.io.feeds.replay import file_kind
    from margin_engine.io.feeds.spec import ReplaySpec, parse_feed
    from margin_engine.service.app import create_app
    from margin_engine.service.auth import operator_key
    from margin_engine.service.core import stored_dynamic_state
    from margin_engine.service.repository import Repository

    try:
        if not (0.0 <= margin_event_threshold < 1.0):
            raise InputError("--margin-event-threshold",
                             f"must lie in [0, 1), got {margin_event_threshold!r}")
        snap = load_market(market) if market is not None else parse_model(
            MarketSnapshot, generate_market(seed=7), "market")
        mdl, note = build_model(model, parse_params(param), history, snap)
        controller = live_dynamic(history, snap) if dynamic else None
        feeds = [parse_feed(f) for f in feed or ()]
        for spec in feeds:
            if isinstance(spec, ReplaySpec):
                for p in spec.paths:
                    file_kind(p)  # refuse a file of another kind now, in one line
        try:
            key = operator_key()
        except ValueError as exc:
            raise InputError("MARGIN_ENGINE_OPERATOR_KEY", str(exc).split(": ", 1)[-1]) from None
        try:  # migrate now, so a bad URL is one line here rather than a startup traceback
            repo = Repository.open(db)
            stored = repo.stored_market()
            saved = repo.stored_dynamic() if controller is not None else None
            state = stored_dynamic_state(repo) if saved is not None else None
            repo.close()
            if state is not None:  # a state that cannot be resumed: one line, not a trace
                live_dynamic(history, snap).restore_doc(state)
            if stored is not None:  # a damaged stored market: one line, not a startup trace
                try:
                    parse_model(MarketSnapshot, json.loads(stored.snapshot), "market_state")
                except (InputError, ValueError) as exc:
                    err = exc if isinstance(exc, InputError) else InputError("<root>", str(exc))
                    raise err.within("market_state.snapshot") from None
        except InputError:
            raise
        except Exception as exc:  # the driver's own error (unreachable server, bad file)
            raise InputError("--db", f"{type(exc).__name__}: {exc}".splitlines()[0]) from None
    except InputError as exc:
        fail(exc)
        return
    if note:
        err_console.print(f"note: {note}", style="dim")
    if stored is not None:
        err_console.print(f"note: resuming from the stored market of {stored.market_timestamp} "
                          f"({stored.updates} updates applied; the start market is not used)",
                          style="dim")
    if saved is not None:
        err_console.print(f"note: resuming the dynamic controller at multiplier "
                          f"{saved.im_multiplier:.6g} (stored {saved.market_timestamp})",
                          style="dim")
    application = create_app(mdl, snap, db, operator_key=key.key, dynamic=controller,
                             feeds=feeds, margin_event_threshold=margin_event_threshold)
    shown = f"[{host}]" if ":" in host else host
    print(f"margin-engine serving {mdl.name} on http://{shown}:{port} (database {db})",
          flush=True)
    print(f"dashboard: http://{shown}:{port}/dashboard/ (docs/dashboard.md)", flush=True)
    for spec in feeds:
        print(f"feed: {spec.key}", flush=True)
    if key.generated:
        print(f"operator key (shown once; set MARGIN_ENGINE_OPERATOR_KEY to keep it): {key.key}",
              flush=True)
    # access_log off: at "warning" it never prints, but each request still paid for the call
    uvicorn.run(application, host=host, port=port, log_level="warning", access_log=False)
