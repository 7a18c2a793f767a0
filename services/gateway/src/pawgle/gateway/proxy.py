"""Forward a request to the service that owns its path, streaming both bodies.

One shared httpx.AsyncClient (a keep-alive pool per upstream) carries every request. Bodies are never
buffered: the request body is read from the client as the upstream consumes it (counted against the size
limit), and the response body is relayed chunk by chunk, undecoded.
"""

from __future__ import annotations

import http.cookiejar
import logging
from collections.abc import AsyncIterator

import anyio
import httpx
from starlette.types import ASGIApp, Receive, Scope, Send

from pawgle.common.clientaddress import CLIENT_IP_HEADER, EDGE_PROOF_HEADER
from pawgle.common.telemetry import current_trace_headers
from pawgle.gateway.asgi import send_json_error
from pawgle.gateway.config import Settings
from pawgle.gateway.edgeaddress import EdgeAddress
from pawgle.gateway.routes import RouteTable
from pawgle.gateway.websocket import WebSocketProxy

log = logging.getLogger(__name__)

# Hop-by-hop headers (RFC 9110 7.6.1) are never forwarded; `expect` is answered by our own server.
_HOP_BY_HOP = frozenset(
    {
        b"connection",
        b"keep-alive",
        b"proxy-authenticate",
        b"proxy-authorization",
        b"proxy-connection",
        b"te",
        b"trailer",
        b"transfer-encoding",
        b"upgrade",
    }
)
_REQUEST_DROP = _HOP_BY_HOP | {
    b"host",
    b"expect",
    b"x-request-id",
    b"traceparent",
    b"tracestate",
    b"x-forwarded-for",
    b"x-forwarded-proto",
    b"x-forwarded-host",
    CLIENT_IP_HEADER.encode(),
    EDGE_PROOF_HEADER.encode(),
}
# Our own server writes `server` and `date`; relaying the upstream's would duplicate them.
_RESPONSE_DROP = _HOP_BY_HOP | {b"server", b"date"}
_RETRY_SOON = [(b"retry-after", b"1")]
_IDEMPOTENT = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE"})
_REPLAYABLE_BODY_BYTES = 64 * 1024


class BodyTooLarge(Exception):
    """The client sent more than the configured body limit."""


class ClientDisconnected(Exception):
    """The client went away while we were reading its body."""


def _no_cookie_jar() -> http.cookiejar.CookieJar:
    """A jar that keeps nothing: the gateway must never remember one user's cookies."""
    return http.cookiejar.CookieJar(policy=http.cookiejar.DefaultCookiePolicy(allowed_domains=[]))


class Proxy:
    """The upstream client pool and the forwarding of one request."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.upstreams = settings.service_urls
        self.max_body_bytes = settings.max_body_bytes
        self.edge = EdgeAddress(settings)
        self.client: httpx.AsyncClient | None = None

    async def start(self) -> None:
        """Open the shared connection pool."""
        s = self.settings
        self.client = httpx.AsyncClient(
            timeout=httpx.Timeout(
                connect=s.connect_timeout_s, read=s.read_timeout_s, write=s.write_timeout_s, pool=s.pool_timeout_s
            ),
            limits=httpx.Limits(
                max_connections=s.max_connections,
                max_keepalive_connections=s.max_keepalive_connections,
                keepalive_expiry=s.keepalive_expiry_s,
            ),
            follow_redirects=False,
            trust_env=False,
            cookies=_no_cookie_jar(),
        )

    async def close(self) -> None:
        """Close the pool (on shutdown)."""
        if self.client is not None:
            await self.client.aclose()
            self.client = None

    def _upstream_headers(self, scope: Scope) -> tuple[list[tuple[bytes, bytes]], int | None, bool]:
        """Forwarded request headers, the declared Content-Length and whether a body follows."""
        headers: list[tuple[bytes, bytes]] = []
        content_length: int | None = None
        chunked = False
        host = b""
        connection_tokens: set[bytes] = set()
        for key, value in scope["headers"]:
            if key == b"content-length":
                content_length = int(value) if value.isdigit() else -1
            elif key == b"transfer-encoding":
                chunked = True
            elif key == b"host":
                host = value
            elif key == b"connection":
                connection_tokens.update(token.strip().lower() for token in value.split(b","))
            if key not in _REQUEST_DROP:
                headers.append((key, value))
        if connection_tokens - {b"keep-alive", b"close"}:
            headers = [(k, v) for k, v in headers if k not in connection_tokens]

        # The client address is decided here, once: the socket's peer (uvicorn runs without proxy headers), or
        # X-Forwarded-For's hop through a configured trusted proxy. What a client claims never gets through.
        client_ip = self.edge.client_ip(scope).encode()
        headers += [(b"x-forwarded-for", client_ip), (b"x-forwarded-proto", scope.get("scheme", "http").encode())]
        headers += self.edge.proof_headers(client_ip)
        if host:
            headers.append((b"x-forwarded-host", host))
        request_id = (scope.get("state") or {}).get("request_id")
        if request_id:
            headers.append((b"x-request-id", request_id.encode()))
        headers += [(k.encode(), v.encode()) for k, v in current_trace_headers().items()]
        return headers, content_length, chunked or bool(content_length)

    async def _request_body(self, receive: Receive) -> AsyncIterator[bytes]:
        """The client's body as it arrives, stopped as soon as it passes the limit."""
        received = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                raise ClientDisconnected
            chunk = message.get("body", b"")
            received += len(chunk)
            if received > self.max_body_bytes:
                raise BodyTooLarge
            if chunk:
                yield chunk
            if not message.get("more_body", False):
                return

    async def forward(self, scope: Scope, receive: Receive, send: Send, service: str) -> None:
        """Relay one request to `service` and its answer back; JSON 413/502/503/504 when that fails."""
        if self.client is None:
            detail = "The gateway is starting or stopping. Try again shortly."
            await send_json_error(send, 503, detail, headers=_RETRY_SOON)
            return
        headers, content_length, has_body = self._upstream_headers(scope)
        if content_length == -1:
            await send_json_error(send, 400, "The Content-Length header must be a whole number of bytes.")
            return
        if content_length is not None and content_length > self.max_body_bytes:
            await self._too_large(send)
            return
        raw_path = scope.get("raw_path") or scope["path"].encode()
        url = self.upstreams[service] + raw_path.decode("latin-1")
        if scope["query_string"]:
            url += "?" + scope["query_string"].decode("latin-1")
        method = scope["method"]
        # A small declared body is read first, so the request can be sent again; a large or chunked one
        # is streamed through and cannot be.
        replayable = not has_body
        content: bytes | AsyncIterator[bytes] = b""
        try:
            if has_body and content_length is not None and content_length <= _REPLAYABLE_BODY_BYTES:
                content = b"".join([chunk async for chunk in self._request_body(receive)])
                replayable = True
            elif has_body:
                content = self._request_body(receive)
        except BodyTooLarge:
            await self._too_large(send)
            return
        except ClientDisconnected:
            return
        try:
            try:
                response = await self.client.send(
                    httpx.Request(method, url, headers=headers, content=content), stream=True
                )
            except (httpx.ConnectError, httpx.WriteError, httpx.RemoteProtocolError, httpx.ReadError) as exc:
                # Once, on a fresh connection: the service closed a pooled connection before any byte of the
                # answer (after an error of another request). Safe when nothing was sent (connect or write
                # failed) and the body can be sent again, or when the method is idempotent.
                unsent = isinstance(exc, (httpx.ConnectError, httpx.WriteError))
                if not replayable or not (unsent or method in _IDEMPOTENT):
                    raise
                log.info("%s closed a connection before answering; sending %s again", service, method)
                response = await self.client.send(
                    httpx.Request(method, url, headers=headers, content=content), stream=True
                )
        except BodyTooLarge:
            await self._too_large(send)
            return
        except ClientDisconnected:
            return
        except httpx.PoolTimeout:
            log.warning("no free connection to %s within the pool timeout", service)
            await send_json_error(
                send, 503, "The gateway is overloaded. Try again shortly.", headers=_RETRY_SOON, service=service
            )
            return
        except httpx.TimeoutException as exc:
            log.warning("%s timed out: %s", service, type(exc).__name__)
            await send_json_error(send, 504, f"The {service} service did not answer in time.", service=service)
            return
        except httpx.TransportError as exc:
            log.warning("%s unreachable: %s", service, type(exc).__name__)
            await send_json_error(send, 502, f"The {service} service is unavailable.", service=service)
            return
        try:
            await send(
                {
                    "type": "http.response.start",
                    "status": response.status_code,
                    "headers": [(k, v) for k, v in response.headers.raw if k.lower() not in _RESPONSE_DROP],
                }
            )
            if "content-length" in response.headers or scope["method"] == "HEAD":
                await self._relay_body(response, send)
            else:
                await self._relay_open_ended_body(response, receive, send)
        except httpx.TransportError as exc:
            log.warning("%s broke off its response: %s", service, type(exc).__name__)
            raise
        finally:
            await response.aclose()

    async def _relay_body(self, response: httpx.Response, send: Send) -> None:
        async for chunk in response.aiter_raw():
            if chunk:
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
        await send({"type": "http.response.body", "body": b"", "more_body": False})

    async def _relay_open_ended_body(self, response: httpx.Response, receive: Receive, send: Send) -> None:
        """Relay a body of unknown length (a stream, server-sent events) until it ends or the client leaves.

        The server drops writes to a closed connection silently, so without watching for the disconnect
        an endless upstream stream would be read forever for nobody.
        """
        async with anyio.create_task_group() as tasks:

            async def cancel_on_disconnect() -> None:
                while (await receive())["type"] != "http.disconnect":
                    pass
                tasks.cancel_scope.cancel()

            tasks.start_soon(cancel_on_disconnect)
            await self._relay_body(response, send)
            tasks.cancel_scope.cancel()

    async def _too_large(self, send: Send) -> None:
        limit_mb = self.max_body_bytes / (1024 * 1024)
        await send_json_error(
            send, 413, f"The request body is too large: the limit is {limit_mb:g} MB. Send smaller files."
        )


class ProxyDispatch:
    """Paths of the route table go to their owner; anything else reaches the gateway's own routes."""

    def __init__(self, app: ASGIApp, *, table: RouteTable, proxy: Proxy, websockets: WebSocketProxy) -> None:
        self.app = app
        self.table = table
        self.proxy = proxy
        self.websockets = websockets

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] in ("http", "websocket"):
            route = self.table.resolve(scope["path"])
            if route is not None:
                scope.setdefault("state", {})["route_template"] = route.template
                if scope["type"] == "http":
                    await self.proxy.forward(scope, receive, send, route.service)
                else:
                    await self.websockets.forward(scope, receive, send, route.service)
                return
        await self.app(scope, receive, send)
