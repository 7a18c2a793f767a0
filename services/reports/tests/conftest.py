"""Fixtures: the reports service running on a real bus and a real SQLite (or MySQL) database."""

from __future__ import annotations

import secrets
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from pawgle.common.testing.service import RunningService, load_test_module, running_service, service_settings
from pawgle.reports.config import Settings
from pawgle.reports.main import create_app

factories = load_test_module("pawgle_reports_test_factories", Path(__file__).with_name("factories.py"))


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
