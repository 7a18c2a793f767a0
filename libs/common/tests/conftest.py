from __future__ import annotations

import secrets
from collections.abc import AsyncIterator, Iterator

import nats
import pytest
from nats.aio.client import Client
from sqlalchemy.engine import Engine

from pawgle.common.bus.streams import ensure_streams
from pawgle.common.db import make_engine
from pawgle.common.testing.probe import migrate_probe_db

from . import photo_samples as samples


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    """A migrated database holding the bus tables and the probe projection."""
    eng = make_engine(database_url)
    migrate_probe_db(database_url, eng)
    yield eng
    eng.dispose()


@pytest.fixture
async def nc(nats_url: str) -> AsyncIterator[Client]:
    """A bus connection with every stream in place and the probe stream emptied."""
    client = await nats.connect(nats_url, max_reconnect_attempts=-1, reconnect_time_wait=0.2)
    js = client.jetstream()
    await ensure_streams(js)
    await js.purge_stream("MESH")
    yield client
    await client.drain()


@pytest.fixture
def service_name() -> str:
    """A unique service name, so durable consumers of one test never see another's."""
    return f"t{secrets.token_hex(4)}"


@pytest.fixture(scope="session")
def bomb() -> bytes:
    return samples.png_bomb()


@pytest.fixture(scope="session")
def eleven_megabytes() -> bytes:
    data = samples.noise_png(1950, 1950)
    assert 10.5 * 2**20 < len(data) < 12 * 2**20
    return data
