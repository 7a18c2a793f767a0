"""WebSockets on a routed path are relayed to the owning service; foreign origins are refused."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.sync.client import connect
from websockets.typing import Origin, Subprotocol

from .conftest import FRONTEND


def ws_url(client: httpx.Client, path: str) -> str:
    return "ws://" + client.base_url.netloc.decode() + path


def wait_until(condition: Callable[[], bool], timeout_s: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout_s
    while not condition() and time.monotonic() < deadline:
        time.sleep(0.02)
    return condition()


def test_frames_flow_both_ways_with_the_session_headers(gateway: httpx.Client) -> None:
    with connect(
        ws_url(gateway, "/api/auth/chat/ws/?conversation=abc"),
        origin=Origin(FRONTEND),
        additional_headers={"Cookie": "pawgle_refresh=r1", "Authorization": "Bearer t"},
        subprotocols=[Subprotocol("pawgle.v1")],
    ) as websocket:
        hello = json.loads(websocket.recv(timeout=5))
        assert (hello["service"], hello["path"], hello["query"]) == ("chat", "/api/auth/chat/ws/", "conversation=abc")
        headers = dict(hello["headers"])
        assert headers["cookie"] == "pawgle_refresh=r1"
        assert headers["authorization"] == "Bearer t"
        assert headers["origin"] == FRONTEND
        assert websocket.subprotocol == "pawgle.v1"
        websocket.send("hi")
        assert websocket.recv(timeout=5) == "echo:hi"
        websocket.send(b"\x00\x01")
        assert websocket.recv(timeout=5) == b"echo:\x00\x01"


def test_a_close_from_the_service_reaches_the_client_with_its_code(gateway: httpx.Client) -> None:
    with connect(ws_url(gateway, "/api/auth/chat/ws/")) as websocket:
        websocket.recv(timeout=5)
        websocket.send("close-me")
        with pytest.raises(ConnectionClosed) as closed:
            websocket.recv(timeout=5)
    assert closed.value.rcvd is not None
    assert (closed.value.rcvd.code, closed.value.rcvd.reason) == (4001, "bye")


def test_the_service_side_closes_when_the_client_leaves(gateway: httpx.Client, upstreams: dict[str, Any]) -> None:
    with connect(ws_url(gateway, "/api/auth/chat/ws/")) as websocket:
        websocket.recv(timeout=5)
        assert upstreams["chat"].open_websockets == 1
    assert wait_until(lambda: upstreams["chat"].open_websockets == 0)


def test_a_foreign_origin_is_refused(gateway: httpx.Client, upstreams: dict[str, Any]) -> None:
    with pytest.raises(InvalidStatus) as refused:
        connect(ws_url(gateway, "/api/auth/chat/ws/"), origin=Origin("https://evil.example"))
    assert refused.value.response.status_code == 403
    assert upstreams["chat"].open_websockets == 0


@pytest.mark.parametrize("path", ["/nowhere/", "/api/token/"])
def test_unrouted_paths_are_refused(gateway: httpx.Client, path: str) -> None:
    with pytest.raises(InvalidStatus):
        connect(ws_url(gateway, path))


def test_a_service_that_is_down_refuses_the_handshake(
    custom_gateway: Callable[..., httpx.Client], closed_port_url: str
) -> None:
    gateway = custom_gateway(chat_url=closed_port_url)
    with pytest.raises(InvalidStatus):
        connect(ws_url(gateway, "/api/auth/chat/ws/"), open_timeout=5)
