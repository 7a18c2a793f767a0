from __future__ import annotations

import json

import pytest

from pawgle.common.events import decode_event, encode_event, new_event
from pawgle.common.events.envelope import _REGISTRY, _UPCASTERS, EventData, UnknownEventError, upcaster
from pawgle.common.events.users import UserRegistered
from pawgle.common.ids import new_ulid, ulid_time_ms


def test_envelope_round_trips_through_bytes() -> None:
    envelope = new_event(UserRegistered(user_id=7, display_name="Brave Otter", email="a@b.co"), producer="auth")
    decoded = decode_event(encode_event(envelope))
    assert decoded.id == envelope.id
    assert decoded.type == "user.registered"
    assert decoded.data == envelope.data


def test_event_ids_sort_by_creation_and_are_unique() -> None:
    ids = [new_ulid() for _ in range(5000)]
    assert ids == sorted(ids)
    assert len(set(ids)) == len(ids)
    assert abs(ulid_time_ms(ids[0]) - ulid_time_ms(ids[-1])) < 5000


@pytest.mark.parametrize(
    "raw",
    [b"not json", b"{}", json.dumps({"id": "x", "type": "nope.happened", "version": 1, "data": {}}).encode()],
)
def test_garbage_is_an_unknown_event(raw: bytes) -> None:
    with pytest.raises(UnknownEventError):
        decode_event(raw)


def test_a_payload_that_breaks_the_schema_is_an_unknown_event() -> None:
    doc = json.loads(
        encode_event(new_event(UserRegistered(user_id=1, display_name="x", email="e@x.io"), producer="auth"))
    )
    doc["data"]["user_id"] = "not-a-number"
    with pytest.raises(UnknownEventError):
        decode_event(json.dumps(doc))


def test_old_versions_are_upcast_to_the_current_one() -> None:
    class RenamedV2(EventData):
        event_type = "mesh.renamed_for_test"
        version = 2
        full_name: str

    _REGISTRY[RenamedV2.event_type] = RenamedV2
    try:
        upcaster(RenamedV2.event_type, 1)(lambda data: {"full_name": data["name"]})
        old = {
            "id": new_ulid(),
            "type": RenamedV2.event_type,
            "version": 1,
            "occurred_at": "2026-01-01T00:00:00Z",
            "producer": "test",
            "data": {"name": "Rex"},
        }
        decoded = decode_event(json.dumps(old))
        assert decoded.version == 2
        assert decoded.data.full_name == "Rex"  # type: ignore[attr-defined]
    finally:
        _REGISTRY.pop(RenamedV2.event_type)
        _UPCASTERS.pop((RenamedV2.event_type, 1), None)
