"""The events the matcher consumes, each handed to its projection with typed data."""

from __future__ import annotations

from datetime import datetime

from sqlmodel import Session

from pawgle.common.bus.handlers import EventHandlers
from pawgle.common.events.embeddings import PetEmbedded, ReportEmbedded
from pawgle.common.events.pets import PetCreated, PetDeleted, PetSnapshot, PetUpdated
from pawgle.common.events.reports import (
    ReportErased,
    ReportExpired,
    ReportFiled,
    ReportReopened,
    ReportResolved,
    ReportUpdated,
)
from pawgle.matcher import projections

handlers = EventHandlers("matcher")


@handlers.on(ReportFiled)
def report_filed(session: Session, data: ReportFiled, occurred_at: datetime) -> None:
    projections.on_report_snapshot(session, data=data, occurred_at=occurred_at, filed=True, reopened=False)


@handlers.on(ReportUpdated)
def report_updated(session: Session, data: ReportUpdated, occurred_at: datetime) -> None:
    projections.on_report_snapshot(session, data=data, occurred_at=occurred_at, filed=False, reopened=False)


@handlers.on(ReportReopened)
def report_reopened(session: Session, data: ReportReopened, occurred_at: datetime) -> None:
    projections.on_report_snapshot(session, data=data, occurred_at=occurred_at, filed=False, reopened=True)


@handlers.on(ReportResolved)
def report_resolved(session: Session, data: ReportResolved) -> None:
    projections.on_report_status(session, report_id=data.report_id, status="resolved")


@handlers.on(ReportExpired)
def report_expired(session: Session, data: ReportExpired) -> None:
    projections.on_report_status(session, report_id=data.report_id, status="expired")


@handlers.on(ReportErased)
def report_erased(session: Session, data: ReportErased) -> None:
    projections.on_report_erased(session, report_id=data.report_id)


@handlers.on(ReportEmbedded)
def report_embedded(session: Session, data: ReportEmbedded) -> None:
    projections.on_report_embedded(session, data=data)


@handlers.on(PetCreated, PetUpdated)
def pet_changed(session: Session, data: PetSnapshot) -> None:
    projections.on_pet_snapshot(session, data=data)


@handlers.on(PetEmbedded)
def pet_embedded(session: Session, data: PetEmbedded) -> None:
    projections.on_pet_embedded(session, data=data)


@handlers.on(PetDeleted)
def pet_deleted(session: Session, data: PetDeleted) -> None:
    projections.on_pet_deleted(session, data=data)
