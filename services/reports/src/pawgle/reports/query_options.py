"""The map lists' optional query parameters (bbox, status, species, limit, cursor); none changes the defaults."""

from __future__ import annotations

import base64
import binascii
import math
from datetime import datetime

from pawgle.common.errors import BadRequest
from pawgle.common.schemas import MAX_ID, check_text, format_timestamp
from pawgle.reports.repository import ACTIVE, MapQuery


def _bbox(raw: str) -> tuple[float, float, float, float]:
    parts = raw.split(",")
    hint = "bbox must be west,south,east,north in degrees (longitudes -180..180, latitudes -90..90, south <= north)."
    if len(parts) != 4 or any(len(p) > 40 for p in parts):
        raise BadRequest(hint)
    try:
        west, south, east, north = (float(p) for p in parts)
    except ValueError:
        raise BadRequest(hint) from None
    values = (west, south, east, north)
    if not all(math.isfinite(v) for v in values):
        raise BadRequest(hint)
    if not (-180 <= west <= 180 and -180 <= east <= 180 and -90 <= south <= north <= 90):
        raise BadRequest(hint)
    return west, south, east, north


def encode_cursor(reported_at: datetime, report_id: int) -> str:
    """An opaque cursor for the page after this report."""
    return base64.urlsafe_b64encode(f"{format_timestamp(reported_at)}|{report_id}".encode()).decode().rstrip("=")


def _cursor(raw: str) -> tuple[datetime, int]:
    try:
        text = base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4)).decode()
        stamp, _, ident = text.partition("|")
        moment = datetime.strptime(stamp, "%Y-%m-%dT%H:%M:%S.%fZ")
        report_id = int(ident)
        if not 1 <= report_id <= MAX_ID:
            raise ValueError
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise BadRequest("cursor is not one this service gave out; start again without it.") from None
    return moment, report_id


def map_query(
    *,
    statuses: tuple[str, ...],
    cap: int,
    bbox: str | None,
    status: str | None,
    species: str | None,
    limit: str | None,
    cursor: str | None,
) -> MapQuery:
    """The query a list request asks for, or a 400 saying which parameter to fix."""
    chosen = statuses
    if status:
        if status not in ACTIVE or status not in statuses:
            raise BadRequest(f"status must be one of {', '.join(statuses)}.")
        chosen = (status,)
    size = cap
    if limit:
        if not limit.isascii() or not limit.isdigit() or not 1 <= int(limit[:6]) <= cap or len(limit) > 6:
            raise BadRequest(f"limit must be a whole number from 1 to {cap}.")
        size = int(limit)
    wanted_species = None
    if species:
        try:
            wanted_species = check_text(species)
        except ValueError as exc:
            raise BadRequest(f"species {exc}") from None
        if len(wanted_species) > 100:
            raise BadRequest("species must be at most 100 characters.")
    return MapQuery(
        statuses=chosen,
        limit=size,
        bbox=_bbox(bbox) if bbox else None,
        species=wanted_species or None,
        after=_cursor(cursor) if cursor else None,
    )
