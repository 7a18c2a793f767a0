"""Fixtures: the reports service running on a real bus and a real SQLite (or MySQL) database."""

from __future__ import annotations

import importlib.util
import secrets
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from pawgle.common.testing.service import RunningService, running_service, service_settings
from pawgle.reports.config import Settings
from pawgle.reports.main import create_app


def _load_factories() -> Any:
    # Every service has a tests/factories.py; a private module name keeps them from shadowing each other.
    name = "pawgle_reports_test_factories"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, Path(__file__).with_name("factories.py"))
        assert spec is not None
        assert spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


factories = _load_factories()


@pytest.fixture
def settings_factory(database_url: str, nats_url: str, data_dir: Path) -> Callable[..., Settings]:
    def make(**overrides: Any) -> Settings:
        fields: dict[str, Any] = {
            "public_base_url": factories.PUBLIC_BASE,
            "throttle_bucket": f"reports-test-{secrets.token_hex(4)}",
            "throttle_rates": {"report_pet": "100000/min"},
            # The expiry job is run by the tests themselves.
            "expiry_every_s": 3600.0,
            **overrides,
        }
        return service_settings(Settings, database_url=database_url, nats_url=nats_url, data_dir=data_dir, **fields)

    return make


@pytest.fixture
def reports(settings_factory: Callable[..., Settings], monkeypatch: pytest.MonkeyPatch) -> Iterator[RunningService]:
    """The full service: consumers on the bus, the expiry job declared."""
    monkeypatch.delenv("PAWGLE_S3_BUCKET", raising=False)
    settings = settings_factory()
    with running_service(create_app(settings), settings) as running:
        yield running
