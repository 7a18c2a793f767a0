"""The cached map lists: byte for byte the direct rendering, and never stale across processes."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import orjson
import pytest
from pawgle_reports_test_factories import file_report, next_id

from pawgle.common.db import utcnow
from pawgle.common.events.chat import ConversationOpened
from pawgle.common.testing.service import RunningService, running_service
from pawgle.reports import repository, views
from pawgle.reports.config import Settings
from pawgle.reports.expiry import expire_once
from pawgle.reports.main import create_app
from pawgle.reports.models import Report
from pawgle.reports.query_options import map_query

L1 = "/api/auth/pets/locations/"


@pytest.fixture
def other_process(reports: RunningService) -> Iterator[RunningService]:
    """A second instance of the service on the same database (its own cache, as another worker process)."""
    settings = reports.settings
    assert isinstance(settings, Settings)
    with running_service(create_app(settings), settings, tokens=reports.tokens, purge=False) as running:
        yield running


def _get(service: RunningService, user_id: int, path: str = L1, **params: str) -> bytes:
    response = service.client.get(path, params=params, headers=service.headers(user_id))
    assert response.status_code == 200, response.text
    return response.content


def _ids(service: RunningService, user_id: int, path: str = L1, **params: str) -> list[int]:
    return [row["id"] for row in orjson.loads(_get(service, user_id, path, **params))]


def _direct(reports: RunningService, user_id: int, **params: str | None) -> bytes:
    """The list rendered without any cache, as the service did before it had one."""
    options = {"bbox": None, "status": None, "species": None, "limit": None, "cursor": None, **params}
    query = map_query(statuses=("lost", "found"), cap=1000, **options)
    blobs = reports.app.state.blobs
    with reports.session() as session:
        viewer = views.Viewer(user_id, repository.conversation_reports(session, user_id))
        rows = repository.active_reports(session, query)
        return orjson.dumps([views.location(r, viewer=viewer, url=blobs.url) for r in rows])


def test_cached_lists_are_byte_for_byte_the_direct_rendering_for_each_viewer(reports: RunningService) -> None:
    owner, talker, stranger = next_id(), next_id(), next_id()
    mine = file_report(reports, owner, status="lost", latitude=52.52, longitude=13.40)
    for n in range(5):
        file_report(reports, next_id(), status=("lost", "found")[n % 2], latitude=52.5 + n / 100, longitude=13.41)
    reports.publish(
        ConversationOpened(
            conversation_id=str(next_id()), report_id=mine["id"], participant_ids=[owner, talker], match_id=next_id()
        )
    )
    reports.wait_until_handled("conversation.opened")
    box = "13.3,52.4,13.5,52.6"
    for user in (owner, talker, stranger):
        for _ in range(2):  # the first fills the cache, the second reads it
            assert _get(reports, user) == _direct(reports, user)
            assert _get(reports, user, bbox=box) == _direct(reports, user, bbox=box)
            assert _get(reports, user, bbox=box, limit="2") == _direct(reports, user, bbox=box, limit="2")
    # Only the owner and the conversation participant see the exact place.
    exact = {
        u: next(r["latitude"] for r in orjson.loads(_get(reports, u, bbox=box)) if r["id"] == mine["id"])
        for u in (owner, talker, stranger)
    }
    assert exact[owner] == exact[talker] == 52.52
    assert exact[stranger] != 52.52


def test_a_change_made_through_another_process_shows_at_once(
    reports: RunningService, other_process: RunningService
) -> None:
    reporter, viewer = next_id(), next_id()
    first = file_report(reports, reporter, status="lost")["id"]
    box = "13.3,52.4,13.5,52.6"
    assert _ids(reports, viewer) == _ids(other_process, viewer) == [first]
    assert _ids(other_process, viewer, bbox=box) == [first]
    # Filed through the other process: seen here at once, in the default list, L2 and a box.
    second = file_report(other_process, reporter, status="lost")["id"]
    assert _ids(reports, viewer) == [second, first]
    assert _ids(reports, viewer, "/api/auth/pets/lost/locations/") == [second, first]
    assert _ids(reports, viewer, bbox=box) == [second, first]
    # Resolved here: gone there.
    response = reports.client.post(
        f"/api/auth/pets/locations/{first}/status/", json={"status": "resolved"}, headers=reports.headers(reporter)
    )
    assert response.status_code == 200, response.text
    assert _ids(other_process, viewer) == [second]
    assert _ids(other_process, viewer, bbox=box) == [second]
    # Expired by the job (a bulk conditional update): gone from both.
    with reports.session() as session:
        report = session.get(Report, second)
        assert report is not None
        report.expires_at = utcnow() - timedelta(seconds=1)
        session.add(report)
        session.commit()
    settings = reports.settings
    assert isinstance(settings, Settings)
    expire_once(reports.engine, settings)
    assert _ids(reports, viewer) == _ids(other_process, viewer) == []
    assert _ids(other_process, viewer, bbox=box) == []
    # X2 follows too.
    third = file_report(reports, reporter, status="lost")["id"]
    assert [row["id"] for row in orjson.loads(_get(other_process, viewer, "/api/lost_pets/"))] == [third]
