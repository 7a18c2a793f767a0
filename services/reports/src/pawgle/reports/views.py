"""The contract's Location object (L1-L6, L5) as one viewer may see it: contact fields and the exact place
only for those entitled (D3a and the location-privacy rule)."""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.engine import Row

from pawgle.reports.models import Report

UrlOf = Callable[[str], str]
# Legacy or partner rows may hold markup characters; the web app renders these fields through innerHTML
# and cannot escape them (contract D8), so they are stripped on the way out too.
_COLUMN_NAMES = tuple(column.name for column in Report.__table__.c)
_MARKUP = str.maketrans("", "", '<>"`')


def _timestamp(value: datetime) -> str:
    # The contract's format (ISO-8601 UTC, microseconds, Z) for the naive UTC values the columns hold;
    # isoformat is about twenty times cheaper than strftime, which matters at a thousand rows a page.
    return value.isoformat(timespec="microseconds") + "Z"


def _clean(value: str | None) -> str:
    return (value or "").translate(_MARKUP)


@dataclass(frozen=True)
class Viewer:
    """Who is looking: their id and the reports they talk about in a conversation (see the exact place)."""

    user_id: int | None
    conversation_reports: Collection[int] = ()

    def sees_exactly(self, row: Mapping[str, Any]) -> bool:
        """The reporter, the linked pet's owner and the report's conversation participants see the exact place."""
        if self.user_id is None:
            return False
        return (
            row["reporter_id"] == self.user_id
            or row["pet_owner_id"] == self.user_id
            or row["id"] in self.conversation_reports
        )


def fields_of(report: Any) -> Mapping[str, Any]:
    """A report's columns by name: a query row converted once (reading a Row's attributes costs ~1.5 us
    each, a thousand rows times thirty fields a page), or an ORM Report's attributes."""
    if isinstance(report, Row):
        return dict(zip(report._fields, report, strict=True))
    return {name: getattr(report, name) for name in _COLUMN_NAMES}


def location(report: Any, *, viewer: Viewer, url: UrlOf, with_contact: bool = False) -> dict[str, Any]:
    """The Location object of a report row (ORM object or plain row); `with_contact` only for its reporter (L4)."""
    row = fields_of(report)
    exact = viewer.sees_exactly(row)
    approximate = not exact and (row["map_lat"], row["map_lon"]) != (row["latitude"], row["longitude"])
    name = _clean(row["pet_name"] or row["animal_name"])
    image_url = url(row["image_key"]) if row["image_key"] else None
    body: dict[str, Any] = {
        "id": row["id"],
        "latitude": row["latitude"] if exact else row["map_lat"],
        "longitude": row["longitude"] if exact else row["map_lon"],
        "location_is_approximate": approximate,
        "status": row["status"],
        "animal_name": name,
        "pet_name": name,
        "type": _clean(row["pet_type"] or row["type"]),
        "breed": _clean(row["pet_breed"] or row["breed"]),
        "category": row["pet_category"] or row["category"],
        # The pet's id only for its owner; everyone else gets null with pet_name set (contract L-object).
        "pet": row["pet_id"] if row["pet_id"] is not None and row["pet_owner_id"] == viewer.user_id else None,
        "description": row["description"],
        "last_seen_date": row["last_seen_date"].isoformat() if row["last_seen_date"] else None,
        "last_seen_time": row["last_seen_time"].strftime("%H:%M:%S") if row["last_seen_time"] else None,
        "reported_at": _timestamp(row["reported_at"]),
        "resolved_at": _timestamp(row["resolved_at"]) if row["resolved_at"] else None,
        "expires_at": _timestamp(row["expires_at"]),
        "is_expired": row["expired_at"] is not None,
        "image_url": image_url,
        "image": image_url,
        "feature_status": row["feature_status"],
        "is_test": row["is_test"],
    }
    if with_contact and viewer.user_id is not None and row["reporter_id"] == viewer.user_id:
        body["contact_name"] = row["contact_name"]
        body["contact_phone"] = row["contact_phone"]
        body["contact_email"] = row["contact_email"]
    return body


def lost_pet_entry(report: Any) -> dict[str, Any]:
    """X2 (the orphan /lost page, public): id, the public position and the pet's name."""
    row = fields_of(report)
    return {
        "id": row["id"],
        "latitude": row["map_lat"],
        "longitude": row["map_lon"],
        "pet": {"name": _clean(row["pet_name"] or row["animal_name"])},
    }
