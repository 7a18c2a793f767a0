"""The event catalog: a JSON-schema snapshot per (type, version) kept in the repository.

An event's schema may only grow compatibly (a new optional field) within a version; anything else needs
a version bump and an `upcast_from_v<N>` on the class. Regenerate the snapshots after a deliberate,
compatible change or a bump: `PAWGLE_UPDATE_EVENT_CATALOG=1 .venv/bin/python -m pytest <this file>`.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from pawgle.common.events.envelope import EventData, registered_types

CATALOG = Path(__file__).with_name("event_catalog")
UPDATE = os.environ.get("PAWGLE_UPDATE_EVENT_CATALOG") == "1"
TEST_ONLY_PREFIX = "mesh.renamed_for_test"


def current_events() -> dict[str, type[EventData]]:
    return {t: m for t, m in sorted(registered_types().items()) if not t.startswith(TEST_ONLY_PREFIX)}


def snapshot_path(event_type: str, version: int) -> Path:
    return CATALOG / f"{event_type}.v{version}.json"


def schema_of(model: type[EventData]) -> dict[str, Any]:
    return model.model_json_schema()


def incompatibilities(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    """Why a payload valid under `new` could break a consumer built for `old`, or the reverse."""
    problems = []
    old_props, new_props = old.get("properties", {}), new.get("properties", {})
    for name, prop in old_props.items():
        if name not in new_props:
            problems.append(f"field {name!r} removed")
        elif new_props[name] != prop:
            problems.append(f"field {name!r} changed: {prop} -> {new_props[name]}")
    for name in set(new.get("required", [])) - set(old.get("required", [])):
        problems.append(f"field {name!r} is required now")
    for name, definition in old.get("$defs", {}).items():
        if new.get("$defs", {}).get(name) != definition:
            problems.append(f"nested model {name!r} changed")
    return problems


@pytest.mark.parametrize("event_type", list(current_events()))
def test_every_event_matches_its_snapshot_or_grew_compatibly(event_type: str) -> None:
    model = current_events()[event_type]
    path = snapshot_path(event_type, model.version)
    schema = schema_of(model)
    if UPDATE:
        CATALOG.mkdir(exist_ok=True)
        path.write_text(json.dumps(schema, indent=2, sort_keys=True) + "\n")
    assert path.exists(), (
        f"no snapshot for {event_type} v{model.version}: a new event or version. "
        "Run with PAWGLE_UPDATE_EVENT_CATALOG=1 to record it."
    )
    snapshot = json.loads(path.read_text())
    if snapshot == schema:
        return
    problems = incompatibilities(snapshot, schema)
    assert not problems, (
        f"{event_type} changed incompatibly without a version bump ({'; '.join(problems)}). "
        f"Set version = {model.version + 1}, add upcast_from_v{model.version} to {model.__name__}, "
        "and record the new snapshot."
    )
    pytest.fail(f"{event_type} grew compatibly: record the snapshot with PAWGLE_UPDATE_EVENT_CATALOG=1")


@pytest.mark.parametrize("event_type", list(current_events()))
def test_every_version_above_one_has_its_snapshot_and_upcaster_chain(event_type: str) -> None:
    model = current_events()[event_type]
    for version in range(1, model.version):
        assert snapshot_path(event_type, version).exists(), f"the snapshot of {event_type} v{version} was deleted"
        assert model.upcaster_from(version) is not None, f"{model.__name__} lacks upcast_from_v{version}"


def test_every_snapshot_belongs_to_a_known_event_version() -> None:
    known = {(t, v) for t, m in current_events().items() for v in range(1, m.version + 1)}
    for path in CATALOG.glob("*.json"):
        event_type, _, version = path.stem.rpartition(".v")
        assert (event_type, int(version)) in known, f"{path.name}: no such event version (renamed or removed?)"


def test_the_checker_refuses_a_removed_field_and_a_new_required_one() -> None:
    class Before(EventData):
        event_type = "mesh.checker_before"
        name: str
        size: int = 0

    class AddsOptional(EventData):
        event_type = "mesh.checker_before"
        name: str
        size: int = 0
        colour: str | None = None

    class RemovesAndRequires(EventData):
        event_type = "mesh.checker_before"
        size: int = 0
        colour: str

    assert incompatibilities(schema_of(Before), schema_of(AddsOptional)) == []
    problems = incompatibilities(schema_of(Before), schema_of(RemovesAndRequires))
    assert "field 'name' removed" in problems
    assert "field 'colour' is required now" in problems
