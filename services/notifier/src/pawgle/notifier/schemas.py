"""Request and response models of the alerts, notifications and inbound-reply routes (contract R1-R4, N1-N3, X1)."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, PlainSerializer, field_validator

# Characters that would break out of the frontend's innerHTML map popups (D8), plus control characters.
_UNSAFE_LABEL = re.compile(r"[<>\"`\x00-\x1f\x7f]")


def format_timestamp(value: datetime) -> str:
    """ISO-8601 UTC with microseconds and Z (contract 0.3)."""
    return value.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


Timestamp = Annotated[datetime, PlainSerializer(format_timestamp, return_type=str)]
Latitude = Annotated[float, Field(ge=-90, le=90, description="degrees, -90..90")]
Longitude = Annotated[float, Field(ge=-180, le=180, description="degrees, -180..180")]
RadiusKm = Annotated[float, Field(gt=0, le=100, description="kilometres, more than 0 and at most 100")]
StatusFilter = Literal["", "lost", "found"]


def _check_label(value: str) -> str:
    value = value.strip()
    if _UNSAFE_LABEL.search(value):
        raise ValueError('Label must not contain <, >, ", ` or control characters.')
    return value


class _AlertFields(BaseModel):
    model_config = ConfigDict(allow_inf_nan=False, extra="ignore")


class AlertCreate(_AlertFields):
    label: str = Field("", max_length=64)
    center_lat: Latitude
    center_lon: Longitude
    radius_km: RadiusKm = 5.0
    status_filter: StatusFilter = ""

    @field_validator("label", "status_filter", mode="before")
    @classmethod
    def _null_means_empty(cls, value: Any) -> Any:
        return "" if value is None else value

    @field_validator("label")
    @classmethod
    def _label(cls, value: str) -> str:
        return _check_label(value)


class AlertUpdate(_AlertFields):
    """PATCH (and PUT): any subset of the fields of AlertCreate, plus is_active."""

    label: str | None = Field(None, max_length=64)
    center_lat: Latitude | None = None
    center_lon: Longitude | None = None
    radius_km: RadiusKm | None = None
    status_filter: StatusFilter | None = None
    is_active: bool | None = None

    @field_validator("label")
    @classmethod
    def _label(cls, value: str | None) -> str | None:
        return None if value is None else _check_label(value)


class AlertRead(BaseModel):
    id: int
    label: str
    center_lat: float
    center_lon: float
    radius_km: float
    status_filter: str
    is_active: bool
    created_at: Timestamp


class NotificationRead(BaseModel):
    id: int
    verb: str
    description: str
    target_id: int | None
    target_name: str | None
    is_read: bool
    created_at: Timestamp


class NotificationList(BaseModel):
    notifications: list[NotificationRead]
    unread_count: int


class DetailMessage(BaseModel):
    detail: str


class InboundAttachment(BaseModel):
    filename: str | None = None
    content: str | None = None
    content_type: str | None = None


class InboundReply(BaseModel):
    """What the frontend's Resend inbound route forwards (X1); only `to`, `from` and the text are used."""

    model_config = ConfigDict(populate_by_name=True, extra="ignore")

    from_: str = Field("", alias="from", max_length=1000)
    to: str | list[str] = ""
    subject: str = Field("", max_length=2000)
    text: str | None = Field("", max_length=200_000)
    html: str | None = Field("", max_length=500_000)
    attachments: list[InboundAttachment] = []

    def recipients(self) -> list[str]:
        """`to` as a list, whether the route sent one address or several."""
        return [self.to] if isinstance(self.to, str) else list(self.to)


class InboundResult(BaseModel):
    success: bool
    message: str
