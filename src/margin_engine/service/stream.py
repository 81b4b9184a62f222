"""``WS /v1/stream``: events pushed as they are appended (DESIGN §8).

Browsers cannot set headers, so the key comes as the ``token`` query parameter or as the first
message (the key itself, or ``{"token": KEY}``); a bad key closes with 1008 (policy violation).
``after=SEQ`` first sends the stored events after ``SEQ``, then live ones, with no gap and no
duplicate (subscribe first, replay, then skip what the replay already sent).
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

from fastapi import APIRouter, WebSocket, WebSocketDisconnect

from .access import principal_for
from .core import ServiceCore, event_json

router = APIRouter()
FIRST_MESSAGE_TIMEOUT_S = 10.0


async def _key(ws: WebSocket) -> str | None:
    token = ws.query_params.get("token")
    if token:
        return token
    try:
        text = await asyncio.wait_for(ws.receive_text(), FIRST_MESSAGE_TIMEOUT_S)
    except (TimeoutError, WebSocketDisconnect, KeyError, RuntimeError):
        return None
    try:
        doc: Any = json.loads(text)
    except ValueError:
        return text.strip()
    if isinstance(doc, dict) and isinstance(doc.get("token"), str):
        return str(doc["token"])
    return None


@router.websocket("/v1/stream")
async def stream(ws: WebSocket) -> None:
    """Push ``margin_call``, ``liquidation``, ``recovery`` and ``margin`` events (an account key:
    its own)."""
    await ws.accept()
    core: ServiceCore = ws.app.state.core
    key = await _key(ws)
    who = await asyncio.to_thread(principal_for, core, ws.app.state.operator_key, key)
    if who is None:
        await ws.close(code=1008, reason="bad or missing key")
        return
    try:
        after = max(0, int(ws.query_params.get("after", "0")))
    except ValueError:
        await ws.close(code=1008, reason="after: not an integer")
        return
    queue, leave = core.subscribe(who.account)
    try:
        last = after
        for rec in await asyncio.to_thread(core.repo.events_after, after,
                                           account_id=who.account):
            await ws.send_json(event_json(rec))
            last = rec.seq
        closed = asyncio.ensure_future(_until_closed(ws))
        while True:
            got = asyncio.ensure_future(queue.get())
            done, _ = await asyncio.wait({got, closed}, return_when=asyncio.FIRST_COMPLETED)
            if closed in done:
                got.cancel()
                return
            doc = got.result()
            if doc["seq"] > last:
                await ws.send_json(doc)
                last = doc["seq"]
    except (WebSocketDisconnect, RuntimeError):
        return
    finally:
        leave()


async def _until_closed(ws: WebSocket) -> None:
    while True:
        msg = await ws.receive()
        if msg["type"] == "websocket.disconnect":
            return
