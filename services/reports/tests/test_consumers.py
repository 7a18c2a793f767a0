"""What pet.*, conversation.opened and user.deleted do to reports; linking survives the pets service being down."""

from __future__ import annotations

from pawgle_reports_test_factories import events, file_report, locations, next_id, pet_created, photo_jpeg, wait_for
from sqlmodel import select

from pawgle.common.events.auth import UserDeleted
from pawgle.common.events.envelope import new_event
from pawgle.common.events.pets import PetDeleted, PetUpdated
from pawgle.common.testing.service import RunningService
from pawgle.reports.models import Report

MINE = "/api/auth/user/pet-locations/"


def _report(reports: RunningService, report_id: int) -> Report | None:
    with reports.session() as session:
        return session.get(Report, report_id)


def test_a_lost_report_filed_while_pets_is_down_is_linked_once_pets_answers(reports: RunningService) -> None:
    owner = next_id()
    body = file_report(reports, owner, status="lost")
    # Accepted at once, waiting for the pets service (nothing consumes report.filed in this test: it is down).
    assert body["pet"] is None
    (filed,) = events(reports, "report.filed")
    assert filed["wants_pet"] is True
    assert filed["pet_id"] is None
    # The pets service comes back, creates the pet from report.filed and announces it.
    created = pet_created(owner, name=filed["animal_name"], type=filed["type"], breed=filed["breed"])
    envelope = new_event(created, producer="pets")
    reports.publish(created, envelope=envelope)
    wait_for(lambda: (r := _report(reports, body["id"])) is not None and r.pet_id == created.pet_id)
    (mine,) = locations(reports, owner, MINE)
    assert mine["pet"] == created.pet_id
    # A redelivered pet.created (same event, new message id) links nothing twice.
    reports.publish(created, envelope=envelope, msg_id="redelivered-1")
    reports.wait_until_handled("pet.created")
    assert [e["report_id"] for e in events(reports, "report.updated")] == [body["id"]]
    assert events(reports, "report.updated")[0]["pet_id"] == created.pet_id


def test_a_lost_report_links_the_known_pet_of_the_same_name_type_and_breed_at_once(reports: RunningService) -> None:
    owner = next_id()
    created = pet_created(owner)
    reports.publish(created)
    reports.wait_until_handled("pet.created")
    body = file_report(reports, owner, status="lost")
    assert body["pet"] == created.pet_id
    (filed,) = events(reports, "report.filed")
    assert filed["wants_pet"] is False
    assert filed["pet_owner_id"] == owner


def test_a_found_report_wants_a_pet_only_with_register_pet(reports: RunningService) -> None:
    file_report(reports, next_id(), status="found")
    file_report(reports, next_id(), status="found", register_pet="true")
    assert [e["wants_pet"] for e in events(reports, "report.filed")] == [False, True]


def test_a_renamed_pet_is_shown_with_its_new_name_and_a_deleted_one_leaves_the_report_unlinked(
    reports: RunningService,
) -> None:
    owner, stranger = next_id(), next_id()
    created = pet_created(owner)
    reports.publish(created)
    reports.wait_until_handled("pet.created")
    body = file_report(reports, owner, status="lost")
    reports.publish(
        PetUpdated(pet_id=created.pet_id, owner_id=owner, name="Rexy", type="Dogs", breed="Beagle", category="Domestic")
    )
    wait_for(lambda: locations(reports, stranger)[0]["animal_name"] == "Rexy")
    reports.publish(PetDeleted(pet_id=created.pet_id, owner_id=owner))
    wait_for(lambda: (r := _report(reports, body["id"])) is not None and r.pet_id is None)
    (row,) = locations(reports, owner, MINE)
    assert row["pet"] is None
    assert row["animal_name"] == "Rex"
    # A late pet.updated of the deleted pet does not bring it back.
    reports.publish(
        PetUpdated(
            pet_id=created.pet_id, owner_id=owner, name="Ghost", type="Dogs", breed="Beagle", category="Domestic"
        )
    )
    reports.wait_until_handled("pet.updated")
    assert locations(reports, owner, MINE)[0]["animal_name"] == "Rex"


def test_a_deleted_user_s_reports_and_photos_are_erased_and_others_stay(reports: RunningService) -> None:
    leaving, staying = next_id(), next_id()
    gone = file_report(reports, leaving, status="lost", photo=photo_jpeg())
    kept = file_report(reports, staying, status="found")
    image_key = events(reports, "report.filed")[0]["image_key"]
    blobs = reports.app.state.blobs
    assert blobs.exists(image_key)
    reports.publish(UserDeleted(user_id=leaving))
    wait_for(lambda: _report(reports, gone["id"]) is None)
    assert _report(reports, kept["id"]) is not None
    assert not blobs.exists(image_key)
    assert [e["report_id"] for e in events(reports, "report.erased")] == [gone["id"]]
    # (Their tokens stop working too: the shared revocation list learns user.deleted.)
    with reports.session() as session:
        assert session.exec(select(Report).where(Report.reporter_id == leaving)).all() == []
