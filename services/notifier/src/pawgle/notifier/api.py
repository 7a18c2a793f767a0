"""Thin routers for alerts (R1-R4), notifications (N1-N3) and inbound e-mail replies (X1)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Request, Response

from pawgle.common.auth import CurrentUserId
from pawgle.common.db import SessionDep, SessionRoute
from pawgle.common.errors import JSONResponseUTF8
from pawgle.common.fastpath import fast_read
from pawgle.common.schemas import EntityId, format_timestamp
from pawgle.notifier import service
from pawgle.notifier.schemas import (
    AlertCreate,
    AlertRead,
    AlertUpdate,
    DetailMessage,
    InboundReply,
    InboundResult,
    NotificationList,
)

router = APIRouter(prefix="/api/auth", route_class=SessionRoute)


def _alert(area: object) -> AlertRead:
    return AlertRead.model_validate(area)


@router.get("/alerts/", response_model=list[AlertRead])
@fast_read(cached=True)
def list_alerts(session: SessionDep, user_id: CurrentUserId) -> JSONResponseUTF8:
    """The caller's alert areas, newest first."""
    # The shape of AlertRead, from our own rows (a validated model per row costs more than the query).
    return JSONResponseUTF8([_alert_object(area) for area in service.list_alerts(session=session, user_id=user_id)])


def _alert_object(row: Any) -> dict[str, Any]:
    return {
        "id": row.id,
        "label": row.label,
        "center_lat": float(row.center_lat),
        "center_lon": float(row.center_lon),
        "radius_km": float(row.radius_km),
        "status_filter": row.status_filter,
        "is_active": bool(row.is_active),
        "created_at": format_timestamp(row.created_at),
    }


@router.post("/alerts/", response_model=AlertRead, status_code=201)
def create_alert(data: AlertCreate, session: SessionDep, user_id: CurrentUserId) -> AlertRead:
    """Watch a new area (at most 10 per user)."""
    return _alert(service.create_alert(session=session, user_id=user_id, data=data))


@router.get("/alerts/{alert_id:int}/", response_model=AlertRead)
def get_alert(alert_id: EntityId, session: SessionDep, user_id: CurrentUserId) -> AlertRead:
    """One of the caller's areas."""
    return _alert(service.get_alert(session=session, user_id=user_id, alert_id=alert_id))


@router.api_route("/alerts/{alert_id:int}/", methods=["PATCH", "PUT"], response_model=AlertRead)
def update_alert(alert_id: EntityId, data: AlertUpdate, session: SessionDep, user_id: CurrentUserId) -> AlertRead:
    """Change any of an area's fields, or pause it with is_active."""
    return _alert(service.update_alert(session=session, user_id=user_id, alert_id=alert_id, data=data))


@router.delete("/alerts/{alert_id:int}/", status_code=204)
def delete_alert(alert_id: EntityId, session: SessionDep, user_id: CurrentUserId) -> Response:
    """Stop watching an area."""
    service.delete_alert(session=session, user_id=user_id, alert_id=alert_id)
    return Response(status_code=204)


@router.get("/notifications/", response_model=NotificationList)
@fast_read(cached=True)
def list_notifications(session: SessionDep, user_id: CurrentUserId) -> JSONResponseUTF8:
    """The newest 50 notifications and the count of every unread one."""
    rows, unread = service.list_notifications(session=session, user_id=user_id)
    # The shape of NotificationList, built from our own rows: a validated model per row (up to 50 on
    # every page load) cost more CPU than the two queries.
    return JSONResponseUTF8({"notifications": [_notification(row) for row in rows], "unread_count": unread})


def _notification(row: Any) -> dict[str, Any]:
    return {
        "id": row.id,
        "verb": row.verb,
        "description": row.description,
        "target_id": row.target_id,
        "target_name": row.target_name,
        "is_read": bool(row.is_read),
        "created_at": format_timestamp(row.created_at),
    }


@router.api_route("/notifications/read-all/", methods=["POST", "PUT"], response_model=DetailMessage)
def mark_all_read(session: SessionDep, user_id: CurrentUserId) -> DetailMessage:
    """Mark every notification of the caller read."""
    service.mark_all_read(session=session, user_id=user_id)
    return DetailMessage(detail="All notifications marked as read")


@router.api_route("/notifications/{notification_id:int}/read/", methods=["POST", "PUT"], response_model=DetailMessage)
def mark_read(notification_id: EntityId, session: SessionDep, user_id: CurrentUserId) -> DetailMessage:
    """Mark one notification read."""
    service.mark_read(session=session, user_id=user_id, notification_id=notification_id)
    return DetailMessage(detail="Marked as read")


async def require_forward_secret(request: Request, x_forward_secret: Annotated[str | None, Header()] = None) -> None:
    """Server-to-server auth of X1, checked before the body is even parsed (a constant-time compare: async)."""
    service.check_forward_secret(settings=request.app.state.settings, secret=x_forward_secret)


@router.post("/email/forward-reply/", response_model=InboundResult, dependencies=[Depends(require_forward_secret)])
def forward_reply(request: Request, payload: InboundReply, session: SessionDep) -> InboundResult:
    """A reply to a chat e-mail, forwarded by the frontend's inbound route: posted into the chat."""
    service.accept_email_reply(session=session, settings=request.app.state.settings, payload=payload)
    return InboundResult(success=True, message="Forwarded")
