"""Fixtures: the pets service running on a real bus and a real SQLite (or MySQL) database.

The running service, its token issuer and the settings come from `pawgle.common.testing`.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from pawgle.common.testing.service import RunningService, load_test_module, running_service, service_settings
from pawgle.pets.config import Settings
from pawgle.pets.main import create_app

factories = load_test_module("pawgle_pets_test_factories", Path(__file__).with_name("factories.py"))

FRONTEND = factories.FRONTEND


@pytest.fixture
def settings_factory(database_url: str, nats_url: str, data_dir: Path) -> Callable[..., Settings]:
    def make(**overrides: Any) -> Settings:
        fields: dict[str, Any] = {
            "frontend_origin": FRONTEND,
            "public_base_url": factories.PUBLIC_BASE,
            "owner_wait_s": 0.2,
            "throttle_bucket": f"pets-test-{secrets.token_hex(4)}",
            "throttle_rates": {"pet_write": "100000/min", "found_page": "100000/min"},
            **overrides,
        }
        return service_settings(Settings, database_url=database_url, nats_url=nats_url, data_dir=data_dir, **fields)

    return make


@pytest.fixture
def pets(settings_factory: Callable[..., Settings], monkeypatch: pytest.MonkeyPatch) -> Iterator[RunningService]:
    """The full service: consumers on the bus, the purge job and the blob remover running."""
    monkeypatch.delenv("PAWGLE_S3_BUCKET", raising=False)
    settings = settings_factory()
    with running_service(create_app(settings), settings) as running:
        yield running
