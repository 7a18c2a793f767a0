"""Events of the auth service: accounts (stream USERS) and sign-in links (stream AUTH)."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pawgle.common.events.envelope import EventData, event_model


@event_model
class UserRegistered(EventData):
    """A new account; carries what other services may keep about a user."""

    event_type = "user.registered"
    user_id: int
    display_name: str
    email: str
    email_verified: bool = False


@event_model
class UserUpdated(EventData):
    event_type = "user.updated"
    user_id: int
    display_name: str
    email: str
    email_verified: bool
    is_active: bool = True


@event_model
class UserDeleted(EventData):
    """Erase this user's personal data everywhere."""

    event_type = "user.deleted"
    user_id: int


@event_model
class MagicLinkRequested(EventData):
    """Send a sign-in (or verification) link. Lives on the AUTH stream no longer than the link does."""

    event_type = "auth.magic_link_requested"
    user_id: int
    email: str
    link: str
    purpose: Literal["sign_in", "verify_email", "password_reset"] = "sign_in"
    expires_at: datetime
