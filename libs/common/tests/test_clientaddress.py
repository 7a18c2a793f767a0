"""The client address: decided at the edge, believed by a service only with the edge's proof."""

from __future__ import annotations

from types import SimpleNamespace

from fastapi import FastAPI
from pydantic import SecretStr
from starlette.requests import Request

from pawgle.common.clientaddress import TrustedProxies, client_ip, edge_client_ip

GATEWAY = TrustedProxies(["10.1.0.0/16"])


def request(peer: str, headers: dict[str, str], *, secret: str | None = None) -> Request:
    app = FastAPI()
    app.state.settings = SimpleNamespace(edge_secret=SecretStr(secret) if secret else None)
    raw = [(key.lower().encode(), value.encode()) for key, value in headers.items()]
    return Request({"type": "http", "client": (peer, 1234), "headers": raw, "app": app})


def test_a_service_never_reads_forwarded_for() -> None:
    spoofed = {"X-Forwarded-For": "203.0.113.7"}
    assert client_ip(request("127.0.0.1", spoofed)) == "127.0.0.1"
    assert client_ip(request("10.1.2.3", spoofed), GATEWAY) == "10.1.2.3"


def test_the_edge_address_is_believed_with_the_right_proof_only() -> None:
    claimed = {"X-Pawgle-Client-Ip": "203.0.113.7"}
    assert client_ip(request("127.0.0.1", {**claimed, "X-Pawgle-Edge": "s3cret"}, secret="s3cret")) == "203.0.113.7"
    assert client_ip(request("127.0.0.1", {**claimed, "X-Pawgle-Edge": "guess"}, secret="s3cret")) == "127.0.0.1"
    assert client_ip(request("127.0.0.1", claimed, secret="s3cret")) == "127.0.0.1"
    # With a secret configured, being on a trusted network is not enough.
    assert client_ip(request("10.1.2.3", claimed, secret="s3cret"), GATEWAY) == "10.1.2.3"


def test_without_a_secret_only_configured_gateway_peers_are_believed() -> None:
    claimed = {"X-Pawgle-Client-Ip": "203.0.113.7"}
    assert client_ip(request("10.1.2.3", claimed), GATEWAY) == "203.0.113.7"
    assert client_ip(request("127.0.0.1", claimed), GATEWAY) == "127.0.0.1"
    assert client_ip(request("10.1.2.3", claimed)) == "10.1.2.3"


def test_a_claimed_value_that_is_no_address_is_ignored() -> None:
    headers = {"X-Pawgle-Client-Ip": "not an ip", "X-Pawgle-Edge": "s3cret"}
    assert client_ip(request("127.0.0.1", headers, secret="s3cret")) == "127.0.0.1"


def test_the_edge_reads_forwarded_for_right_to_left_through_trusted_proxies_only() -> None:
    assert edge_client_ip("10.1.0.9", "203.0.113.1, 198.51.100.5, 10.1.0.7", GATEWAY) == "198.51.100.5"
    assert edge_client_ip("198.51.100.4", "203.0.113.7", GATEWAY) == "198.51.100.4"
    assert edge_client_ip("10.1.0.9", "junk, 10.1.0.7", GATEWAY) == "10.1.0.7"
    assert edge_client_ip("10.1.0.9", None, GATEWAY) == "10.1.0.9"
