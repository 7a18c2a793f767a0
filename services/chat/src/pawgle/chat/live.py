"""Real-time delivery: a server-sent events stream per user, fanned out across processes by NATS core.

Every chat process publishes a small notice (never a message body) on `chat.live.<user id>` after a
write commits; every process holding a stream for that user forwards it. Polling (C4) stays the source
of truth: a notice only says "something new in conversation X", and a reconnecting client polls.
EventSource cannot send headers, so a signed-in client may first fetch a short-lived ticket (C-stream
ticket) and open `/stream/?ticket=...`; with a header the ticket is not needed.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import time
from collections.abc import AsyncIterator
from typing import Any

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import StreamingResponse
from sqlalchemy.orm import Session

from pawgle.chat.aftercommit import on_commit
from pawgle.chat.metrics import OPEN_STREAMS, STREAM_DELIVERY, STREAM_NOTICES, STREAM_NOTICES_DROPPED
from pawgle.common.auth import OptionalUserId
from pawgle.common.errors import Unauthorized
from pawgle.common.revocation import RevocationList

router = APIRouter(prefix="/api/auth/chat")

KEEPALIVE_S = 15.0
TICKET_TTL_S = 60
# The notice chat's user.deleted / user.updated (inactive) consumer sends: every stream of that user ends.
REVOKED = "revoked"
QUEUE_SIZE = 1000
# Notices scheduled from worker threads, held until published (a bare task may be collected mid-flight).
_in_flight: set[asyncio.Task[None]] = set()


def subject_for(user_id: int) -> str:
    """The NATS core subject carrying live notices for one user."""
    return f"chat.live.{user_id}"


async def notify(request_or_app: Any, user_ids: list[int], kind: str, **fields: Any) -> None:
    """Publish a live notice to each user (best effort: a lost notice is caught up by polling)."""
    app = getattr(request_or_app, "app", request_or_app)
    nc = getattr(app.state, "nc", None)
    if nc is None:
        return
    # `_t` (the publish time) measures delivery on the stream's side; it is removed before the client sees it.
    payload = json.dumps({"type": kind, **fields, "_t": time.time()}).encode()
    for uid in sorted(set(user_ids)):
        try:
            await nc.publish(subject_for(uid), payload)
        except Exception:  # noqa: BLE001, S112 - the bus being down must not fail a committed write
            continue


def notify_after_commit(session: Session, app: FastAPI, user_ids: list[int], kind: str, **fields: Any) -> None:
    """Publish a live notice once `session` commits (from any thread; dropped if it rolls back)."""
    loop: asyncio.AbstractEventLoop | None = getattr(app.state, "loop", None)
    if loop is None or not user_ids:
        return
    users = list(user_ids)

    def schedule() -> None:
        loop.call_soon_threadsafe(_start, app, users, kind, fields)

    on_commit(session, schedule)


def _start(app: FastAPI, user_ids: list[int], kind: str, fields: dict[str, Any]) -> None:
    task = asyncio.get_running_loop().create_task(notify(app, user_ids, kind, **fields))
    _in_flight.add(task)
    task.add_done_callback(_in_flight.discard)


def _secret(request: Request) -> bytes:
    secret: bytes = request.app.state.stream_ticket_secret
    return secret


def make_ticket(secret: bytes, user_id: int, *, ttl_s: int = TICKET_TTL_S) -> str:
    """A signed, short-lived ticket naming one user (for EventSource, which cannot send a header)."""
    body = f"{user_id}.{int(time.time()) + ttl_s}"
    mac = hmac.new(secret, body.encode(), hashlib.sha256).digest()[:18]
    return f"{body}.{base64.urlsafe_b64encode(mac).decode()}"


def read_ticket(secret: bytes, ticket: str) -> int | None:
    """The user a valid, unexpired ticket names, else None."""
    try:
        user, expires, mac = ticket.split(".")
        expected = hmac.new(secret, f"{user}.{expires}".encode(), hashlib.sha256).digest()[:18]
        if not hmac.compare_digest(base64.urlsafe_b64decode(mac.encode()), expected) or int(expires) < time.time():
            return None
        return int(user)
    except (ValueError, TypeError):
        return None


@router.post("/stream/ticket/")
async def stream_ticket(request: Request, user_id: OptionalUserId) -> dict[str, object]:
    """A ticket valid 60 s to open the caller's event stream without an Authorization header."""
    if user_id is None:
        raise Unauthorized()
    return {"ticket": make_ticket(_secret(request), user_id), "expires_in": TICKET_TTL_S}


@router.get("/stream/")
async def stream(request: Request, user_id: OptionalUserId, ticket: str | None = None) -> StreamingResponse:
    """The caller's live events: new messages, read receipts and new conversations (text/event-stream)."""
    uid = user_id if user_id is not None else (read_ticket(_secret(request), ticket) if ticket else None)
    if uid is None or (user_id is None and _revoked(request, uid, since=_ticket_issued_at(ticket or ""))):
        raise Unauthorized()
    opened_at = time.time()
    queue: asyncio.Queue[bytes] = asyncio.Queue(maxsize=QUEUE_SIZE)

    async def on_notice(msg: Any) -> None:
        if queue.full():
            STREAM_NOTICES_DROPPED.inc()
        else:
            queue.put_nowait(msg.data)

    subscription = await request.app.state.nc.subscribe(subject_for(uid), cb=on_notice)

    async def events() -> AsyncIterator[bytes]:
        OPEN_STREAMS.inc()
        try:
            yield b": connected\n\n"
            while True:
                try:
                    data = await asyncio.wait_for(queue.get(), KEEPALIVE_S)
                except TimeoutError:
                    yield b": keep-alive\n\n"
                    continue
                if _revoked(request, uid, since=opened_at) or json.loads(data).get("type") == REVOKED:
                    return  # the account was deleted or deactivated: hang up (a reconnect gets 401)
                yield _frame(data)
        finally:
            OPEN_STREAMS.dec()
            await subscription.unsubscribe()

    headers = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
    return StreamingResponse(events(), media_type="text/event-stream", headers=headers)


def _revoked(request: Request, user_id: int, *, since: float) -> bool:
    """True when the user's account was deleted or deactivated after `since` (mesh revocation list)."""
    revocations: RevocationList | None = getattr(request.app.state, "revocations", None)
    return revocations is not None and revocations.is_revoked(user_id, since)


def _ticket_issued_at(ticket: str) -> float:
    try:
        return float(ticket.split(".")[1]) - TICKET_TTL_S
    except (IndexError, ValueError):
        return time.time()


def _frame(data: bytes) -> bytes:
    """One server-sent event from a notice: its type as the event name, the notice (less `_t`) as data."""
    notice = json.loads(data)
    published = notice.pop("_t", None)
    kind = str(notice.get("type", "message"))
    if isinstance(published, (int, float)):
        STREAM_DELIVERY.observe(max(time.time() - published, 0.0))
    STREAM_NOTICES.labels(kind).inc()
    return f"event: {kind}\ndata: {json.dumps(notice)}\n\n".encode()
