"""The shared request types: the text rule, bounded ids, strict JSON types, timestamps."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Annotated

import pytest
from pydantic import Field, ValidationError

from pawgle.common.schemas import (
    MAX_ID,
    UNKNOWN_ID,
    EntityId,
    Latitude,
    RequestModel,
    ResponseModel,
    SafeText,
    Timestamp,
    TimestampInput,
    check_text,
    unsafe_character,
)

C1_AND_FORMAT = ["\u0085", "\u009b", "\u0080", "\u009f", "\u00ad", "\u061c", "\u200b", "\u200e", "\u200f", "\u2060"]
BIDI = [chr(c) for c in [*range(0x202A, 0x202F), *range(0x2066, 0x206A)]]
C0 = [chr(c) for c in [*range(0x00, 0x20), 0x7F]]


@pytest.mark.parametrize("char", [*C0, *C1_AND_FORMAT, *BIDI, "\ufeff", "\u2028", "\u2029", "<", ">", '"', "`"])
def test_the_text_rule_refuses_markup_controls_and_invisible_formatting(char: str) -> None:
    assert unsafe_character(f"Rex{char}y") == char
    with pytest.raises(ValueError, match=f"U\\+{ord(char):04X}"):
        check_text(f"Rex{char}y")


@pytest.mark.parametrize(
    "text",
    ["Dwarf Campbell\u2019s", "European (Wild)", "N/A", "Mr. Whiskers-Smith", "Zoë", "Ñandú", "Тузик", "小白", "دانة"],
)
def test_the_text_rule_keeps_ordinary_names(text: str) -> None:
    assert check_text(f"  {text} ") == text


SCOTLAND = "🏴\U000e0067\U000e0062\U000e0073\U000e0063\U000e0074\U000e007f"


@pytest.mark.parametrize("text", ["👩\u200d💻", "می\u200cخواهم", SCOTLAND])
def test_the_text_rule_keeps_joiners_and_flag_tags(text: str) -> None:
    assert check_text(text) == text


class Body(RequestModel):
    pet_id: EntityId
    name: Annotated[SafeText, Field(max_length=10)] = ""
    lat: Latitude = 0.0
    lost: bool = False
    seen_at: TimestampInput | None = None


@pytest.mark.parametrize("value", [MAX_ID + 1, 2**64, 10**30, 0, -1])
def test_an_id_out_of_range_names_no_row(value: int) -> None:
    assert Body.model_validate({"pet_id": value}).pet_id == UNKNOWN_ID


@pytest.mark.parametrize("value", [1, 42, MAX_ID])
def test_an_id_in_range_is_kept(value: int) -> None:
    assert Body.model_validate({"pet_id": value}).pet_id == value


@pytest.mark.parametrize(
    ("field", "value"),
    [("pet_id", True), ("pet_id", "7"), ("pet_id", 7.0), ("lat", True), ("lat", "1"), ("lost", "yes")],
)
def test_json_types_are_strict(field: str, value: object) -> None:
    with pytest.raises(ValidationError) as caught:
        Body.model_validate_json(json.dumps({"pet_id": 1, field: value}))
    assert caught.value.errors()[0]["loc"] == (field,)


def test_numbers_must_be_finite_and_timestamps_are_iso_strings() -> None:
    with pytest.raises(ValidationError):
        Body.model_validate({"pet_id": 1, "lat": float("nan")})
    body = Body.model_validate_json('{"pet_id": 1, "lat": 5, "seen_at": "2026-01-02T03:04:05Z", "extra": 1}')
    assert body.lat == 5.0
    assert body.seen_at == datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)


class Row:
    created_at = datetime(2026, 1, 2, 3, 4, 5, 6)


class Read(ResponseModel):
    created_at: Timestamp


def test_responses_read_attributes_and_print_utc_microseconds() -> None:
    assert Read.model_validate(Row()).model_dump(mode="json") == {"created_at": "2026-01-02T03:04:05.000006Z"}
