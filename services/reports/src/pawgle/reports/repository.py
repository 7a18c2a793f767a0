"""Every query of the reports service."""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import and_, bindparam, delete, func, null, or_, tuple_, update
from sqlalchemy.dialects.mysql import insert as mysql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import Row
from sqlmodel import Session, col, select

from pawgle.reports.grid import cells_in
from pawgle.reports.models import KnownPet, Report, ReportViewer

ACTIVE = ("lost", "found")
_COLUMNS = list(Report.__table__.c)


@dataclass(frozen=True)
class MapQuery:
    """Which active reports a map list asks for; the defaults are the contract's plain lists."""

    statuses: tuple[str, ...] = ACTIVE
    limit: int = 1000
    # west, south, east, north in degrees, on the public positions (never the exact ones).
    bbox: tuple[float, float, float, float] | None = None
    species: str | None = None
    # Continue after this (reported_at, id): the last report of the previous page.
    after: tuple[datetime, int] | None = None


# The default lists run on every map load: built once, with bound parameters.
_ACTIVE_LIST = (
    select(*_COLUMNS)
    .where(col(Report.status).in_(bindparam("statuses", expanding=True)), col(Report.expired_at).is_(None))
    .order_by(col(Report.reported_at).desc(), col(Report.id).desc())
    .limit(bindparam("limit"))
)
_CONVERSATION_REPORTS = select(ReportViewer.report_id).where(ReportViewer.user_id == bindparam("user_id"))


def active_reports(session: Session, query: MapQuery) -> Sequence[Row[Any]]:
    """Active, unexpired reports newest first, as read-only rows of every column."""
    if query.bbox is None and query.species is None and query.after is None:
        return (
            session.connection().execute(_ACTIVE_LIST, {"statuses": list(query.statuses), "limit": query.limit}).all()
        )
    statement, params = _map_statement("all", query)
    return session.connection().execute(statement, params).all()


def active_report_keys(session: Session, query: MapQuery) -> Sequence[Row[tuple[int, int, int | None]]]:
    """The (id, reporter_id, pet_owner_id) of the reports `query` lists, newest first.

    Unpacked as tuples, read through the session's connection, no timestamps: reading a thousand ORM rows' attributes
    or parsing their datetimes costs milliseconds.
    """
    statement, params = _map_statement("keys", query)
    return session.connection().execute(statement, params).all()


def reported_at_of(session: Session, report_id: int) -> datetime | None:
    return session.connection().execute(_REPORTED_AT, {"id": report_id}).scalar()


def reports_by_id(session: Session, ids: Sequence[int]) -> dict[int, Row[Any]]:
    """Every column of these reports, by id."""
    found: dict[int, Row[Any]] = {}
    connection = session.connection()
    for start in range(0, len(ids), 500):
        found.update((row.id, row) for row in connection.execute(_BY_IDS, {"ids": list(ids[start : start + 500])}))
    return found


# What a map list needs to know of each report before rendering it (all in the map-cell index).
_KEYS = [Report.id, Report.reporter_id, Report.pet_owner_id]
_REPORTED_AT_TYPE = Report.__table__.c.reported_at.type  # a cursor's time, bound as the column stores it
_REPORTED_AT = select(Report.reported_at).where(Report.id == bindparam("id"))
_BY_IDS = select(*_COLUMNS).where(col(Report.id).in_(bindparam("ids", expanding=True)))


def _map_statement(columns: str, query: MapQuery) -> tuple[Any, dict[str, Any]]:
    """The statement of a map query and its parameters; one statement per shape, built once.

    Building a SQLAlchemy statement (its comparisons, its cache key) cost more than SQLite takes to answer a
    district's query; the values (statuses, the box's cells, its corners, species, cursor) are bound.
    """
    params: dict[str, Any] = {"statuses": list(query.statuses), "limit": query.limit}
    box, cells = "none", None
    if query.bbox is not None:
        west, south, east, north = query.bbox
        box = "plain" if west <= east else "antimeridian"
        cells = cells_in(*query.bbox)  # None: too many cells for an index lookup (a continent)
        params.update(west=west, south=south, east=east, north=north)
        if cells is not None:
            params["cells"] = cells
    if query.species is not None:
        params["species"] = query.species.lower()
    if query.after is not None:
        params["after_at"], params["after_id"] = query.after
    shape = _map_shape(columns, box, cells is not None, query.species is not None, query.after is not None)
    return shape, params


@functools.cache
def _map_shape(columns: str, box: str, by_cells: bool, species: bool, after: bool) -> Any:
    not_expired = col(Report.expired_at).is_(None)
    if by_cells:
        # Wrapped so that no index on expired_at applies: the planner then reads the box's cells from the
        # map-cell index (which holds everything a list needs) instead of walking every report newest first.
        not_expired = func.coalesce(Report.expired_at, null()).is_(None)
    statement = select(*(_KEYS if columns == "keys" else _COLUMNS)).where(
        col(Report.status).in_(bindparam("statuses", expanding=True)), not_expired
    )
    if by_cells:
        statement = statement.where(col(Report.map_cell).in_(bindparam("cells", expanding=True)))
    if box != "none":
        statement = statement.where(col(Report.map_lat).between(bindparam("south"), bindparam("north")))
        if box == "plain":
            statement = statement.where(col(Report.map_lon).between(bindparam("west"), bindparam("east")))
        else:  # a box across the antimeridian
            statement = statement.where(
                or_(col(Report.map_lon) >= bindparam("west"), col(Report.map_lon) <= bindparam("east"))
            )
    if species:
        statement = statement.where(
            or_(
                func.lower(Report.pet_type) == bindparam("species"),
                and_(col(Report.pet_type).is_(None), func.lower(Report.type) == bindparam("species")),
            )
        )
    if after:
        statement = statement.where(
            tuple_(Report.reported_at, Report.id)
            < tuple_(bindparam("after_at", type_=_REPORTED_AT_TYPE), bindparam("after_id"))
        )
    return statement.order_by(col(Report.reported_at).desc(), col(Report.id).desc()).limit(bindparam("limit"))


def reports_of(session: Session, user_id: int, *, limit: int) -> Sequence[Row[Any]]:
    """Every report the user filed or that is linked to one of their pets, any status, newest first."""
    statement = (
        select(*_COLUMNS)
        .where(or_(Report.reporter_id == user_id, Report.pet_owner_id == user_id))
        .order_by(col(Report.reported_at).desc(), col(Report.id).desc())
        .limit(limit)
    )
    return session.execute(statement).all()


def conversation_reports(session: Session, user_id: int) -> set[int]:
    """The reports the user talks about in a conversation (Core, on the session's connection: a read per map list)."""
    return set(session.connection().execute(_CONVERSATION_REPORTS, {"user_id": user_id}).scalars())


def get_report(session: Session, report_id: int) -> Report | None:
    return session.get(Report, report_id)


def lock_report(session: Session, report_id: int) -> Report | None:
    """The report, locked for a status change (two changes in a row apply one after the other)."""
    return session.exec(select(Report).where(Report.id == report_id).with_for_update()).first()


# --- pets -------------------------------------------------------------------------------------------


def known_pet(session: Session, pet_id: int) -> KnownPet | None:
    return session.get(KnownPet, pet_id)


def matching_pet(session: Session, *, owner_id: int, name: str, type_: str, breed: str) -> KnownPet | None:
    """The owner's live pet with this name, type and breed (the oldest, as the original linked)."""
    statement = (
        select(KnownPet)
        .where(KnownPet.owner_id == owner_id, KnownPet.name == name, KnownPet.type == type_, KnownPet.breed == breed)
        .where(col(KnownPet.deleted).is_(False))
        .order_by(col(KnownPet.pet_id))
    )
    return session.exec(statement).first()


def reports_waiting_for(session: Session, pet: KnownPet) -> Sequence[Report]:
    """The owner's reports waiting for a pet of this name, type and breed."""
    statement = select(Report).where(
        Report.reporter_id == pet.owner_id,
        col(Report.wants_pet).is_(True),
        col(Report.pet_id).is_(None),
        Report.animal_name == pet.name,
        Report.type == pet.type,
        Report.breed == pet.breed,
    )
    return session.exec(statement.with_for_update()).all()


def lost_reports_of_pet(session: Session, pet_id: int) -> list[int]:
    """The pet's lost reports not resolved (expired ones too: the pet being home ends them as well)."""
    statement = select(Report.id).where(Report.pet_id == pet_id, Report.status == "lost").order_by(col(Report.id))
    return [i for i in session.exec(statement).all() if i is not None]


def reports_linked_to(session: Session, pet_id: int) -> Sequence[Report]:
    return session.exec(select(Report).where(Report.pet_id == pet_id).with_for_update()).all()


def user_reports(session: Session, user_id: int) -> Sequence[Report]:
    return session.exec(select(Report).where(Report.reporter_id == user_id).with_for_update()).all()


def add_viewers(session: Session, report_id: int, user_ids: Sequence[int]) -> None:
    """Record conversation participants of a report; ones already known are left as they are."""
    rows = [{"user_id": user_id, "report_id": report_id} for user_id in sorted(set(user_ids))]
    if not rows:
        return
    dialect = session.get_bind().dialect.name
    table = ReportViewer.__table__
    if dialect == "mysql":
        statement: Any = mysql_insert(table).prefix_with("IGNORE")
    else:
        statement = sqlite_insert(table).on_conflict_do_nothing()
    session.execute(statement, rows)


def forget_viewers(session: Session, *, user_id: int | None = None, report_ids: Sequence[int] = ()) -> None:
    """Drop viewer rows of a user, or of reports."""
    if user_id is not None:
        session.execute(delete(ReportViewer).where(col(ReportViewer.user_id) == user_id))
    if report_ids:
        session.execute(delete(ReportViewer).where(col(ReportViewer.report_id).in_(report_ids)))


# --- expiry ----------------------------------------------------------------------------------------


def due_ids(session: Session, *, now: datetime, limit: int) -> list[int]:
    """Active reports past their expiry, oldest first."""
    statement = (
        select(Report.id)
        .where(col(Report.expired_at).is_(None), col(Report.expires_at) <= now, col(Report.status).in_(ACTIVE))
        .order_by(col(Report.expires_at))
        .limit(limit)
    )
    return [i for i in session.exec(statement).all() if i is not None]


def expiring_ids(session: Session, *, now: datetime, notice_until: datetime, limit: int) -> list[int]:
    """Active reports expiring before `notice_until` whose reporter was not told yet."""
    statement = (
        select(Report.id)
        .where(col(Report.expired_at).is_(None), col(Report.expiring_sent_at).is_(None))
        .where(col(Report.expires_at) <= notice_until, col(Report.expires_at) > now, col(Report.status).in_(ACTIVE))
        .order_by(col(Report.expires_at))
        .limit(limit)
    )
    return [i for i in session.exec(statement).all() if i is not None]


def claim_expiry(session: Session, report_id: int, *, now: datetime) -> bool:
    """Mark one due report expired unless another replica did first (a conditional update: exactly once)."""
    result = session.execute(
        update(Report)
        .where(col(Report.id) == report_id, col(Report.expired_at).is_(None), col(Report.expires_at) <= now)
        .where(col(Report.status).in_(ACTIVE))
        .values(expired_at=now)
    )
    return result.rowcount == 1  # type: ignore[attr-defined]


def claim_expiring_notice(session: Session, report_id: int, *, now: datetime, notice_until: datetime) -> bool:
    """Mark a report's reporter as told about its expiry unless another replica did first."""
    result = session.execute(
        update(Report)
        .where(col(Report.id) == report_id, col(Report.expiring_sent_at).is_(None), col(Report.expired_at).is_(None))
        .where(col(Report.expires_at) <= notice_until)
        .values(expiring_sent_at=now)
    )
    return result.rowcount == 1  # type: ignore[attr-defined]
