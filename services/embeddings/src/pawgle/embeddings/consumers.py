"""The events the embeddings service consumes, each handed to its ingest function with typed data."""

from __future__ import annotations

from fastapi import FastAPI
from sqlmodel import Session

from pawgle.common.bus.handlers import EventHandlers
from pawgle.common.events.pets import PetCreated, PetDeleted, PetUpdated
from pawgle.common.events.reports import ReportExpired, ReportFiled, ReportReopened, ReportResolved, ReportUpdated
from pawgle.embeddings import ingest

handlers = EventHandlers("embeddings")


@handlers.on(PetCreated)
def pet_created(session: Session, data: PetCreated, app: FastAPI) -> None:
    ingest.on_pet_snapshot(session, index=app.state.index, data=data, photos_changed=True)


@handlers.on(PetUpdated)
def pet_updated(session: Session, data: PetUpdated, app: FastAPI) -> None:
    ingest.on_pet_snapshot(session, index=app.state.index, data=data, photos_changed=data.images_changed)


@handlers.on(PetDeleted)
def pet_deleted(session: Session, data: PetDeleted, app: FastAPI) -> None:
    ingest.on_pet_deleted(session, index=app.state.index, data=data)


@handlers.on(ReportFiled)
def report_filed(session: Session, data: ReportFiled, app: FastAPI) -> None:
    ingest.on_report_snapshot(session, index=app.state.index, data=data, embed=True)


@handlers.on(ReportUpdated)
def report_updated(session: Session, data: ReportUpdated, app: FastAPI) -> None:
    ingest.on_report_snapshot(session, index=app.state.index, data=data, embed=True)


@handlers.on(ReportReopened)
def report_reopened(session: Session, data: ReportReopened, app: FastAPI) -> None:
    ingest.on_report_snapshot(session, index=app.state.index, data=data, embed=True)


@handlers.on(ReportResolved)
def report_resolved(session: Session, data: ReportResolved, app: FastAPI) -> None:
    ingest.on_report_status(session, index=app.state.index, report_id=data.report_id, status="resolved")


@handlers.on(ReportExpired)
def report_expired(session: Session, data: ReportExpired, app: FastAPI) -> None:
    ingest.on_report_status(session, index=app.state.index, report_id=data.report_id, status="expired")
