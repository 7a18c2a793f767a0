"""Events published on a real NATS JetStream reach the running notifier; e-mail goes to a local Resend."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from pawgle_notifier_test_factories import create_alert, in_minutes, next_id, report_filed, user_registered, wait_for
from sqlmodel import Session, func, select

from pawgle.common.bus.replay import replay
from pawgle.common.events.auth import MagicLinkRequested, UserDeleted
from pawgle.common.events.chat import ConversationOpened, MessageSent
from pawgle.common.events.embeddings import EmbeddingFailed, PetEmbedded
from pawgle.common.events.matcher import MatchFound
from pawgle.common.events.pets import PetCreated
from pawgle.common.events.reports import ReportExpired, ReportExpiring
from pawgle.notifier.consumers import handlers
from pawgle.notifier.models import AlertArea, Contact, EmailMessage, Notification, PetName


def rows(notifier, model, **where) -> list:
    with Session(notifier.engine) as session:
        query = select(model)
        for name, value in where.items():
            query = query.where(getattr(model, name) == value)
        return list(session.exec(query).all())


def sign_up(notifier, user_id: int) -> str:
    """Publish user.registered and wait until the contact projection has it; returns the address."""
    notifier.publish(user_registered(user_id))
    wait_for(lambda: rows(notifier, Contact, user_id=user_id))
    return f"user{user_id}@example.org"


def watcher(notifier, **area) -> tuple[int, str]:
    user = next_id()
    with notifier.session() as session:
        create_alert(session, user_id=user, **area)
        session.commit()
    return user, sign_up(notifier, user)


def all_sent(notifier, n: int) -> bool:
    return len(rows(notifier, EmailMessage, status="sent")) == n


@pytest.mark.parametrize("image_key", [None, "reports/abc.jpg"])
def test_a_report_inside_two_areas_notifies_exactly_those_two_once_even_when_delivered_twice(
    notifier, fake_resend, image_key
) -> None:
    near, near_address = watcher(notifier, radius_km=3)
    wide, wide_address = watcher(notifier, center_lat=48.95, center_lon=2.45, radius_km=20)
    far, _ = watcher(notifier, center_lat=48.70, center_lon=2.90, radius_km=10)
    report = report_filed(image_key=image_key)
    envelope = notifier.publish(report)
    notifier.publish(report, envelope=envelope, msg_id=f"{envelope.id}-redelivered")  # past JetStream's dedupe
    wait_for(lambda: all_sent(notifier, 2))
    notifier.publish(report, envelope=envelope, msg_id=f"{envelope.id}-third")
    wait_for(lambda: notifier.drained("report.filed"))
    for user in (near, wide):
        (row,) = rows(notifier, Notification, user_id=user)
        assert row.verb == "nearby_alert"
        assert row.target_id == report.report_id
    assert rows(notifier, Notification, user_id=far) == []
    assert len(fake_resend.accepted_to(near_address)) == 1
    assert len(fake_resend.accepted_to(wide_address)) == 1
    assert len(fake_resend.accepted) == 2


def test_the_reporter_is_never_alerted_about_their_own_report(notifier, fake_resend) -> None:
    reporter, _ = watcher(notifier, radius_km=50)
    other, other_address = watcher(notifier, radius_km=50)
    notifier.publish(report_filed(reporter_id=reporter, status="found"))
    wait_for(lambda: rows(notifier, Notification, user_id=other))
    wait_for(lambda: all_sent(notifier, 1))
    assert rows(notifier, Notification, user_id=reporter) == []
    assert [r["json"]["to"] for r in fake_resend.accepted] == [[other_address]]


def test_a_resend_outage_then_recovery_delivers_each_email_exactly_once(notifier, fake_resend) -> None:
    fake_resend.mode = "fail"
    first, first_address = watcher(notifier)
    second, second_address = watcher(notifier)
    notifier.publish(report_filed())

    def retried() -> bool:
        emails = rows(notifier, EmailMessage)
        return len(emails) == 2 and all(e.attempts >= 2 and "500" in (e.last_error or "") for e in emails)

    wait_for(retried)
    fake_resend.mode = "throttle"
    wait_for(lambda: all("429" in (e.last_error or "") for e in rows(notifier, EmailMessage)))
    fake_resend.mode = "ok"
    wait_for(lambda: all_sent(notifier, 2))
    assert len(fake_resend.requests) > 4
    assert len(fake_resend.accepted_to(first_address)) == 1
    assert len(fake_resend.accepted_to(second_address)) == 1
    keys = [r["headers"]["idempotency-key"] for r in fake_resend.accepted]
    assert len(set(keys)) == 2
    for email in rows(notifier, EmailMessage):
        assert email.provider_id
        assert email.last_error is None
    assert len(rows(notifier, Notification, user_id=first)) == len(rows(notifier, Notification, user_id=second)) == 1


def test_a_rejected_address_is_recorded_as_failed_without_endless_retries(notifier, fake_resend) -> None:
    fake_resend.mode = "invalid"
    watcher(notifier)
    notifier.publish(report_filed())
    (email,) = wait_for(lambda: rows(notifier, EmailMessage, status="failed"))
    assert email.attempts == 1
    assert "422" in email.last_error


def test_a_magic_link_is_mailed_with_its_link_and_nothing_else(notifier, fake_resend) -> None:
    link = "https://app.pawgle.test/auth/magic?token=abcDEF123&next=/user"
    event = MagicLinkRequested(
        user_id=next_id(), email="new@example.org", link=link, purpose="verify_email", expires_at=in_minutes(15)
    )
    notifier.publish(event)
    (request,) = wait_for(lambda: fake_resend.accepted_to("new@example.org"))
    assert request["json"]["subject"] == "Confirm your PawGle e-mail"
    assert link in request["json"]["text"]
    wait_for(lambda: all_sent(notifier, 1))
    (email,) = rows(notifier, EmailMessage)
    assert "abcDEF123" not in email.text_body + email.html_body  # the log forgets the secret once sent


def test_a_match_notifies_and_mails_the_chat_link(notifier, fake_resend) -> None:
    owner = next_id()
    address = sign_up(notifier, owner)
    match_id, conversation = next_id(), "9b2f4c3e-0d61-4f4e-8d0a-6c1e7f0b9a21"
    notifier.publish(
        MatchFound(
            match_id=match_id,
            found_report_id=1,
            found_reporter_id=2,
            lost_user_id=owner,
            pet_id=3,
            name="Milo",
            score=0.8,
        )
    )
    notifier.publish(
        ConversationOpened(conversation_id=conversation, report_id=1, participant_ids=[owner, 2], match_id=match_id)
    )
    (request,) = wait_for(lambda: fake_resend.accepted_to(address))
    assert request["json"]["subject"] == "PawGle: possible match for Milo"
    assert f"https://app.pawgle.test/chat/{conversation}" in request["json"]["text"]
    (row,) = rows(notifier, Notification, user_id=owner)
    assert (row.verb, row.target_id, row.target_name) == ("auto_match", 3, "Milo")


def test_embedding_and_expiry_events_produce_the_contract_verbs(notifier) -> None:
    owner, pet_id = next_id(), next_id()
    notifier.publish(
        PetCreated(pet_id=pet_id, owner_id=owner, name="Luna", type="Cats", breed="Bengal", category="Domestic")
    )
    wait_for(lambda: rows(notifier, PetName, pet_id=pet_id))
    notifier.publish(PetEmbedded(pet_id=pet_id, owner_id=owner, model_version="m1", vector_count=2))
    notifier.publish(
        EmbeddingFailed(subject_kind="pet", subject_id=pet_id, owner_id=owner, name="Luna", reason="timeout")
    )
    notifier.publish(ReportExpired(report_id=next_id(), reporter_id=owner, animal_name="Luna"))
    found = wait_for(lambda: (r := rows(notifier, Notification, user_id=owner)) and len(r) == 3 and r)
    by_verb = {row.verb: row for row in found}
    assert by_verb["feature_extraction_failed"].description == (
        "Feature extraction failed for Luna. You can retry from your profile."
    )
    assert by_verb["feature_extraction_complete"].target_id == pet_id
    assert "Luna" in by_verb["feature_extraction_complete"].description
    assert "report_expired" in by_verb


def test_a_report_about_to_expire_tells_its_reporter_with_a_link_only_email(notifier) -> None:
    reporter = next_id()
    address = sign_up(notifier, reporter)
    expiring = ReportExpiring(
        report_id=next_id(),
        reporter_id=reporter,
        animal_name="Luna",
        status="lost",
        expires_at=datetime(2027, 3, 1, tzinfo=UTC),
    )
    envelope = notifier.publish(expiring)
    notifier.publish(expiring, envelope=envelope, msg_id=f"{envelope.id}-again")  # past dedupe
    notifier.wait_until_handled("report.expiring")
    [note] = rows(notifier, Notification, user_id=reporter)
    assert note.verb == "report_expiring"
    assert "2027-03-01" in note.description
    [mail] = wait_for(lambda: rows(notifier, EmailMessage, to_address=address, kind="report_expiring"))
    assert "/pet/map" in mail.text_body
    assert "Luna" in mail.subject


def test_chat_messages_page_once_per_window_with_a_reply_address(notifier, fake_resend) -> None:
    recipient, sender = next_id(), next_id()
    address = sign_up(notifier, recipient)
    for i in range(3):
        notifier.publish(
            MessageSent(message_id=f"m{i}", conversation_id="c-9", sender_id=sender, recipient_ids=[recipient])
        )
    (request,) = wait_for(lambda: fake_resend.accepted_to(address))
    wait_for(lambda: notifier.drained("message.sent"))
    assert len(fake_resend.accepted_to(address)) == 1
    assert request["json"]["reply_to"].startswith("reply+")
    assert request["json"]["reply_to"].endswith("@reply.pawgle.test")
    assert "https://app.pawgle.test/chat/c-9" in request["json"]["text"]


def test_user_deleted_erases_contact_areas_and_notifications(notifier) -> None:
    user, _ = watcher(notifier)
    notifier.publish(report_filed())
    wait_for(lambda: rows(notifier, Notification, user_id=user))
    notifier.publish(UserDeleted(user_id=user))
    wait_for(lambda: not rows(notifier, AlertArea, user_id=user))
    assert rows(notifier, Notification, user_id=user) == []
    assert rows(notifier, Contact, user_id=user)[0].email == ""


def test_replaying_report_filed_into_a_fresh_inbox_has_no_second_effect(notifier, fake_resend) -> None:
    user, _ = watcher(notifier)
    notifier.publish(report_filed())
    wait_for(lambda: all_sent(notifier, 1))
    (spec,) = [s for s in handlers.consumer_specs(settings=notifier.settings) if s.event_type == "report.filed"]
    report = notifier.client.portal.call(
        lambda: replay(
            notifier.engine,
            notifier.app.state.nc,
            spec,
            from_time=datetime(2020, 1, 1, tzinfo=UTC),
            inbox_name="notifier-replay-test",
        )
    )
    assert report.outcomes.get("handled") == 1
    with Session(notifier.engine) as session:
        assert session.exec(select(func.count()).select_from(Notification)).one() == 1
        assert session.exec(select(func.count()).select_from(EmailMessage)).one() == 1
    assert len(fake_resend.accepted) == 1
    assert rows(notifier, Notification, user_id=user)


def test_the_embedded_default_writes_each_email_once_into_the_outbox_folder(folder_notifier) -> None:
    notifier = folder_notifier
    _, address = watcher(notifier)
    report = report_filed()
    envelope = notifier.publish(report)
    notifier.publish(report, envelope=envelope, msg_id=f"{envelope.id}-again")
    wait_for(lambda: all_sent(notifier, 1))
    wait_for(lambda: notifier.drained("report.filed"))
    (path,) = notifier.settings.mail_outbox_dir.glob("*.eml")
    text = path.read_text()
    assert f"To: {address}" in text
    assert "Subject: PawGle: lost pet near your area" in text
    assert "https://app.pawgle.test/pet/map" in text
