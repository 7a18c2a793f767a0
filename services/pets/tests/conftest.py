"""Fixtures: the pets service running on a real bus and a real SQLite (or MySQL) database.

The running service, its token issuer and the settings come from `pawgle.common.testing`.
"""

from __future__ import annotations

import importlib.util
import secrets
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from pawgle.common.testing.service import RunningService, running_service, service_settings
from pawgle.pets.config import Settings
from pawgle.pets.main import create_app


def _load_factories() -> Any:
    # Every service has a tests/factories.py; a private module name keeps them from shadowing each other.
    name = "pawgle_pets_test_factories"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, Path(__file__).with_name("factories.py"))
        assert spec is not None
        assert spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


factories = _load_factories()

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
