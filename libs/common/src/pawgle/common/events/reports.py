"""Events of the reports service (stream REPORTS)."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pawgle.common.events.envelope import EventData, event_model


class ReportSnapshot(EventData):
    """A report as other services may know it: the exact position, never the reporter's contact fields."""

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
    # The reporter wants a pet of theirs linked (a lost report, or register_pet on a found one) and the
    # reports service knew none with this name, type and breed: the pets service links or creates one
    # (idempotently: a second delivery finds the pet the first created) and its pet.created tells reports.
    wants_pet: bool = False
    expires_at: datetime | None = None
    # Set on reports pushed by a partner organisation (shelters, rescue groups).
    partner_id: int | None = None


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
class ReportExpiring(EventData):
    """A report leaves the maps at `expires_at` unless its reporter renews it (sent a few days before)."""

    event_type = "report.expiring"
    report_id: int
    reporter_id: int
    animal_name: str
    status: Literal["lost", "found"]
    expires_at: datetime


@event_model
class ReportExpired(EventData):
    """A report was not renewed in time and left the maps."""

    event_type = "report.expired"
    report_id: int
    reporter_id: int
    animal_name: str


@event_model
class ReportErased(EventData):
    """A report was erased with its reporter's account (user.deleted): forget it, its photo and its vectors."""

    event_type = "report.erased"
    report_id: int
    reporter_id: int
