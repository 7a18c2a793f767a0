"""Factories for the reports tests: the web app's report form, photos, events and rows."""

from __future__ import annotations

import io
import itertools
import json
import time
from typing import Any

from PIL import Image

from pawgle.common.events.pets import PetCreated
from pawgle.common.testing.service import RunningService
from pawgle.common.testing.service import wait_for as wait_for  # the tests import it from here

PUBLIC_BASE = "http://localhost:8000"
_ids = itertools.count(int(time.time() * 1000) % 1_000_000_000)
# A street corner in Berlin, not at any grid cell's centre.
LAT, LON = 52.520008, 13.404954


def next_id() -> int:
    """A fresh positive id, unique within the test session."""
    return next(_ids)


def photo_jpeg() -> bytes:
    """A small real JPEG."""
    out = io.BytesIO()
    Image.new("RGB", (64, 48), (180, 120, 60)).save(out, "JPEG")
    return out.getvalue()


def report_form(**overrides: Any) -> dict[str, str]:
    """Exactly the field set the web app's report page sends (empty strings included)."""
    fields = {
        "animal_name": "Rex",
        "category": "Domestic",
        "type": "Dogs",
        "breed": "Beagle",
        "status": "lost",
        "description": "Brown collar, very friendly.",
        "latitude": str(LAT),
        "longitude": str(LON),
        "contact_name": "Jane",
        "contact_phone": "+49 30 1234567",
        "contact_email": "jane@example.org",
        "last_seen_date": "",
        "register_pet": "false",
    }
    fields.update({key: str(value) for key, value in overrides.items()})
    return fields


def file_report(
    service: RunningService, user_id: int, *, photo: bytes | None = None, expect: int = 201, **fields: Any
) -> dict[str, Any]:
    """POST a report as the web app does (multipart); returns the JSON body."""
    files = {"image": ("pet.jpg", photo, "image/jpeg")} if photo is not None else None
    response = service.client.post(
        "/api/auth/pets/report/", data=report_form(**fields), files=files, headers=service.headers(user_id)
    )
    assert response.status_code == expect, response.text
    return response.json()


def pet_created(owner_id: int, **overrides: Any) -> PetCreated:
    fields: dict[str, Any] = {
        "pet_id": next_id(),
        "owner_id": owner_id,
        "name": "Rex",
        "type": "Dogs",
        "breed": "Beagle",
        "category": "Domestic",
    }
    fields.update(overrides)
    return PetCreated(**fields)


def locations(service: RunningService, user_id: int, path: str = "/api/auth/pets/locations/", **params: Any) -> Any:
    response = service.client.get(path, params=params, headers=service.headers(user_id))
    assert response.status_code == 200, response.text
    return response.json()


def events(service: RunningService, subject: str) -> list[dict[str, Any]]:
    """The payloads of the events the service wrote to its outbox under `subject`, oldest first."""
    from sqlmodel import col, select

    from pawgle.common.bus.tables import OutboxEvent

    with service.session() as session:
        rows = session.exec(select(OutboxEvent).where(OutboxEvent.subject == subject).order_by(col(OutboxEvent.seq)))
        return [json.loads(row.payload)["data"] for row in rows]
