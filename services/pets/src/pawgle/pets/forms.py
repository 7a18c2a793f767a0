"""Reading a pet's fields from multipart strings (P2) or a JSON body (P3) under the shared text rule (D8)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from pawgle.common.errors import BadRequest
from pawgle.common.schemas import check_text
from pawgle.pets.schemas import MAX_ADDITIONAL_INFO_CHARS, additional_info

CATEGORIES = ("Domestic", "Wild", "Poultry", "Livestock")
REQUIRED = ("name", "category", "type", "breed")
MAX_TEXT = 100
_TRUE = {"true", "1", "yes", "on"}
_FALSE = {"false", "0", "no", "off", ""}


class FieldErrors(BadRequest):
    """400 naming each field and what is wrong with it: `{"detail": "...", "<field>": ["..."]}`."""

    def __init__(self, errors: dict[str, list[str]]) -> None:
        summary = "; ".join(f"{name}: {messages[0]}" for name, messages in errors.items())
        super().__init__(f"Invalid pet. {summary}", **errors)


class MissingFields(BadRequest):
    def __init__(self, names: list[str]) -> None:
        text = f"Missing required fields: {', '.join(names)}"
        super().__init__(text, error=text)


def _text(value: object, field: str, errors: dict[str, list[str]]) -> str | None:
    if not isinstance(value, str):
        errors[field] = ["Must be a string."]
        return None
    try:
        text = check_text(value)
    except ValueError as exc:
        errors[field] = [str(exc)]
        return None
    if not text:
        errors[field] = ["This field may not be blank."]
        return None
    if len(text) > MAX_TEXT:
        errors[field] = [f"At most {MAX_TEXT} characters ({len(text)} given)."]
        return None
    return text


def _category(value: object, errors: dict[str, list[str]]) -> str | None:
    wanted = value.strip().lower() if isinstance(value, str) else None
    for category in CATEGORIES:
        if category.lower() == wanted:
            return category
    errors["category"] = [f"Must be one of {', '.join(CATEGORIES)}."]
    return None


def _flag(value: object, errors: dict[str, list[str]]) -> bool | None:
    if isinstance(value, bool):
        return value
    if isinstance(value, str):
        word = value.strip().lower()
        if word in _TRUE:
            return True
        if word in _FALSE:
            return False
    errors["isPublic"] = ['Must be "true" or "false".']
    return None


def _info(value: object, errors: dict[str, list[str]]) -> dict[str, Any] | None:
    text = value if isinstance(value, str) else json.dumps(value)
    if len(text) > MAX_ADDITIONAL_INFO_CHARS:
        errors["additionalInfo"] = [f"At most {MAX_ADDITIONAL_INFO_CHARS // 1024} KB of JSON."]
        return None
    # Invalid JSON is read as {} (contract P2), then given its three keys.
    return additional_info(value)


def pet_fields(values: Mapping[str, object], *, partial: bool) -> dict[str, Any]:
    """The model fields a request sets (`partial`: only those sent), or a 400 saying what to fix."""
    if not partial:
        missing = [name for name in REQUIRED if not isinstance(values.get(name), str) or not values[name]]
        if missing:
            raise MissingFields(missing)
    errors: dict[str, list[str]] = {}
    changes: dict[str, Any] = {}
    for field in ("name", "type", "breed"):
        if values.get(field) is not None:
            changes[field] = _text(values[field], field, errors)
    if values.get("category") is not None:
        changes["category"] = _category(values["category"], errors)
    if values.get("isPublic") is not None:
        changes["is_public"] = _flag(values["isPublic"], errors)
    elif not partial:
        changes["is_public"] = False
    if values.get("additionalInfo") is not None:
        changes["additional_info"] = _info(values["additionalInfo"], errors)
    elif not partial:
        changes["additional_info"] = additional_info({})
    if errors:
        raise FieldErrors(errors)
    return changes
