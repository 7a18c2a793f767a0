"""Data builders for auth's tests: a migrated database, the service's components, users and links."""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from pawgle.auth import links
from pawgle.auth.components import AuthComponents
from pawgle.auth.config import Settings
from pawgle.auth.main import MIGRATIONS, build_components
from pawgle.auth.models import User, utcnow
from pawgle.common.bus.outbox import set_producer
from pawgle.common.bus.tables import OutboxEvent
from pawgle.common.db import make_engine
from pawgle.common.migrations import upgrade_to_head

PASSWORD = "Correct-Horse-42"


def migrated_engine(database_url: str) -> Engine:
    """An engine on a database brought to auth's newest schema, writing events as auth (as the app's does)."""
    engine = make_engine(database_url)
    upgrade_to_head(MIGRATIONS, database_url, engine)
    set_producer(engine, "auth")  # what the app does for its engine: events name their producer
    return engine


def make_components(settings: Settings) -> AuthComponents:
    """What the service functions need, as the app builds it (no mail limits: no bus here)."""
    return build_components(settings)


def create_user(
    session: Session,
    components: AuthComponents,
    *,
    username: str = "alice",
    email: str = "alice@example.com",
    password: str | None = PASSWORD,
    **overrides: Any,
) -> User:
    """A verified, active account with `password` (None: no password, as after a Google sign-up)."""
    values: dict[str, Any] = {
        "username": username,
        "username_key": username.lower(),
        "email": email,
        "email_key": email,
        "display_name": username,
        "password_hash": components.passwords.hash(password) if password is not None else None,
        "email_verified": True,
        "password_changed_at": utcnow(),
    }
    values.update(overrides)
    user = User(**values)
    session.add(user)
    session.flush()
    return user


def issue_link(session: Session, components: AuthComponents, user: User, purpose: str = links.SIGN_IN) -> str:
    """A one-time link's token for `user`, as if it had been e-mailed."""
    return links.issue_link(session=session, components=components, user=user, purpose=purpose)


def mailed_links(engine: Engine) -> list[dict[str, Any]]:
    """Every auth.magic_link_requested event written to the outbox, oldest first."""
    with Session(engine) as session:
        rows = session.exec(
            select(OutboxEvent).where(OutboxEvent.subject == "auth.magic_link_requested").order_by(OutboxEvent.seq)
        ).all()
    return [json.loads(row.payload)["data"] for row in rows]
