"""Per-service bus users: each publishes only its own events; reading and the JetStream API stay open."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import nats
import pytest
from nats.aio.client import Client

from pawgle.common.bus.streams import ensure_streams
from pawgle.common.busauth import PUBLISHES, new_passwords, redacted
from pawgle.common.natsserver import NatsServer


@pytest.fixture(scope="module")
def secured_bus(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NatsServer]:
    root = tmp_path_factory.mktemp("secured-nats")
    server = NatsServer(root / "js", log_file=root / "nats.log", users=new_passwords(list(PUBLISHES))).start()
    yield server
    server.stop()


@pytest.fixture
async def connect(secured_bus: NatsServer) -> AsyncIterator[object]:
    clients: list[Client] = []
    errors: list[Exception] = []

    async def on_error(exc: Exception) -> None:
        errors.append(exc)

    async def as_service(service: str) -> Client:
        client = await nats.connect(secured_bus.url_for(service), error_cb=on_error, connect_timeout=2)
        clients.append(client)
        return client

    as_service.errors = errors  # type: ignore[attr-defined]
    yield as_service
    for client in clients:
        await client.close()


async def test_a_service_publishes_its_own_events_and_reads_any_stream(connect) -> None:  # type: ignore[no-untyped-def]
    auth = await connect("auth")
    await ensure_streams(auth.jetstream())
    ack = await auth.jetstream().publish("user.registered", b"{}", timeout=2)
    assert ack.stream == "USERS"
    notifier = await connect("notifier")
    subscription = await notifier.jetstream().pull_subscribe("user.registered", durable="notifier-test")
    [message] = await subscription.fetch(1, timeout=2)
    await message.ack_sync()
    assert (await notifier.jetstream().publish("message.email_reply_received", b"{}", timeout=2)).stream == "MESSAGES"


async def test_a_service_cannot_forge_another_services_event(connect) -> None:  # type: ignore[no-untyped-def]
    auth = await connect("auth")
    await ensure_streams(auth.jetstream())
    before = (await auth.jetstream().stream_info("USERS")).state.messages
    notifier = await connect("notifier")
    with pytest.raises((nats.errors.TimeoutError, nats.js.errors.Error)):
        await notifier.jetstream().publish("user.deleted", b"{}", timeout=1)
    await notifier.publish("user.deleted", b"{}")  # core publish: refused by the server, reported async
    await notifier.flush()
    await asyncio.sleep(0.2)
    assert any("permissions violation" in str(error).lower() for error in connect.errors)
    assert (await auth.jetstream().stream_info("USERS")).state.messages == before


async def test_a_wrong_password_is_refused(secured_bus: NatsServer) -> None:
    with pytest.raises(Exception, match="(?i)authorization"):
        await nats.connect(secured_bus.url_for("auth").replace(":" + secured_bus.users["auth"], ":wrong"),
                           allow_reconnect=False, max_reconnect_attempts=0, connect_timeout=2)  # fmt: skip


def test_a_printed_bus_url_hides_the_password(secured_bus: NatsServer, tmp_path: Path) -> None:
    url = secured_bus.url_for("pets")
    assert secured_bus.users is not None
    assert secured_bus.users["pets"] not in redacted(url)
    assert redacted(url).startswith("nats://pets:***@127.0.0.1:")
