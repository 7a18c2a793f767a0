"""The contract's Location object (L1-L6, L5) as one viewer may see it: contact fields and the exact place
only for those entitled (D3a and the location-privacy rule)."""

from __future__ import annotations

from collections.abc import Callable, Collection
from dataclasses import dataclass
from typing import Any

from pawgle.common.schemas import format_timestamp

UrlOf = Callable[[str], str]
# Legacy or partner rows may hold markup characters; the web app renders these fields through innerHTML
# and cannot escape them (contract D8), so they are stripped on the way out too.
_MARKUP = str.maketrans("", "", '<>"`')


def _clean(value: str | None) -> str:
    return (value or "").translate(_MARKUP)


@dataclass(frozen=True)
class Viewer:
    """Who is looking: their id and the reports they talk about in a conversation (see the exact place)."""

    user_id: int | None
    conversation_reports: Collection[int] = ()

    def sees_exactly(self, report: Any) -> bool:
        """The reporter, the linked pet's owner and the report's conversation participants see the exact place."""
        if self.user_id is None:
            return False
        return (
            report.reporter_id == self.user_id
            or report.pet_owner_id == self.user_id
            or report.id in self.conversation_reports
        )


def location(report: Any, *, viewer: Viewer, url: UrlOf, with_contact: bool = False) -> dict[str, Any]:
    """The Location object of a report row (ORM object or plain row); `with_contact` only for its reporter (L4)."""
    exact = viewer.sees_exactly(report)
    approximate = not exact and (report.map_lat, report.map_lon) != (report.latitude, report.longitude)
    name = _clean(report.pet_name or report.animal_name)
    image_url = url(report.image_key) if report.image_key else None
    body: dict[str, Any] = {
        "id": report.id,
        "latitude": report.latitude if exact else report.map_lat,
        "longitude": report.longitude if exact else report.map_lon,
        "location_is_approximate": approximate,
        "status": report.status,
        "animal_name": name,
        "pet_name": name,
        "type": _clean(report.pet_type or report.type),
        "breed": _clean(report.pet_breed or report.breed),
        "category": report.pet_category or report.category,
        # The pet's id only for its owner; everyone else gets null with pet_name set (contract L-object).
        "pet": report.pet_id if report.pet_id is not None and report.pet_owner_id == viewer.user_id else None,
        "description": report.description,
        "last_seen_date": report.last_seen_date.isoformat() if report.last_seen_date else None,
        "last_seen_time": report.last_seen_time.strftime("%H:%M:%S") if report.last_seen_time else None,
        "reported_at": format_timestamp(report.reported_at),
        "resolved_at": format_timestamp(report.resolved_at) if report.resolved_at else None,
        "expires_at": format_timestamp(report.expires_at),
        "is_expired": report.expired_at is not None,
        "image_url": image_url,
        "image": image_url,
        "feature_status": report.feature_status,
        "is_test": report.is_test,
    }
    if with_contact and viewer.user_id is not None and report.reporter_id == viewer.user_id:
        body["contact_name"] = report.contact_name
        body["contact_phone"] = report.contact_phone
        body["contact_email"] = report.contact_email
    return body


def lost_pet_entry(report: Any) -> dict[str, Any]:
    """X2 (the orphan /lost page, public): id, the public position and the pet's name."""
    return {
        "id": report.id,
        "latitude": report.map_lat,
        "longitude": report.map_lon,
        "pet": {"name": _clean(report.pet_name or report.animal_name)},
    }
