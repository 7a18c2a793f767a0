"""Events of the reports service (stream REPORTS)."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pawgle.common.events.envelope import EventData, event_model


class ReportSnapshot(EventData):
    report_id: int
    reporter_id: int
    status: Literal["lost", "found", "resolved"]
    latitude: float
    longitude: float
    animal_name: str
    type: str
    breed: str
    category: str
    pet_id: int | None = None
    pet_owner_id: int | None = None
    image_key: str | None = None
    reported_at: datetime | None = None


@event_model
class ReportFiled(ReportSnapshot):
    event_type = "report.filed"


@event_model
class ReportUpdated(ReportSnapshot):
    event_type = "report.updated"


@event_model
class ReportResolved(EventData):
    event_type = "report.resolved"
    report_id: int
    reporter_id: int


@event_model
class ReportReopened(ReportSnapshot):
    event_type = "report.reopened"


@event_model
class ReportExpired(EventData):
    """A report was not renewed in time and left the maps."""

    event_type = "report.expired"
    report_id: int
    reporter_id: int
    animal_name: str
