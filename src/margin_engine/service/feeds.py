"""The service's market feeds (DESIGN §8 ``--feed``), each an asyncio task started with the
application and cancelled when it stops.

- ``replay:FILES[@SPEED]`` (:mod:`margin_engine.io.feeds.replay`): the files' observations in
  time order, each turned into a partial update of the live market and applied, waiting
  ``Δt / SPEED`` between them (none at ``max``). Observations at or before the live market's
  time are skipped (they feed the index's venue table only), so a restart on a stored market
  resumes where the last run stopped. The replay ends at the end of the files, or before the
  first expiry of a live instrument (the live book does not settle expiries).
- ``nats://HOST:PORT/SUBJECT`` : JSON market updates (``POST /v1/market`` bodies) from the
  NATS JetStream stream that captures ``SUBJECT``, through a durable pull consumer with
  explicit acks and at most one message unacknowledged (``max_ack_pending`` 1), so messages
  are applied in stream order even across redeliveries. A message is acked only after the
  market it produced is stored together with its stream sequence, and a sequence at or before
  the stored one is acked without being applied: across a crash or a restart no update is lost
  and none is applied twice. After a crash the message that was in flight is redelivered when
  its ack wait (:data:`ACK_WAIT_S`) runs out, and the feed resumes from it. A bad
  message (not JSON, or an update the live book refuses) is logged as an error, counted, and
  acked; the feed goes on. A lost connection is retried with backoff.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from margin_engine.errors import InputError
from margin_engine.io.feeds.replay import ReplayPricer, first_expiry, read_quotes
from margin_engine.io.feeds.spec import FeedSpec, NatsSpec, ReplaySpec

from .core import ServiceCore

log = logging.getLogger("margin_engine.feed")

FETCH_BATCH = 1
ACK_WAIT_S = 5.0
"""Seconds before JetStream redelivers an unacknowledged message (the stall after a crash)."""
FETCH_TIMEOUT_S = 1.0
RETRY_MAX_S = 10.0


@dataclass
class FeedStatus:
    """What a running feed has done (``app.state.feeds``)."""

    key: str
    applied: int = 0
    skipped: int = 0
    errors: int = 0
    last_error: str | None = None
    finished: bool = False
    note: str | None = None

    def error(self, text: str) -> None:
        self.errors += 1
        self.last_error = text
        log.error("feed %s: %s", self.key, text)


async def run_replay(core: ServiceCore, spec: ReplaySpec, status: FeedStatus) -> None:
    """Replay ``spec``'s files into ``core`` (module docstring)."""
    pricer = ReplayPricer()
    quotes = await asyncio.to_thread(read_quotes, spec.paths)
    stop_at = first_expiry(core.live.market)
    prev: datetime | None = None
    while True:
        try:
            q = await asyncio.to_thread(next, quotes, None)
        except (InputError, OSError, EOFError, ValueError) as exc:  # a damaged file
            status.finished = True
            status.error(f"cannot read on: {type(exc).__name__}: {exc}")
            status.note = "stopped: unreadable file"
            return
        if q is None:
            status.finished, status.note = True, "end of the files"
            return
        if q.time <= core.live.market.timestamp:
            pricer.observe(q)
            status.skipped += 1
            continue
        if stop_at is not None and q.time >= stop_at:
            status.finished = True
            status.note = (f"stopped at {q.time.isoformat()}: a live instrument expires at "
                           f"{stop_at.isoformat()} (expiries are not settled)")
            log.warning("feed %s: %s", status.key, status.note)
            return
        if prev is not None:
            wait = 0.0 if spec.speed is None else (q.time - prev).total_seconds() / spec.speed
            await asyncio.sleep(max(wait, 0.0))
        prev = q.time
        body = pricer.update(q, core.live.market)
        try:
            await asyncio.to_thread(core.update_market, body)
            status.applied += 1
        except InputError as exc:
            status.error(f"{q.time.isoformat()}: {exc}")
        except Exception as exc:  # storage trouble: log it, keep the service up
            status.error(f"{q.time.isoformat()}: {type(exc).__name__}: {exc}")


async def _handle(core: ServiceCore, spec: NatsSpec, status: FeedStatus, msg: Any) -> None:
    seq = int(msg.metadata.sequence.stream)
    try:
        body = json.loads(msg.data)
        if not isinstance(body, dict):
            raise InputError("<root>", "a market update must be a JSON object")
        got = await asyncio.to_thread(core.update_market, body, feed=(spec.key, seq))
        if got is None:
            status.skipped += 1
        else:
            status.applied += 1
    except ValueError as exc:  # JSON errors and InputError (a refused update) alike
        what = f"not JSON: {exc}" if isinstance(exc, json.JSONDecodeError) else str(exc)
        status.error(f"message {seq}: {what}")
    await msg.ack()


async def run_nats(core: ServiceCore, spec: NatsSpec, status: FeedStatus) -> None:
    """Consume ``spec``'s subject into ``core`` until cancelled (module docstring)."""
    import nats
    from nats.errors import TimeoutError as NatsTimeout
    from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy

    config = ConsumerConfig(durable_name=spec.durable, ack_policy=AckPolicy.EXPLICIT,
                            deliver_policy=DeliverPolicy.ALL, ack_wait=ACK_WAIT_S,
                            max_ack_pending=1)

    delay = 0.5
    while True:
        nc = None
        try:
            nc = await nats.connect(spec.server, connect_timeout=2, max_reconnect_attempts=3)
            js = nc.jetstream()
            stream = await js.find_stream_name_by_subject(spec.subject)
            sub = await js.pull_subscribe(spec.subject, durable=spec.durable, stream=stream,
                                          config=config)
            delay = 0.5
            while True:
                try:
                    msgs = await sub.fetch(FETCH_BATCH, timeout=FETCH_TIMEOUT_S)
                except NatsTimeout:
                    continue
                for msg in msgs:
                    await _handle(core, spec, status, msg)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # no server, no stream, a lost connection: retry
            status.error(f"{type(exc).__name__}: {exc}; retrying in {delay:g} s")
            await asyncio.sleep(delay)
            delay = min(delay * 2, RETRY_MAX_S)
        finally:
            if nc is not None and not nc.is_closed:
                try:
                    await nc.close()
                except Exception:  # closing a broken connection
                    log.debug("feed %s: close failed", spec.key, exc_info=True)


def start_feeds(core: ServiceCore, specs: Sequence[FeedSpec]
                ) -> tuple[list[asyncio.Task[None]], list[FeedStatus]]:
    """One task per feed (call from the running event loop)."""
    tasks, statuses = [], []
    for spec in specs:
        st = FeedStatus(spec.key)
        coro = (run_replay(core, spec, st) if isinstance(spec, ReplaySpec)
                else run_nats(core, spec, st))
        tasks.append(asyncio.create_task(coro, name=f"feed {spec.key}"))
        statuses.append(st)
    return tasks, statuses


async def stop_feeds(tasks: Sequence[asyncio.Task[None]]) -> None:
    """Cancel the feeds and wait until they have stopped (an update being stored finishes
    first: it runs in a worker thread, which cancellation does not interrupt)."""
    for t in tasks:
        t.cancel()
    for t in tasks:
        try:
            await t
        except asyncio.CancelledError:
            pass
        except Exception:  # a feed that died: already logged by the feed
            log.debug("feed task ended with an error", exc_info=True)
