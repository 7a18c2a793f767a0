"""Factories for the chat's tests: upstream events and photos."""

from __future__ import annotations

import io
import itertools
import time
from typing import Any

from PIL import Image

from pawgle.chat.models import ReportCard, UserName
from pawgle.common.events.auth import UserRegistered
from pawgle.common.events.reports import ReportFiled
from pawgle.common.testing.service import RunningService
from pawgle.common.testing.service import wait_for as wait_for  # the tests import it from here

_ids = itertools.count(int(time.time() * 1000) % 1_000_000_000)


def next_id() -> int:
    """A fresh positive id, unique within the test session."""
    return next(_ids)


def report_filed(**overrides: Any) -> ReportFiled:
    """A found report's report.filed payload (central Paris)."""
    fields: dict[str, Any] = {
        "report_id": next_id(),
        "reporter_id": next_id(),
        "status": "found",
        "latitude": 48.8566,
        "longitude": 2.3522,
        "animal_name": "Rex",
        "type": "dog",
        "breed": "",
        "category": "",
    }
    fields.update(overrides)
    return ReportFiled(**fields)


def file_report(chat: RunningService, **overrides: Any) -> ReportFiled:
    """Publish report.filed and wait until chat's projection holds it."""
    data = report_filed(**overrides)
    chat.publish(data)
    wait_for(lambda: _get(chat, ReportCard, data.report_id), message="report projection")
    return data


def sign_up(chat: RunningService, user_id: int, name: str) -> None:
    """Publish user.registered and wait for the display name projection."""
    chat.publish(UserRegistered(user_id=user_id, display_name=name, email=f"u{user_id}@example.org"))
    wait_for(lambda: _get(chat, UserName, user_id), message="user projection")


def _get(chat: RunningService, model: Any, key: Any) -> Any:
    with chat.session() as session:
        return session.get(model, key)


def jpeg(size: tuple[int, int] = (64, 48), colour: str = "red") -> bytes:
    """A small valid JPEG."""
    out = io.BytesIO()
    Image.new("RGB", size, colour).save(out, "JPEG")
    return out.getvalue()
