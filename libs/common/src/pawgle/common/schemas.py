"""Request and response bases and the field types every service's HTTP schemas share.

- `RequestModel`: strict JSON types (`true` is not a number, `"yes"` not a boolean, `"5"` not an integer),
  no NaN or infinity, unknown fields ignored (the web app sends more than a route reads).
- `ResponseModel`: built from ORM rows by attribute (`ResponseModel.model_validate(row)`).
- `Timestamp` (ISO-8601 UTC with microseconds and Z), `Latitude`, `Longitude` (contract 0.3).
- `SafeText`: the one text rule for every name, type, breed, label and display name (below).
- `EntityId`: an integer id in a path or a body, bounded to what a database can hold (below).
Every list in a request body carries `Field(max_length=...)`: a client never makes a handler loop over an
unbounded number of elements.
"""

from __future__ import annotations

import re
import unicodedata
from datetime import UTC, datetime
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, PlainSerializer, WithJsonSchema

# --- bases -----------------------------------------------------------------------------------------


class RequestModel(BaseModel):
    """A JSON request body: strict types, finite numbers, unknown fields ignored.

    Strict means JSON's own types only: a latitude must be a JSON number (an integer is a number, a
    boolean is not), a flag must be `true` or `false`, a string a string. A wrong type is a 400 that
    names the field, like every other validation error.
    """

    model_config = ConfigDict(strict=True, allow_inf_nan=False, extra="ignore")


class ResponseModel(BaseModel):
    """A response body, read from ORM rows (or any object) by attribute."""

    model_config = ConfigDict(from_attributes=True)


# --- timestamps and coordinates ---------------------------------------------------------------------


def format_timestamp(value: datetime) -> str:
    """ISO-8601 UTC with microseconds and Z (contract 0.3); naive values are UTC already."""
    if value.tzinfo is not None:
        value = value.astimezone(UTC).replace(tzinfo=None)
    return value.isoformat(timespec="microseconds") + "Z"  # what strftime(...%fZ) gives, at twice the speed


Timestamp = Annotated[datetime, PlainSerializer(format_timestamp, return_type=str, when_used="json")]
# Strict JSON has no datetime type: a timestamp in a request body is an ISO-8601 string.
TimestampInput = Annotated[datetime, Field(strict=False)]
Latitude = Annotated[float, Field(ge=-90, le=90, description="degrees, -90..90")]
Longitude = Annotated[float, Field(ge=-180, le=180, description="degrees, -180..180")]

# --- the text rule ----------------------------------------------------------------------------------

# Characters that let a value break out of an HTML attribute or text node, or a template literal: the web
# app renders names and labels through innerHTML in its map popups (contract D8).
_MARKUP = frozenset('<>"`')
# Format characters that are part of ordinary text: ZWNJ and ZWJ (Persian, Indic scripts and emoji
# sequences) and the tag characters of subdivision flag emoji. Every other format character (bidi
# embeddings, overrides and isolates, zero-width spaces, the BOM, soft hyphen, invisible operators) can
# reorder or hide what a reader sees, so it is refused.
_ALLOWED_FORMAT = frozenset({"\u200c", "\u200d"}) | frozenset(chr(c) for c in range(0xE0020, 0xE0080))
# Unicode categories refused outright: controls (C0, DEL and C1, e.g. U+0085, U+009B), lone surrogates
# (cannot be stored or encoded), line and paragraph separators (end a JavaScript string or a log line).
_REFUSED_CATEGORIES = frozenset({"Cc", "Cs", "Zl", "Zp"})
TEXT_RULE = 'must not contain <, >, ", ` or control or invisible formatting characters'
# Printable ASCII and Latin-1 to IPA: only markup and the soft hyphen (U+00AD, a format character) to look for.
_PLAIN = re.compile(r"[ -~\u00a0-\u02ff]*")


def unsafe_character(value: str) -> str | None:
    """The first character of `value` the text rule refuses, or None."""
    if _PLAIN.fullmatch(value):
        return next((char for char in value if char in _MARKUP or char == "\xad"), None)
    for char in value:
        if char in _MARKUP:
            return char
        category = unicodedata.category(char)
        if category in _REFUSED_CATEGORIES or (category == "Cf" and char not in _ALLOWED_FORMAT):
            return char
    return None


def check_text(value: str) -> str:
    """Trim `value` and refuse it if it breaks the text rule (a ValueError naming the character)."""
    value = value.strip()
    char = unsafe_character(value)
    if char is not None:
        raise ValueError(f"{TEXT_RULE} (found U+{ord(char):04X}).")
    return value


def _null_means_empty(value: Any) -> Any:
    return "" if value is None else value


SafeText = Annotated[str, AfterValidator(check_text)]
"""Trimmed text that passes the text rule; add `Field(max_length=...)` at the use."""
SafeTextOrEmpty = Annotated[
    # The schema says null is accepted, as it is (read as ""), so OpenAPI clients and fuzzers know.
    str,
    BeforeValidator(_null_means_empty, json_schema_input_type=str | None),
    AfterValidator(check_text),
]
"""Like SafeText, with JSON null read as the empty string (fields the web app may send as null)."""

# --- bounded ids ------------------------------------------------------------------------------------

MAX_ID = 2**63 - 1  # a signed 64-bit integer: what MySQL's BIGINT and SQLite's INTEGER can hold
UNKNOWN_ID = 0  # no row has it: SQLite and MySQL start counting at 1


def _within_id_range(value: int) -> int:
    # An id no database can hold names no row, so it is answered like any id that names no row: the
    # route's own 404 (or whatever an unknown id gets), never an overflow deep in the driver (a 500).
    return value if 1 <= value <= MAX_ID else UNKNOWN_ID


EntityId = Annotated[
    int,
    AfterValidator(_within_id_range),
    WithJsonSchema({"type": "integer", "minimum": 1, "maximum": MAX_ID}),
]
"""An integer id in a path or a request body; out of range (0, negative, 2^63 and more) matches nothing."""
