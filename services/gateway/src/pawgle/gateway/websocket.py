"""WebSocket pass-through for the paths of the route table (real-time chat delivery, if a service offers it).

Browsers do not apply CORS to WebSockets but do send `Origin` with the cookies, so the origin allow-list is
enforced here (cross-site WebSocket hijacking); requests without an Origin (native apps) pass.
"""

from __future__ import annotations

import logging

import anyio
from starlette.types import Receive, Scope, Send
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus

from pawgle.common.clientaddress import CLIENT_IP_HEADER, EDGE_PROOF_HEADER
from pawgle.gateway.asgi import header_value
from pawgle.gateway.config import Settings
from pawgle.gateway.edgeaddress import EdgeAddress

log = logging.getLogger(__name__)

# Handshake headers the client library writes itself; everything else (cookies, auth...) is forwarded.
_HANDSHAKE = frozenset(
    {
        b"host",
        b"connection",
        b"upgrade",
        b"sec-websocket-key",
        b"sec-websocket-version",
        b"sec-websocket-extensions",
        b"sec-websocket-protocol",
        b"sec-websocket-accept",
        b"origin",
        b"user-agent",
        # Decided by the gateway, never taken from the client:
        b"x-forwarded-for",
        b"x-forwarded-proto",
        b"x-request-id",
        CLIENT_IP_HEADER.encode(),
        EDGE_PROOF_HEADER.encode(),
    }
)
_NO_STATUS_CODES = {1005, 1006, 1015}  # reserved: never sent in a close frame


class WebSocketProxy:
    """Open the same WebSocket on the owning service and pump frames both ways until either side closes."""

    def __init__(self, settings: Settings) -> None:
        self.upstreams = {name: "ws" + url.removeprefix("http") for name, url in settings.service_urls.items()}
        self.origins = frozenset(origin.encode("latin-1") for origin in settings.allowed_origins)
        self.open_timeout_s = settings.connect_timeout_s
        self.max_message_bytes = settings.max_body_bytes
        self.edge = EdgeAddress(settings)

    async def forward(self, scope: Scope, receive: Receive, send: Send, service: str) -> None:
        """Relay one WebSocket session to `service`; refuse it (403) when the origin or the service says no."""
        if (await receive())["type"] != "websocket.connect":
            return
        origin = header_value(scope, b"origin")
        if origin is not None and origin not in self.origins:
            await send({"type": "websocket.close", "code": 1008, "reason": "Origin not allowed."})
            return
        url = self.upstreams[service] + (scope.get("raw_path") or scope["path"].encode()).decode("latin-1")
        if scope["query_string"]:
            url += "?" + scope["query_string"].decode("latin-1")
        headers = [(k.decode("latin-1"), v.decode("latin-1")) for k, v in scope["headers"] if k not in _HANDSHAKE]
        client_ip = self.edge.client_ip(scope)
        headers += [
            ("X-Forwarded-For", client_ip),
            ("X-Forwarded-Proto", "wss" if scope.get("scheme") == "wss" else "ws"),
        ]
        headers += [(k.decode(), v.decode()) for k, v in self.edge.proof_headers(client_ip.encode())]
        request_id = (scope.get("state") or {}).get("request_id")
        if request_id:
            headers.append(("X-Request-ID", request_id))
        try:
            upstream = await connect(
                url,
                additional_headers=headers,
                subprotocols=scope.get("subprotocols") or None,
                origin=origin.decode("latin-1") if origin else None,
                open_timeout=self.open_timeout_s,
                max_size=self.max_message_bytes,
                proxy=None,
                user_agent_header=None,
                compression=None,
            )
        except (OSError, TimeoutError, InvalidHandshake) as exc:
            status = exc.response.status_code if isinstance(exc, InvalidStatus) else None
            log.warning("websocket to %s refused: %s %s", service, type(exc).__name__, status or "")
            await send({"type": "websocket.close", "code": 1011 if status is None else 1008})
            return
        async with upstream:
            await send({"type": "websocket.accept", "subprotocol": upstream.subprotocol})
            async with anyio.create_task_group() as tasks:
                tasks.start_soon(self._client_to_upstream, receive, upstream, tasks.cancel_scope)
                await self._upstream_to_client(upstream, send)
                tasks.cancel_scope.cancel()

    async def _client_to_upstream(self, receive: Receive, upstream: ClientConnection, scope: anyio.CancelScope) -> None:
        while True:
            message = await receive()
            if message["type"] == "websocket.disconnect":
                code = message.get("code", 1000)
                await upstream.close(code=1000 if code in _NO_STATUS_CODES else code)
                scope.cancel()
                return
            frame: str | bytes | None = message.get("text")
            if frame is None:
                frame = message.get("bytes")
            if frame is None:
                continue
            try:
                await upstream.send(frame)
            except ConnectionClosed:
                return

    async def _upstream_to_client(self, upstream: ClientConnection, send: Send) -> None:
        try:
            try:
                async for data in upstream:
                    if isinstance(data, str):
                        await send({"type": "websocket.send", "text": data})
                    else:
                        await send({"type": "websocket.send", "bytes": data})
            except ConnectionClosed:
                pass
            code = upstream.close_code if upstream.close_code not in (None, *_NO_STATUS_CODES) else 1000
            await send({"type": "websocket.close", "code": code, "reason": upstream.close_reason or ""})
        except OSError:  # the client is gone too: nothing left to tell it
            return
