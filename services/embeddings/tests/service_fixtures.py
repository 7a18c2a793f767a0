"""Fixtures of the service tests: the embeddings service on a real bus, the real ONNX model, shipped photos.

Imported by conftest.py (the model tests' fixtures live there).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest
from sqlmodel import select

from pawgle.common.blobs import LocalBlobStore
from pawgle.common.bus.tables import OutboxEvent
from pawgle.common.testing.service import RunningService, running_service, service_settings
from pawgle.embeddings.config import Settings
from pawgle.embeddings.main import create_app
from pawgle.embeddings.model.onnx_embedder import OnnxImageEmbedder
from pawgle.embeddings.model.port import ImageEmbedding, ImageInput, ModelInfo, ModelUnavailableError

PHOTOS = Path(__file__).parent / "data" / "photos"


class SwitchableEmbedder:
    """The real model, which a test can make fail as an unreachable Space does (ModelUnavailableError), or
    hold inside a call (`gate` cleared) to change what it embeds meanwhile."""

    def __init__(self, real: OnnxImageEmbedder) -> None:
        self.real = real
        self.failing = False
        self.calls = 0
        self.photos_embedded = 0
        self.gate = threading.Event()
        self.gate.set()
        self.entered = threading.Event()
        self._lock = threading.Lock()

    @property
    def info(self) -> ModelInfo:
        return self.real.info

    def embed(self, images: Sequence[ImageInput]) -> list[ImageEmbedding]:
        with self._lock:
            self.calls += 1
        self.entered.set()
        if not self.gate.wait(timeout=60):
            raise ModelUnavailableError("the test never opened the gate")
        if self.failing:
            raise ModelUnavailableError("the model is unreachable (test)")
        result = self.real.embed(images)
        with self._lock:
            self.photos_embedded += len(images)
        return result


@pytest.fixture
def embedder(generic_embedder: OnnxImageEmbedder) -> SwitchableEmbedder:
    return SwitchableEmbedder(generic_embedder)


@pytest.fixture
def embeddings_settings_factory(database_url: str, nats_url: str, data_dir: Path) -> Callable[..., Settings]:
    def make(**overrides: Any) -> Settings:
        fields: dict[str, Any] = {
            "retry_base_s": 0.05,
            "retry_max_s": 0.2,
            "batch_max_wait_s": 0.005,
            "optimize_every_s": 3600.0,
            **overrides,
        }
        return service_settings(Settings, database_url=database_url, nats_url=nats_url, data_dir=data_dir, **fields)

    return make


@pytest.fixture(params=["edge", "local"])
def embeddings(
    request: pytest.FixtureRequest, embeddings_settings_factory: Callable[..., Settings], embedder: SwitchableEmbedder
) -> Iterator[RunningService]:
    """The full service on each embedded vector store, with the real model."""
    settings = embeddings_settings_factory(embedded_vector_store=request.param)
    with running_service(create_app(settings, embedder=embedder), settings) as running:
        yield running


def store_photo(running: RunningService, name: str, key: str | None = None) -> str:
    """Put a shipped photo into the service's blob store (as the pets service would have); returns its key."""
    blobs: LocalBlobStore = running.app.state.blobs
    key = key or f"pets/{name}"
    blobs.put(key, (PHOTOS / name).read_bytes(), content_type="image/jpeg")
    return key


def outbox_events(running: RunningService, event_type: str) -> list[dict[str, Any]]:
    """The `data` of every event of one type the service wrote to its outbox."""
    with running.session() as session:
        rows = session.exec(select(OutboxEvent).order_by(OutboxEvent.seq)).all()
    decoded = [json.loads(row.payload) for row in rows]
    return [event["data"] for event in decoded if event["type"] == event_type]
