"""Request and response bodies of the auth endpoints (contract section 3)."""

from __future__ import annotations

from pydantic import ConfigDict, Field

from pawgle.common.openapi import required_in_schema
from pawgle.common.schemas import RequestModel, ResponseModel

# Request bodies (RequestModel) are strict JSON (a number is not a string) and ignore unknown fields: the
# frontend posts its forms as they are. Their text is checked by the service (e-mail normal form, username).
# Fields default to "" so a missing one gets the contract's own message; the schema still says required.


class SignupRequest(RequestModel):
    model_config = ConfigDict(json_schema_extra=required_in_schema("username", "email", "password", "confirm_password"))
    username: str = Field("", max_length=1000)
    email: str = Field("", max_length=1000)
    password: str = Field("", max_length=10000)
    confirm_password: str = Field("", max_length=10000)


class LoginRequest(RequestModel):
    model_config = ConfigDict(json_schema_extra=required_in_schema("email", "password"))
    email: str = Field("", max_length=1000)
    password: str = Field("", max_length=10000)


class GoogleRequest(RequestModel):
    credential: str | None = Field(None, max_length=10000)
    id_token: str | None = Field(None, max_length=10000)


class EmailRequest(RequestModel):
    model_config = ConfigDict(json_schema_extra=required_in_schema("email"))
    email: str = Field("", max_length=1000)


class TokenRequest(RequestModel):
    model_config = ConfigDict(json_schema_extra=required_in_schema("token"))
    token: str = Field("", max_length=1000)


class ResetPasswordRequest(RequestModel):
    model_config = ConfigDict(json_schema_extra=required_in_schema("token", "new_password"))
    token: str = Field("", max_length=1000)
    new_password: str = Field("", max_length=10000)
    uid: str | None = Field(None, max_length=100)  # sent by the original's clients; the token alone decides


class UserRead(ResponseModel):
    id: int
    username: str
    email: str


class SignupResponse(ResponseModel):
    message: str
    user: UserRead


class AccessResponse(ResponseModel):
    access: str


class SignedInResponse(ResponseModel):
    access: str
    user: UserRead


class GoogleResponse(ResponseModel):
    user: UserRead
    access: str
    created: bool


class DetailResponse(ResponseModel):
    detail: str


class MessageResponse(ResponseModel):
    message: str
    detail: str


class UserCount(ResponseModel):
    user_count: int
