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


@event_model
class MatchConfirmed(EventData):
    event_type = "match.confirmed"
    match_id: int
    by_user_id: int


@event_model
class MatchDismissed(EventData):
    event_type = "match.dismissed"
    match_id: int
    by_user_id: int
