"""Factories for the notifier's tests: rows in its tables and event payloads (tokens: pawgle.common.testing)."""

from __future__ import annotations

import itertools
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlmodel import Session

from pawgle.common.events.auth import UserRegistered
from pawgle.common.events.reports import ReportFiled
from pawgle.common.testing.service import wait_for as wait_for  # the tests import it from here
from pawgle.notifier import repository
from pawgle.notifier.models import AlertArea, Contact, Notification

_ids = itertools.count(int(time.time() * 1000) % 1_000_000_000)


def next_id() -> int:
    """A fresh positive id, unique within the test session."""
    return next(_ids)


def create_alert(session: Session, **overrides: Any) -> AlertArea:
    """An indexed alert area (default: 5 km around central Paris, any status)."""
    fields: dict[str, Any] = {
        "user_id": next_id(),
        "label": "home",
        "center_lat": 48.8566,
        "center_lon": 2.3522,
        "radius_km": 5.0,
        "status_filter": "",
        "is_active": True,
    }
    fields.update(overrides)
    return repository.save_alert(session, AlertArea(**fields), reindex=True)


def create_contact(session: Session, user_id: int, **overrides: Any) -> Contact:
    fields: dict[str, Any] = {
        "user_id": user_id,
        "email": f"user{user_id}@example.org",
        "display_name": f"user {user_id}",
        "email_verified": True,
        "is_active": True,
        "updated_at": datetime(2020, 1, 1),
    }
    fields.update(overrides)
    contact = Contact(**fields)
    repository.save(session, contact)
    return contact


def create_notification(session: Session, user_id: int, **overrides: Any) -> Notification:
    fields: dict[str, Any] = {
        "user_id": user_id,
        "verb": "nearby_alert",
        "description": "A lost pet was reported nearby.",
        "dedupe_key": f"test:{uuid.uuid4().hex}",
    }
    fields.update(overrides)
    row = Notification(**fields)
    repository.add_notifications(session, [row])
    return row


def report_filed(**overrides: Any) -> ReportFiled:
    """A report.filed payload (default: a lost dog without photo in central Paris)."""
    fields: dict[str, Any] = {
        "report_id": next_id(),
        "reporter_id": next_id(),
        "status": "lost",
        "latitude": 48.8566,
        "longitude": 2.3522,
        "animal_name": "Rex",
        "type": "Dogs",
        "breed": "Beagle",
        "category": "Domestic",
        "image_key": None,
    }
    fields.update(overrides)
    return ReportFiled(**fields)


def user_registered(user_id: int, **overrides: Any) -> UserRegistered:
    fields: dict[str, Any] = {
        "user_id": user_id,
        "display_name": f"user {user_id}",
        "email": f"user{user_id}@example.org",
        "email_verified": True,
    }
    fields.update(overrides)
    return UserRegistered(**fields)


def in_minutes(minutes: float) -> datetime:
    return datetime.now(UTC) + timedelta(minutes=minutes)
