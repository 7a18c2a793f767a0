"""Fixtures: the matcher on a real bus and SQLite, answered by a real nearest-candidates responder (candidates.py)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from pawgle.common.testing.service import load_test_module, running_service, service_settings
from pawgle.matcher.config import Settings
from pawgle.matcher.main import create_app

candidates = load_test_module("pawgle_matcher_test_candidates", Path(__file__).with_name("candidates.py"))


@pytest.fixture
def index() -> Any:
    return candidates.CandidateIndex()


@pytest.fixture
def settings_factory(database_url: str, nats_url: str, data_dir: Path) -> Callable[..., Settings]:
    def make(**overrides: Any) -> Settings:
        values: dict[str, Any] = {"poll_interval_s": 0.05, "retry_base_s": 0.05, "retry_max_s": 0.5}
        values.update(overrides)
        return service_settings(Settings, database_url=database_url, nats_url=nats_url, data_dir=data_dir, **values)

    return make


@pytest.fixture
def matcher_factory(settings_factory: Callable[..., Settings], index: Any) -> Iterator[Callable[..., Any]]:
    running: list[Any] = []

    def start(*, answering: bool = True, **overrides: Any) -> Any:
        settings = settings_factory(**overrides)
        context = running_service(create_app(settings), settings)
        service = context.__enter__()
        running.append(context)

        matcher = candidates.Matcher(service=service, index=index)
        if answering:
            matcher.start_answering()
        return matcher

    yield start
    for context in reversed(running):
        context.__exit__(None, None, None)


@pytest.fixture
def matcher(matcher_factory: Callable[..., Any]) -> Any:
    return matcher_factory()
