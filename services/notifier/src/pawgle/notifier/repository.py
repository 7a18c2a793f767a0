"""Every query of the notifier except the e-mail log's (see mail/log_repository.py)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, delete, func, insert, update
from sqlalchemy.engine import Row
from sqlmodel import Session, SQLModel, col, select

from pawgle.common.db import save
from pawgle.notifier import geo
from pawgle.notifier.models import (
    AlertArea,
    AlertAreaCell,
    ChatEmailPaging,
    Contact,
    EmailMessage,
    MatchMail,
    Notification,
    PetName,
    ReplyToken,
)


def _columns(model: type[SQLModel]) -> list[Any]:
    return list(model.__table__.c)  # type: ignore[attr-defined]


# --- alert areas ---------------------------------------------------------------------------------


def lock_user_alerts(session: Session, user_id: int) -> int:
    """Count a user's areas, locking them so two concurrent creations cannot both pass the cap."""
    rows = session.exec(select(AlertArea.id).where(AlertArea.user_id == user_id).with_for_update()).all()
    return len(rows)


# The queries every page load runs are built once, with bound parameters: building a SQLAlchemy
# statement costs more CPU than SQLite takes to answer it (about 150 us against 20 us here). Lists that
# are only shown read plain rows (same attribute names as the model): making ORM objects of them would
# cost another ~10 us a row.
_USER_ALERTS = (
    select(*_columns(AlertArea))
    .where(AlertArea.user_id == bindparam("user_id"))
    .order_by(col(AlertArea.created_at).desc(), col(AlertArea.id).desc())
)


def list_alerts(session: Session, user_id: int) -> Sequence[Row[Any]]:
    """A user's areas, newest first, as read-only rows."""
    # Core rows straight from the connection: the ORM's execute path would cost more than the query.
    return session.connection().execute(_USER_ALERTS, {"user_id": user_id}).all()


def get_alert(session: Session, *, user_id: int, alert_id: int) -> AlertArea | None:
    """One area if it belongs to the user, else None."""
    area = session.get(AlertArea, alert_id)
    return area if area is not None and area.user_id == user_id else None


def save_alert(session: Session, area: AlertArea, *, reindex: bool) -> AlertArea:
    """Insert or update an area; `reindex` rewrites its grid cells (a new centre or radius)."""
    save(session, area)
    assert area.id is not None
    if reindex:
        index_alert_cells(session, area.id, geo.cells_covering(area.center_lat, area.center_lon, area.radius_km))
    return area


def index_alert_cells(session: Session, alert_id: int, cells: Iterable[int]) -> None:
    """Replace an area's grid cells in the spatial index."""
    session.exec(delete(AlertAreaCell).where(col(AlertAreaCell.alert_id) == alert_id))
    rows = [{"cell": cell, "alert_id": alert_id} for cell in cells]
    if rows:
        session.exec(insert(AlertAreaCell), params=rows)


def delete_alert(session: Session, area: AlertArea) -> None:
    """Delete an area and its index entries."""
    session.exec(delete(AlertAreaCell).where(col(AlertAreaCell.alert_id) == area.id))
    session.delete(area)
    session.flush()


def alert_candidates(session: Session, *, cell: int, status: str, exclude_user_ids: set[int]) -> Sequence[AlertArea]:
    """Active areas indexed under `cell` whose filter accepts `status`: only this cell, never a full scan."""
    query = (
        select(AlertArea)
        .join(AlertAreaCell, col(AlertAreaCell.alert_id) == col(AlertArea.id))
        .where(AlertAreaCell.cell == cell, col(AlertArea.is_active).is_(True))
        .where(col(AlertArea.status_filter).in_(["", status]))
    )
    if exclude_user_ids:
        query = query.where(col(AlertArea.user_id).not_in(exclude_user_ids))
    return session.exec(query.order_by(col(AlertArea.id))).all()


# --- notifications -------------------------------------------------------------------------------


def existing_notification_keys(session: Session, keys: Sequence[str]) -> set[str]:
    """Which of these dedupe keys already have a notification."""
    if not keys:
        return set()
    query = select(Notification.dedupe_key).where(col(Notification.dedupe_key).in_(keys))
    return set(session.exec(query).all())


def add_notifications(session: Session, notifications: Sequence[Notification]) -> None:
    """Insert notifications as ORM rows (tests and single inserts)."""
    session.add_all(notifications)
    session.flush()


def insert_notifications(session: Session, rows: list[dict[str, Any]]) -> None:
    """Bulk insert (one statement, no ORM objects): a report can alert many users at once."""
    if rows:
        session.exec(insert(Notification), params=rows)


_LATEST_NOTIFICATIONS = (
    select(*_columns(Notification))
    .where(Notification.user_id == bindparam("user_id"))
    .order_by(col(Notification.id).desc())
    .limit(bindparam("limit"))
)
_UNREAD_COUNT = (
    select(func.count())
    .select_from(Notification)
    .where(Notification.user_id == bindparam("user_id"), col(Notification.is_read).is_(False))
)


def latest_notifications(session: Session, user_id: int, *, limit: int) -> Sequence[Row[Any]]:
    """A user's newest notifications, newest first, as read-only rows."""
    return session.connection().execute(_LATEST_NOTIFICATIONS, {"user_id": user_id, "limit": limit}).all()


def count_unread(session: Session, user_id: int) -> int:
    """A user's unread notifications, all of them."""
    return int(session.connection().execute(_UNREAD_COUNT, {"user_id": user_id}).scalar_one())


def get_notification(session: Session, *, user_id: int, notification_id: int) -> Notification | None:
    """One notification if it belongs to the user, else None."""
    row = session.get(Notification, notification_id)
    return row if row is not None and row.user_id == user_id else None


def mark_all_read(session: Session, user_id: int) -> None:
    """Mark every unread notification of a user read."""
    session.exec(
        update(Notification)
        .where(col(Notification.user_id) == user_id, col(Notification.is_read).is_(False))
        .values(is_read=True)
    )


# --- projections ---------------------------------------------------------------------------------


def get_contact(session: Session, user_id: int) -> Contact | None:
    """The contact projection of a user."""
    return session.get(Contact, user_id)


def contacts_by_user(session: Session, user_ids: Iterable[int]) -> dict[int, Contact]:
    """The contacts of several users in one query."""
    ids = sorted(set(user_ids))
    if not ids:
        return {}
    return {c.user_id: c for c in session.exec(select(Contact).where(col(Contact.user_id).in_(ids))).all()}


def get_pet_name(session: Session, pet_id: int) -> PetName | None:
    """The pet-name projection of a pet."""
    return session.get(PetName, pet_id)


def delete_pet_name(session: Session, pet_id: int) -> None:
    """Forget a pet's name."""
    session.exec(delete(PetName).where(col(PetName.pet_id) == pet_id))


def get_match_mail(session: Session, match_id: int) -> MatchMail | None:
    """What is known so far about a match's e-mail."""
    return session.get(MatchMail, match_id)


def get_chat_page(session: Session, *, conversation_id: str, user_id: int) -> ChatEmailPaging | None:
    """When a recipient was last paged about a conversation."""
    return session.get(ChatEmailPaging, (conversation_id, user_id))


def find_reply_tokens(session: Session, token_hashes: Sequence[str], *, now: datetime) -> dict[str, ReplyToken]:
    """The unexpired reply tokens among these hashes, by hash, in one query."""
    if not token_hashes:
        return {}
    query = select(ReplyToken).where(col(ReplyToken.token_hash).in_(set(token_hashes)), ReplyToken.expires_at > now)
    return {row.token_hash: row for row in session.exec(query).all()}


def delete_expired_reply_tokens(session: Session, *, user_id: int, now: datetime) -> None:
    """Drop a user's expired reply tokens."""
    session.exec(delete(ReplyToken).where(col(ReplyToken.user_id) == user_id, col(ReplyToken.expires_at) <= now))


# --- erasure -------------------------------------------------------------------------------------


def erase_user(session: Session, user_id: int) -> None:
    """Delete everything the notifier keeps about a user (user.deleted)."""
    alert_ids = select(AlertArea.id).where(AlertArea.user_id == user_id)
    session.exec(delete(AlertAreaCell).where(col(AlertAreaCell.alert_id).in_(alert_ids)))
    session.exec(delete(AlertArea).where(col(AlertArea.user_id) == user_id))
    session.exec(delete(Notification).where(col(Notification.user_id) == user_id))
    session.exec(delete(Contact).where(col(Contact.user_id) == user_id))
    session.exec(delete(PetName).where(col(PetName.owner_id) == user_id))
    session.exec(delete(ChatEmailPaging).where(col(ChatEmailPaging.user_id) == user_id))
    session.exec(delete(ReplyToken).where(col(ReplyToken.user_id) == user_id))
    session.exec(update(MatchMail).where(col(MatchMail.lost_user_id) == user_id).values(lost_user_id=None, name=None))
    # Pending mail to the user is dropped too: the address it would go to is personal data.
    session.exec(delete(EmailMessage).where(col(EmailMessage.user_id) == user_id))
