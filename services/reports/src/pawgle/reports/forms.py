"""Reading a report from the web app's multipart strings (L5) under the shared rules; each refusal says what to fix."""

from __future__ import annotations

import dataclasses
import math
import re
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, time, timedelta

from pawgle.common.db import utcnow
from pawgle.common.errors import BadRequest, NotFound
from pawgle.common.schemas import MAX_ID, check_text

CATEGORIES = ("Domestic", "Wild", "Poultry", "Livestock")
MAX_NAME = 100
MAX_CONTACT_NAME = 100
MAX_PHONE = 40
MAX_EMAIL = 320
_DECIMAL = re.compile(r"[+-]?(\d+(\.\d*)?|\.\d+)")
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_TIME = re.compile(r"\d{2}:\d{2}(:\d{2})?")
_PHONE = re.compile(r"[0-9+()./ -]*")
_EMAIL = re.compile(r"[^@\s<>\"`]+@[^@\s<>\"`]+\.[^@\s<>\"`]+")
_TRUE = {"true", "1", "yes", "on"}
_FALSE = {"false", "0", "no", "off", ""}


class ReportFieldErrors(BadRequest):
    """400 naming each field and what to fix: `{"detail": "...", "<field>": ["..."]}` (the web app shows detail)."""

    def __init__(self, errors: dict[str, list[str]]) -> None:
        summary = "; ".join(f"{name}: {messages[0]}" for name, messages in errors.items())
        super().__init__(f"Invalid report. {summary}", **errors)


class PetNotFound(NotFound):
    def __init__(self) -> None:
        super().__init__("Pet not found or not owned by this user.")


@dataclass(frozen=True)
class ReportForm:
    """A valid report as filed: text trimmed and checked, numbers finite and in range, dates parsed."""

    animal_name: str
    category: str
    type: str
    breed: str
    status: str
    description: str
    latitude: float
    longitude: float
    contact_name: str
    contact_phone: str
    contact_email: str
    last_seen_date: date | None
    last_seen_time: time | None
    register_pet: bool
    pet_id: int | None


class _Collector:
    def __init__(self) -> None:
        self.errors: dict[str, list[str]] = {}

    def fail(self, field: str, message: str) -> None:
        self.errors.setdefault(field, []).append(message)


def _text(values: Mapping[str, str | None], field: str, errors: _Collector, *, required: bool, limit: int) -> str:
    raw = values.get(field)
    if raw is None or not raw.strip():
        if required:
            errors.fail(field, "This field is required.")
        return ""
    try:
        text = check_text(raw)
    except ValueError as exc:
        errors.fail(field, str(exc))
        return ""
    if len(text) > limit:
        errors.fail(field, f"At most {limit} characters ({len(text)} given).")
        return ""
    return text


def _coordinate(values: Mapping[str, str | None], field: str, bound: float, errors: _Collector) -> float:
    raw = (values.get(field) or "").strip()
    if not raw:
        errors.fail(field, "This field is required.")
        return 0.0
    # A plain decimal only: no NaN, no infinity, no exponent games.
    if len(raw) > 40 or not _DECIMAL.fullmatch(raw):
        errors.fail(field, f"Must be a decimal number of degrees between -{bound:g} and {bound:g}.")
        return 0.0
    value = float(raw)
    if not math.isfinite(value) or not -bound <= value <= bound:
        errors.fail(field, f"Must be between -{bound:g} and {bound:g} degrees ({raw} given).")
        return 0.0
    return value


def _category(values: Mapping[str, str | None], errors: _Collector) -> str:
    wanted = (values.get("category") or "").strip().lower()
    for category in CATEGORIES:
        if category.lower() == wanted:
            return category
    errors.fail("category", f"Choose a category: one of {', '.join(CATEGORIES)}.")
    return ""


def _status(values: Mapping[str, str | None], errors: _Collector) -> str:
    status = (values.get("status") or "").strip().lower()
    if status not in ("lost", "found"):
        errors.fail("status", "Must be 'lost' or 'found'.")
    return status


def _description(values: Mapping[str, str | None], limit: int, errors: _Collector) -> str:
    text = (values.get("description") or "").strip()
    if len(text) > limit:
        errors.fail("description", f"At most {limit} characters ({len(text)} given).")
        return ""
    # Line breaks and tabs are part of a description; other control characters are not.
    bad = next((c for c in text if c not in "\n\r\t" and unicodedata.category(c) in ("Cc", "Cs")), None)
    if bad is not None:
        errors.fail("description", f"must not contain control characters (found U+{ord(bad):04X}).")
        return ""
    return text


def _last_seen_date(values: Mapping[str, str | None], errors: _Collector) -> date | None:
    raw = (values.get("last_seen_date") or "").strip()
    if not raw:
        return None
    try:
        if not _DATE.fullmatch(raw):
            raise ValueError
        seen = date.fromisoformat(raw)
    except ValueError:
        errors.fail("last_seen_date", f"Must be a date YYYY-MM-DD ({raw[:40]!r} given).")
        return None
    # A day of slack for time zones ahead of UTC.
    if seen > (utcnow() + timedelta(days=1)).date():
        errors.fail("last_seen_date", "Must not be in the future.")
        return None
    if seen.year < 1990:
        errors.fail("last_seen_date", "Must be 1990 or later.")
        return None
    return seen


def _last_seen_time(values: Mapping[str, str | None], errors: _Collector) -> time | None:
    raw = (values.get("last_seen_time") or "").strip()
    if not raw:
        return None
    try:
        if not _TIME.fullmatch(raw):
            raise ValueError
        return time.fromisoformat(raw)
    except ValueError:
        errors.fail("last_seen_time", f"Must be a time HH:MM or HH:MM:SS ({raw[:40]!r} given).")
        return None


def _contact(values: Mapping[str, str | None], errors: _Collector) -> tuple[str, str, str]:
    name = _text(values, "contact_name", errors, required=False, limit=MAX_CONTACT_NAME)
    phone = (values.get("contact_phone") or "").strip()
    if len(phone) > MAX_PHONE or not _PHONE.fullmatch(phone):
        errors.fail("contact_phone", f"At most {MAX_PHONE} digits, spaces and + ( ) . / - characters.")
        phone = ""
    email = (values.get("contact_email") or "").strip()
    if email and (len(email) > MAX_EMAIL or not _EMAIL.fullmatch(email)):
        errors.fail("contact_email", "Enter a valid e-mail address, or leave it empty.")
        email = ""
    return name, phone, email


def _flag(values: Mapping[str, str | None], field: str, errors: _Collector) -> bool:
    word = (values.get(field) or "").strip().lower()
    if word in _TRUE:
        return True
    if word not in _FALSE:
        errors.fail(field, 'Must be "true" or "false".')
    return False


def _pet_id(values: Mapping[str, str | None]) -> int | None:
    raw = (values.get("pet_id") or "").strip()
    if not raw:
        return None
    # Anything that is not one of the caller's pets is the same 404, an id or not (no existence oracle).
    if not raw.isascii() or not raw.isdigit() or len(raw) > 19 or not 1 <= int(raw) <= MAX_ID:
        raise PetNotFound()
    return int(raw)


def report_form(values: Mapping[str, str | None], *, max_description: int) -> ReportForm:
    """The report in `values` (multipart strings, empty ones included), or one 400 listing every problem."""
    errors = _Collector()
    contact_name, contact_phone, contact_email = _contact(values, errors)
    form = ReportForm(
        animal_name=_text(values, "animal_name", errors, required=True, limit=MAX_NAME),
        category=_category(values, errors),
        type=_text(values, "type", errors, required=True, limit=MAX_NAME),
        breed=_text(values, "breed", errors, required=True, limit=MAX_NAME),
        status=_status(values, errors),
        description=_description(values, max_description, errors),
        latitude=_coordinate(values, "latitude", 90.0, errors),
        longitude=_coordinate(values, "longitude", 180.0, errors),
        contact_name=contact_name,
        contact_phone=contact_phone,
        contact_email=contact_email,
        last_seen_date=_last_seen_date(values, errors),
        last_seen_time=_last_seen_time(values, errors),
        register_pet=_flag(values, "register_pet", errors),
        pet_id=None,
    )
    if errors.errors:
        raise ReportFieldErrors(errors.errors)
    pet_id = _pet_id(values)
    return form if pet_id is None else dataclasses.replace(form, pet_id=pet_id)
