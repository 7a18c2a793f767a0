"""Events of the matcher service (stream MATCHES): a found report looks like a lost pet."""

from __future__ import annotations

from pawgle.common.events.envelope import EventData, event_model


@event_model
class MatchFound(EventData):
    """A found report looks like a registered pet or a lost report nearby."""

    event_type = "match.found"
    match_id: int
    found_report_id: int
    found_reporter_id: int
    lost_user_id: int
    pet_id: int | None = None
    lost_report_id: int | None = None
    name: str
    score: float
    distance_km: float | None = None
    # Sightings of one unknown animal: the found reports grouped with this one (same look, close in space
    # and time). Chat keeps one conversation per (trail, lost side) and adds each trail finder to it.
    trail_id: int | None = None
    trail_report_ids: list[int] = []
    trail_reporter_ids: list[int] = []


@event_model
class MatchConfirmed(EventData):
    """One side confirmed the match. With `pet_home` the lost side's owner says the pet is back, and the
    reports service resolves `lost_report_id` (the matched lost report, or the pet's active lost report)."""

    event_type = "match.confirmed"
    match_id: int
    by_user_id: int
    found_report_id: int | None = None
    pet_id: int | None = None
    lost_report_id: int | None = None
    pet_home: bool = False


@event_model
class MatchDismissed(EventData):
    event_type = "match.dismissed"
    match_id: int
    by_user_id: int
