"""Request and response models of the alerts, notifications and inbound-reply routes (contract R1-R4, N1-N3, X1)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BeforeValidator, ConfigDict, Field, field_validator

from pawgle.common.schemas import (
    Latitude,
    Longitude,
    RequestModel,
    ResponseModel,
    SafeTextOrEmpty,
    Timestamp,
)

RadiusKm = Annotated[float, Field(gt=0, le=100, description="kilometres, more than 0 and at most 100")]
StatusFilter = Literal["", "lost", "found"]
AlertLabel = Annotated[SafeTextOrEmpty, Field(max_length=64)]
MAX_RECIPIENTS = 50  # `to` of an inbound e-mail: a real reply has one or a few addresses


class AlertCreate(RequestModel):
    label: AlertLabel = ""
    center_lat: Latitude
    center_lon: Longitude
    radius_km: RadiusKm = 5.0
    status_filter: StatusFilter = ""

    @field_validator("status_filter", mode="before", json_schema_input_type=StatusFilter | None)
    @classmethod
    def _null_means_any(cls, value: object) -> object:
        return "" if value is None else value


class AlertUpdate(RequestModel):
    """PATCH (and PUT): any subset of the fields of AlertCreate, plus is_active."""

    label: AlertLabel | None = None
    center_lat: Latitude | None = None
    center_lon: Longitude | None = None
    radius_km: RadiusKm | None = None
    status_filter: StatusFilter | None = None
    is_active: bool | None = None


class AlertRead(ResponseModel):
    id: int
    label: str
    center_lat: float
    center_lon: float
    radius_km: float
    status_filter: str
    is_active: bool
    created_at: Timestamp


class NotificationRead(ResponseModel):
    id: int
    verb: str
    description: str
    target_id: int | None
    target_name: str | None
    is_read: bool
    created_at: Timestamp


class NotificationList(ResponseModel):
    notifications: list[NotificationRead]
    unread_count: int


class DetailMessage(ResponseModel):
    detail: str


class InboundAttachment(RequestModel):
    filename: str | None = None
    content: str | None = None
    content_type: str | None = None


def _one_or_many(value: object) -> object:
    return [value] if isinstance(value, str) else value


class InboundReply(RequestModel):
    """What the frontend's Resend inbound route forwards (X1); only `to`, `from` and the text are used."""

    model_config = ConfigDict(populate_by_name=True)

    from_: str = Field("", alias="from", max_length=1000)
    # One address or a list of them (the route forwards either); at most MAX_RECIPIENTS.
    to: Annotated[
        list[Annotated[str, Field(max_length=1000)]], BeforeValidator(_one_or_many), Field(max_length=MAX_RECIPIENTS)
    ] = []
    subject: str = Field("", max_length=2000)
    text: str | None = Field("", max_length=200_000)
    html: str | None = Field("", max_length=500_000)
    attachments: Annotated[list[InboundAttachment], Field(max_length=100)] = []

    def recipients(self) -> list[str]:
        """Every address in `to`."""
        return list(self.to)


class InboundResult(ResponseModel):
    success: bool
    message: str
