"""Request and response bodies of the auth endpoints (contract section 3)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class _Body(BaseModel):
    # Unknown fields are ignored: the frontend posts its forms as they are.
    model_config = ConfigDict(extra="ignore")


class SignupRequest(_Body):
    username: str = Field("", max_length=1000)
    email: str = Field("", max_length=1000)
    password: str = Field("", max_length=10000)
    confirm_password: str = Field("", max_length=10000)


class LoginRequest(_Body):
    email: str = Field("", max_length=1000)
    password: str = Field("", max_length=10000)


class GoogleRequest(_Body):
    credential: str | None = Field(None, max_length=10000)
    id_token: str | None = Field(None, max_length=10000)


class EmailRequest(_Body):
    email: str = Field("", max_length=1000)


class TokenRequest(_Body):
    token: str = Field("", max_length=1000)


class ResetPasswordRequest(_Body):
    token: str = Field("", max_length=1000)
    new_password: str = Field("", max_length=10000)
    uid: str | None = Field(None, max_length=100)  # sent by the original's clients; the token alone decides


class UserRead(BaseModel):
    id: int
    username: str
    email: str


class SignupResponse(BaseModel):
    message: str
    user: UserRead


class AccessResponse(BaseModel):
    access: str


class SignedInResponse(BaseModel):
    access: str
    user: UserRead


class GoogleResponse(BaseModel):
    user: UserRead
    access: str
    created: bool


class DetailResponse(BaseModel):
    detail: str


class MessageResponse(BaseModel):
    message: str
    detail: str


class UserCount(BaseModel):
    user_count: int
