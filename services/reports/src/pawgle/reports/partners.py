"""Partner feeds: shelters push found animals (JSON or CSV); each row becomes, or updates, a found report.

Idempotent by (partner, external id): re-sending a feed updates the reports it made before. Each row is
checked on its own and refused with its row number and what to fix; the valid rows are imported. New
reports go through the same report.filed path as the web app's, so they alert and match alike.
"""

from __future__ import annotations

import csv
import hashlib
import io
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlmodel import Session, col, select

from pawgle.common.db import save, utcnow
from pawgle.common.errors import AppError, BadRequest, Unauthorized
from pawgle.common.events.reports import ReportUpdated
from pawgle.common.photos import StoredPhoto, thumbnail_key_for
from pawgle.reports import service
from pawgle.reports.config import Settings
from pawgle.reports.forms import ReportFieldErrors, ReportForm, report_form
from pawgle.reports.models import Partner, PartnerRow, Report
from pawgle.reports.privacy import public_position

COLUMNS = ("external_id", "species", "breed", "description", "photo_url", "latitude", "longitude", "found_date")
OPTIONAL_COLUMNS = ("name", "category")
KEY_PREFIX = "pgp_"
MAX_EXTERNAL_ID = 100
MAX_CSV_BYTES = 20 * 1024 * 1024


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def new_key() -> str:
    """A fresh partner API key (shown once to the operator; only its hash is stored)."""
    return KEY_PREFIX + secrets.token_urlsafe(32)


def authenticate(session: Session, key: str | None) -> Partner:
    """The partner holding this key, or 401."""
    if not key or not key.startswith(KEY_PREFIX) or len(key) > 200:
        raise Unauthorized("A valid partner key is required in the X-Partner-Key header.")
    partner = session.exec(select(Partner).where(Partner.key_hash == hash_key(key))).first()
    if partner is None or partner.revoked:
        raise Unauthorized("A valid partner key is required in the X-Partner-Key header.")
    return partner


@dataclass
class FeedRow:
    """One valid row: where it came from, the report it describes and its photo URL."""

    number: int
    external_id: str
    form: ReportForm
    photo_url: str
    photo: StoredPhoto | None = None


@dataclass
class FeedResult:
    """What a feed did, row by row."""

    created: int = 0
    updated: int = 0
    unchanged: int = 0
    errors: list[dict[str, Any]] = field(default_factory=list)

    def refuse(self, number: int, external_id: str | None, detail: str) -> None:
        self.errors.append({"row": number, "external_id": external_id, "detail": detail})

    def body(self) -> dict[str, Any]:
        accepted = self.created + self.updated + self.unchanged
        return {
            "accepted": accepted,
            "created": self.created,
            "updated": self.updated,
            "unchanged": self.unchanged,
            "refused": len(self.errors),
            "errors": self.errors,
        }


def rows_from_csv(raw: bytes) -> list[dict[str, str]]:
    """The CSV's data rows as dicts (header names lower-cased); a 400 if it is not a CSV with our header."""
    if len(raw) > MAX_CSV_BYTES:
        raise BadRequest(f"The CSV is larger than {MAX_CSV_BYTES // (1024 * 1024)} MB; split it.")
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise BadRequest("The CSV must be UTF-8 text.") from None
    reader = csv.DictReader(io.StringIO(text))
    header = [name.strip().lower() for name in reader.fieldnames or []]
    missing = [name for name in COLUMNS if name not in header]
    if missing:
        raise BadRequest(f"The CSV header lacks: {', '.join(missing)} (columns: {', '.join(COLUMNS)}).")
    reader.fieldnames = header
    try:
        return [{k: (v or "") for k, v in row.items() if isinstance(k, str)} for row in reader]
    except csv.Error as exc:
        raise BadRequest(f"The CSV could not be read: {exc}.") from None


def check_rows(
    rows: Sequence[Mapping[str, Any]], *, settings: Settings, first_number: int = 1
) -> tuple[list[FeedRow], FeedResult]:
    """Validate each row on its own: the valid ones, and a result holding the refusals by row number."""
    if len(rows) > settings.partner_max_rows:
        raise BadRequest(f"At most {settings.partner_max_rows} rows per request ({len(rows)} sent); split the feed.")
    result = FeedResult()
    valid: list[FeedRow] = []
    seen: set[str] = set()
    for offset, row in enumerate(rows):
        number = first_number + offset
        if not isinstance(row, Mapping):
            result.refuse(number, None, "Each row must be an object.")
            continue
        values = {k: (v if isinstance(v, str) else "" if v is None else str(v)) for k, v in row.items()}
        external_id = values.get("external_id", "").strip()
        if not external_id or len(external_id) > MAX_EXTERNAL_ID:
            result.refuse(
                number, external_id or None, f"external_id is required (at most {MAX_EXTERNAL_ID} characters)."
            )
            continue
        if external_id in seen:
            result.refuse(number, external_id, "external_id appears twice in this feed; send each animal once.")
            continue
        photo_url = values.get("photo_url", "").strip()
        if len(photo_url) > 2000:
            result.refuse(number, external_id, "photo_url is longer than 2000 characters.")
            continue
        try:
            form = report_form(
                {
                    "animal_name": values.get("name") or "Unknown",
                    "category": values.get("category") or "Domestic",
                    "type": values.get("species"),
                    "breed": values.get("breed"),
                    "status": "found",
                    "description": values.get("description"),
                    "latitude": values.get("latitude"),
                    "longitude": values.get("longitude"),
                    "last_seen_date": values.get("found_date"),
                },
                max_description=settings.max_description_chars,
            )
        except ReportFieldErrors as exc:
            result.refuse(
                number,
                external_id,
                exc.detail.removeprefix("Invalid report. ")
                .replace("type:", "species:")
                .replace("last_seen_date:", "found_date:"),
            )
            continue
        except AppError as exc:
            result.refuse(number, external_id, exc.detail)
            continue
        seen.add(external_id)
        valid.append(FeedRow(number, external_id, form, photo_url))
    return valid, result


def _differs(report: Report, form: ReportForm) -> bool:
    return (
        report.type,
        report.breed,
        report.description,
        report.latitude,
        report.longitude,
        report.last_seen_date,
        report.animal_name,
        report.category,
    ) != (
        form.type,
        form.breed,
        form.description,
        form.latitude,
        form.longitude,
        form.last_seen_date,
        form.animal_name,
        form.category,
    )


def known_rows(session: Session, partner_id: int, external_ids: Sequence[str]) -> dict[str, PartnerRow]:
    """The rows of this partner already imported, by external id."""
    found: dict[str, PartnerRow] = {}
    ids = list(external_ids)
    for start in range(0, len(ids), 500):
        statement = select(PartnerRow).where(
            PartnerRow.partner_id == partner_id, col(PartnerRow.external_id).in_(ids[start : start + 500])
        )
        found.update({row.external_id: row for row in session.exec(statement)})
    return found


def import_rows(
    *, session: Session, partner: Partner, rows: Sequence[FeedRow], result: FeedResult, settings: Settings
) -> list[StoredPhoto]:
    """Create or update one found report per row; returns photos no longer used (to delete after commit)."""
    assert partner.id is not None
    existing = known_rows(session, partner.id, [row.external_id for row in rows])
    replaced: list[StoredPhoto] = []
    new: list[tuple[FeedRow, Report, PartnerRow | None]] = []
    for row in rows:
        link = existing.get(row.external_id)
        report = session.get(Report, link.report_id) if link is not None else None
        if link is None or report is None:
            report = service.new_report(
                session=session,
                reporter_id=partner.user_id,
                form=row.form,
                photo=row.photo,
                settings=settings,
                partner_id=partner.id,
            )
            new.append((row, report, link))  # a link without its report: the report was erased since
            continue
        photo_changed = row.photo is not None
        if not _differs(report, row.form) and not photo_changed:
            result.unchanged += 1
            continue
        form = row.form
        report.type, report.breed, report.description = form.type, form.breed, form.description
        report.animal_name, report.category, report.last_seen_date = (
            form.animal_name,
            form.category,
            form.last_seen_date,
        )
        report.latitude, report.longitude = form.latitude, form.longitude
        report.map_lat, report.map_lon = public_position(
            report.status, form.latitude, form.longitude, cell_m=settings.privacy_cell_m
        )
        if row.photo is not None:
            if report.image_key:
                replaced.append(StoredPhoto(report.image_key, thumbnail_key_for(report.image_key), "", 0, 0))
            report.image_key = row.photo.key
            report.feature_status, report.photo_changed_at = "pending", utcnow()
        link.photo_url, link.updated_at = row.photo_url, utcnow()
        save(session, report)
        save(session, link)
        service.publish(session, ReportUpdated, report)
        result.updated += 1
    # New reports inserted together (one multi-row statement, ids returned), then announced.
    session.add_all([report for _, report, _ in new])
    session.flush()
    for row, report, link in new:
        assert report.id is not None
        service.announce_filed(session, report)
        if link is None:
            link = PartnerRow(partner_id=partner.id, external_id=row.external_id, report_id=0)
        link.report_id, link.photo_url, link.updated_at = report.id, row.photo_url, utcnow()
        session.add(link)
        result.created += 1
    return replaced
