"""The live stream through the real gateway (Caddy, as deployed): unbuffered, so the stream's first
comment and each notice arrive while the stream stays open, and a message sent through the gateway
reaches the other side's stream."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from pawgle_chat_test_factories import EventReader, file_report, hang_up, next_id

from pawgle.common.natsserver import free_port
from pawgle.common.testing.service import RunningService
from pawgle.gateway.config import Settings as GatewaySettings
from pawgle.gateway.edge import caddy_process
from pawgle.gateway.routes import SERVICES as ROUTED


@pytest.fixture
def through_gateway(two_processes, tmp_path: Path) -> Iterator[tuple[RunningService, str]]:
    first, chat_url = two_processes
    closed = f"http://127.0.0.1:{free_port()}"
    urls = {f"{s}_url": closed for s in ROUTED} | {"chat_url": chat_url}
    settings = GatewaySettings(environment="test", data_dir=tmp_path, **urls)
    port = free_port()
    with caddy_process(settings, host="127.0.0.1", port=port, sidecar_url=closed, config_dir=tmp_path / "caddy"):
        yield first, f"http://127.0.0.1:{port}"
        hang_up()


def test_the_stream_passes_the_gateway_unbuffered(through_gateway) -> None:
    import httpx

    first, gateway = through_gateway
    a, b = next_id(), next_id()
    report = file_report(first, reporter_id=b)
    with httpx.Client(base_url=gateway, timeout=10) as client:
        started = client.post(
            "/api/auth/chat/conversations/start/", json={"pet_location_id": report.report_id}, headers=first.headers(a)
        )
        assert started.status_code == 200, started.text
        conv = started.json()["id"]
        # EventReader waits for the ": connected" comment (13 bytes): a buffering proxy would hold it back.
        stream = EventReader(f"{gateway}/api/auth/chat/stream/", first.headers(b))
        assert stream.status == "status 200 text/event-stream; charset=utf-8"
        sent_at = time.perf_counter()
        sent = client.post(
            f"/api/auth/chat/conversations/{conv}/messages/", data={"body": "hi"}, headers=first.headers(a)
        )
        assert sent.status_code == 201, sent.text
    arrived, name, data = stream.next_event()
    assert (name, data["message_id"]) == ("message", sent.json()["id"])
    assert arrived - sent_at < 2.0  # generous on a shared machine; bench/chat.py has the figures
