from __future__ import annotations

import json
from typing import Any

import pytest

from pawgle.common.events import decode_event, encode_event, new_event
from pawgle.common.events.auth import UserRegistered
from pawgle.common.events.envelope import _REGISTRY, EventData, UnknownEventError, event_model
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


def test_old_versions_are_upcast_to_the_current_one_by_the_chain_on_the_class() -> None:
    class RenamedV3(EventData):
        event_type = "mesh.renamed_for_test"
        version = 3
        full_name: str
        nickname: str

        @staticmethod
        def upcast_from_v1(data: dict[str, Any]) -> dict[str, Any]:
            return {"full_name": data["name"]}

        @staticmethod
        def upcast_from_v2(data: dict[str, Any]) -> dict[str, Any]:
            return {**data, "nickname": data["full_name"][:2]}

    event_model(RenamedV3)
    try:
        old = {
            "id": new_ulid(),
            "type": RenamedV3.event_type,
            "version": 1,
            "occurred_at": "2026-01-01T00:00:00Z",
            "producer": "test",
            "data": {"name": "Rex"},
        }
        decoded = decode_event(json.dumps(old))
        assert decoded.version == 3
        assert decoded.data == RenamedV3(full_name="Rex", nickname="Re")
    finally:
        _REGISTRY.pop(RenamedV3.event_type)


def test_a_version_without_its_upcaster_is_refused_when_the_class_is_declared() -> None:
    class BumpedWithoutUpcaster(EventData):
        event_type = "mesh.bumped_for_test"
        version = 2

    with pytest.raises(TypeError, match="upcast_from_v1"):
        event_model(BumpedWithoutUpcaster)
    assert BumpedWithoutUpcaster.event_type not in _REGISTRY


def test_a_newer_version_than_the_consumer_knows_is_an_unknown_event() -> None:
    doc = json.loads(encode_event(new_event(UserRegistered(user_id=1, display_name="x", email="e@x.io"), producer="a")))
    doc["version"] = 2
    with pytest.raises(UnknownEventError, match="newer"):
        decode_event(json.dumps(doc))
