"""The notifier's logic against a real database: the spatial index, reactions to events, the e-mail sender."""

from __future__ import annotations

import math
import random
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from pawgle_notifier_test_factories import (
    create_alert,
    create_contact,
    in_minutes,
    next_id,
    report_filed,
    user_registered,
    wait_for,
)
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from pawgle.common.db import make_engine
from pawgle.common.events.auth import MagicLinkRequested, UserDeleted, UserUpdated
from pawgle.common.events.chat import ConversationOpened, ConversationRead, MessageSent
from pawgle.common.events.matcher import MatchFound
from pawgle.common.migrations import upgrade_to_head
from pawgle.notifier import geo, reactions, service
from pawgle.notifier.config import Settings
from pawgle.notifier.mail import log_repository
from pawgle.notifier.mail.adapters import LocalFolderMailer
from pawgle.notifier.mail.sender import MailSender
from pawgle.notifier.main import MIGRATIONS
from pawgle.notifier.models import AlertArea, AlertAreaCell, Contact, EmailMessage, Notification
from pawgle.notifier.schemas import AlertUpdate


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    eng = make_engine(database_url)
    upgrade_to_head(MIGRATIONS, database_url, eng)
    yield eng
    eng.dispose()


@pytest.fixture
def settings(data_dir: Path) -> Settings:
    return Settings(
        environment="test",
        data_dir=data_dir,
        frontend_origin="https://app.pawgle.test",
        mail_retry_base_s=0.01,
        mail_retry_max_s=0.01,
        mail_max_attempts=3,
    )


@pytest.fixture
def session(engine: Engine) -> Iterator[Session]:
    with Session(engine, expire_on_commit=False) as s:
        yield s


def notifications_of(session: Session, user_id: int) -> list[Notification]:
    return list(session.exec(select(Notification).where(Notification.user_id == user_id)).all())


# --- the grid ------------------------------------------------------------------------------------


def test_haversine_matches_a_known_distance() -> None:
    assert geo.haversine_km(48.8566, 2.3522, 51.5074, -0.1278) == pytest.approx(343.5, abs=1.0)


@pytest.mark.parametrize(
    ("lat", "lon", "radius"),
    [
        (0.0, 0.0, 100),
        (48.85, 2.35, 5),
        (0.25, 0.25, 30),
        (64.1, -21.9, 100),
        (-33.9, 151.2, 1),
        (0.0, 179.9, 100),
        (10.0, -179.95, 50),
        (89.5, 10.0, 100),
        (-89.9, 0.0, 20),
        (71.0, 179.99, 100),
    ],
)
def test_every_point_inside_a_circle_lies_in_one_of_its_cells(lat: float, lon: float, radius: float) -> None:
    rng = random.Random(f"{lat},{lon},{radius}")
    cells = set(geo.cells_covering(lat, lon, radius))
    checked = 0
    dlat = radius / 111.0
    dlon = min(180.0, dlat / max(math.cos(math.radians(lat)), 0.005))
    for _ in range(4000):
        plat, plon = lat + rng.uniform(-1.3, 1.3) * dlat, lon + rng.uniform(-1.3, 1.3) * dlon
        plat = max(-90.0, min(90.0, plat))
        plon = ((plon + 180) % 360) - 180
        if geo.haversine_km(lat, lon, plat, plon) <= radius:
            checked += 1
            assert geo.cell_of(plat, plon) in cells, (plat, plon)
    assert checked > 0


def test_a_small_area_covers_few_cells_and_a_polar_one_every_longitude() -> None:
    assert len(geo.cells_covering(48.85, 2.35, 5)) <= 4
    polar = geo.cells_covering(89.8, 0.0, 50)
    assert {cell % geo.COLS for cell in polar} == set(range(geo.COLS))


# --- nearby alerts -------------------------------------------------------------------------------


def test_a_report_alerts_exactly_the_areas_that_contain_it(session: Session, settings: Settings) -> None:
    report = report_filed(latitude=48.8566, longitude=2.3522)
    inside_a = create_alert(session, radius_km=2)
    inside_b = create_alert(session, center_lat=48.90, center_lon=2.40, radius_km=10, label="")
    outside = create_alert(session, center_lat=48.95, center_lon=2.60, radius_km=5)
    assert reactions.on_report_filed(session, settings=settings, event_id="E1", data=report) == 2
    (a,) = notifications_of(session, inside_a.user_id)
    assert a.verb == "nearby_alert"
    assert a.description == "A lost pet (Rex) was reported within 2 km of your 'home'."
    assert a.target_id == report.report_id
    (b,) = notifications_of(session, inside_b.user_id)
    assert b.description == "A lost pet (Rex) was reported within 10 km of your 'saved area'."
    assert notifications_of(session, outside.user_id) == []


def test_filters_pauses_reporter_and_owner_are_respected(session: Session, settings: Settings) -> None:
    report = report_filed(status="found", pet_id=next_id(), pet_owner_id=next_id())
    wants_lost = create_alert(session, status_filter="lost")
    paused = create_alert(session, is_active=False)
    reporter = create_alert(session, user_id=report.reporter_id)
    owner = create_alert(session, user_id=report.pet_owner_id)
    wants_found = create_alert(session, status_filter="found")
    assert reactions.on_report_filed(session, settings=settings, event_id="E2", data=report) == 1
    for quiet in (wants_lost, paused, reporter, owner):
        assert notifications_of(session, quiet.user_id) == []
    assert len(notifications_of(session, wants_found.user_id)) == 1


def test_a_user_with_two_matching_areas_gets_one_notification(session: Session, settings: Settings) -> None:
    user = next_id()
    create_alert(session, user_id=user, radius_km=3, label="work")
    create_alert(session, user_id=user, radius_km=50, label="region")
    reactions.on_report_filed(session, settings=settings, event_id="E3", data=report_filed())
    (only,) = notifications_of(session, user)
    assert "'work'" in only.description


def test_areas_across_the_antimeridian_and_cell_borders_are_found(session: Session, settings: Settings) -> None:
    east = create_alert(session, center_lat=-16.5, center_lon=179.9, radius_km=40)
    border = create_alert(session, center_lat=0.0, center_lon=0.0, radius_km=60)
    reactions.on_report_filed(
        session, settings=settings, event_id="E4", data=report_filed(latitude=-16.6, longitude=-179.8)
    )
    reactions.on_report_filed(
        session, settings=settings, event_id="E5", data=report_filed(latitude=0.4, longitude=-0.3)
    )
    assert len(notifications_of(session, east.user_id)) == 1
    assert len(notifications_of(session, border.user_id)) == 1


def test_moving_an_area_moves_its_index(session: Session, settings: Settings) -> None:
    area = create_alert(session)
    service.update_alert(
        session=session, user_id=area.user_id, alert_id=area.id, data=AlertUpdate(center_lat=-33.87, center_lon=151.21)
    )
    reactions.on_report_filed(session, settings=settings, event_id="E6", data=report_filed())
    assert notifications_of(session, area.user_id) == []
    reactions.on_report_filed(
        session, settings=settings, event_id="E7", data=report_filed(latitude=-33.86, longitude=151.2)
    )
    assert len(notifications_of(session, area.user_id)) == 1


def test_replaying_a_report_creates_nothing_twice(session: Session, settings: Settings) -> None:
    area = create_alert(session)
    create_contact(session, area.user_id)
    report = report_filed()
    for _ in range(2):
        reactions.on_report_filed(session, settings=settings, event_id="E8", data=report)
    assert len(notifications_of(session, area.user_id)) == 1
    assert len(log_repository.emails_for(session, to_address=f"user{area.user_id}@example.org")) == 1


def test_a_lost_report_of_an_own_pet_tells_the_reporter(session: Session, settings: Settings) -> None:
    report = report_filed(pet_id=next_id(), animal_name="Bella")
    reactions.on_report_filed(session, settings=settings, event_id="E9", data=report)
    (row,) = notifications_of(session, report.reporter_id)
    assert (row.verb, row.description, row.target_id) == (
        "Pet marked as lost",
        "You've reported Bella as lost.",
        report.pet_id,
    )


def test_only_verified_active_contacts_are_mailed(session: Session, settings: Settings) -> None:
    verified, unverified, inactive = create_alert(session), create_alert(session), create_alert(session)
    create_contact(session, verified.user_id)
    create_contact(session, unverified.user_id, email_verified=False)
    create_contact(session, inactive.user_id, is_active=False)
    reactions.on_report_filed(session, settings=settings, event_id="E10", data=report_filed())
    mails = log_repository.emails_for(session)
    assert [m.user_id for m in mails] == [verified.user_id]
    assert mails[0].subject == "PawGle: lost pet near your area"
    assert "https://app.pawgle.test/pet/map" in mails[0].text_body
    assert "Rex" not in mails[0].text_body  # link-only


# --- matches, chat, accounts ---------------------------------------------------------------------


@pytest.mark.parametrize("conversation_first", [False, True])
def test_a_match_mails_the_chat_link_once_both_halves_arrived(session, settings, conversation_first) -> None:
    owner, match_id, conversation = next_id(), next_id(), "0f8fad5b-d9cb-469f-a165-70867728950e"
    create_contact(session, owner)
    found = MatchFound(
        match_id=match_id, found_report_id=1, found_reporter_id=2, lost_user_id=owner, pet_id=7, name="Milo", score=0.9
    )
    opened = ConversationOpened(
        conversation_id=conversation, report_id=1, participant_ids=[owner, 2], match_id=match_id
    )
    steps = [
        lambda: reactions.on_conversation_opened(session, settings=settings, data=opened),
        lambda: reactions.on_match_found(session, settings=settings, event_id="M1", data=found),
    ]
    for step in steps if conversation_first else reversed(steps):
        step()
    for step in steps:  # redelivered halves change nothing
        step()
    (mail,) = log_repository.emails_for(session)
    assert mail.subject == "PawGle: possible match for Milo"
    assert f"https://app.pawgle.test/chat/{conversation}" in mail.text_body
    (row,) = notifications_of(session, owner)
    assert row.verb == "auto_match"
    assert row.description == "We found a possible match for Milo. Open the chat to view the report."


def test_chat_paging_is_mailed_once_per_conversation_per_window(session: Session, settings: Settings) -> None:
    recipient, sender = next_id(), next_id()
    create_contact(session, recipient)
    start = datetime.now(UTC)

    def sent(event_id: str, at: datetime) -> None:
        data = MessageSent(
            message_id=event_id, conversation_id="c-1", sender_id=sender, recipient_ids=[recipient, sender]
        )
        reactions.on_message_sent(session, settings=settings, event_id=event_id, occurred_at=at, data=data)

    sent("m1", start)
    sent("m2", start + timedelta(minutes=5))
    sent("m3", start + timedelta(minutes=14, seconds=59))
    assert len(log_repository.emails_for(session)) == 1
    sent("m4", start + timedelta(minutes=16))
    mails = log_repository.emails_for(session)
    assert len(mails) == 2
    assert {m.user_id for m in mails} == {recipient}


def test_a_recipient_who_read_the_chat_is_paged_again_by_the_next_message(session: Session, settings: Settings) -> None:
    recipient, sender = next_id(), next_id()
    create_contact(session, recipient)
    start = datetime.now(UTC)

    def sent(event_id: str, at: datetime) -> None:
        data = MessageSent(message_id=event_id, conversation_id="c-r", sender_id=sender, recipient_ids=[recipient])
        reactions.on_message_sent(session, settings=settings, event_id=event_id, occurred_at=at, data=data)

    def read(at: datetime) -> None:
        reactions.on_conversation_read(
            session, data=ConversationRead(conversation_id="c-r", user_id=recipient, read_at=at)
        )

    sent("r1", start)
    sent("r2", start + timedelta(minutes=1))  # still unread: no second e-mail
    assert len(log_repository.emails_for(session)) == 1
    read(start + timedelta(minutes=2))
    read(start + timedelta(seconds=30))  # a late, older read event changes nothing
    sent("r3", start + timedelta(minutes=3))  # caught up since the last page: paged again
    assert len(log_repository.emails_for(session)) == 2
    sent("r4", start + timedelta(minutes=4))
    assert len(log_repository.emails_for(session)) == 2


def test_contact_owner_messages_also_notify_with_the_original_verb(session: Session, settings: Settings) -> None:
    owner = next_id()
    data = MessageSent(
        message_id="x",
        conversation_id="c-2",
        sender_id=next_id(),
        recipient_ids=[owner],
        via_contact_owner=True,
        pet_name="Luna",
        pet_type="Cats",
    )
    reactions.on_message_sent(session, settings=settings, event_id="CO1", occurred_at=datetime.now(UTC), data=data)
    (row,) = notifications_of(session, owner)
    assert row.verb == "Someone has information about your Cats Luna"


def test_an_expired_magic_link_is_not_sent(session: Session) -> None:
    stale = MagicLinkRequested(
        user_id=1, email="a@example.org", link="https://app.pawgle.test/auth/magic?token=t", expires_at=in_minutes(-1)
    )
    reactions.on_magic_link_requested(session, event_id="ML1", data=stale)
    assert log_repository.emails_for(session) == []


def test_a_deleted_user_is_erased_and_not_revived_by_a_late_update(session: Session, settings: Settings) -> None:
    area = create_alert(session)
    user = area.user_id
    reactions.on_user_changed(session, occurred_at=datetime.now(UTC), data=user_registered(user))
    reactions.on_report_filed(session, settings=settings, event_id="D1", data=report_filed())
    assert notifications_of(session, user)
    reactions.on_user_deleted(session, data=UserDeleted(user_id=user))
    late = UserUpdated(user_id=user, display_name="x", email="x@example.org", email_verified=True)
    reactions.on_user_changed(session, occurred_at=datetime.now(UTC), data=late)
    assert notifications_of(session, user) == []
    assert session.exec(select(AlertArea).where(AlertArea.user_id == user)).all() == []
    assert session.exec(select(AlertAreaCell).where(AlertAreaCell.alert_id == area.id)).all() == []
    assert log_repository.emails_for(session) == []
    assert session.get(Contact, user).email == ""


# --- the sender and the folder adapter ------------------------------------------------------------


def queue(engine: Engine, n: int) -> None:
    with Session(engine) as session:
        for i in range(n):
            composed = reactions.compose.nearby_alert_email(frontend="https://app.pawgle.test", status="lost")
            log_repository.queue_email(
                session,
                key=log_repository.email_key(f"ev{i}", "u", "k"),
                composed=composed,
                to_address=f"u{i}@example.org",
                user_id=None,
            )
        session.commit()


def test_the_folder_adapter_writes_one_readable_file_per_message(engine: Engine, settings: Settings) -> None:
    queue(engine, 3)
    sender = MailSender(engine, LocalFolderMailer(settings.mail_outbox_dir), settings)
    assert sender.deliver_due() == 3
    assert sender.deliver_due() == 0
    files = sorted(settings.mail_outbox_dir.glob("*.eml"))
    assert len(files) == 3
    text = files[0].read_text()
    assert "Subject: PawGle: lost pet near your area" in text
    assert "https://app.pawgle.test/pet/map" in text
    assert not list(settings.mail_outbox_dir.glob(".tmp-*"))
    with Session(engine) as session:
        assert log_repository.counts_by_status(session) == {"sent": 3}


def test_a_failing_adapter_is_retried_then_recorded_and_can_be_requeued(engine: Engine, settings: Settings) -> None:
    queue(engine, 1)
    blocked = settings.service_dir / "not-a-folder"
    blocked.parent.mkdir(parents=True, exist_ok=True)
    blocked.write_text("a file where the folder should be")
    sender = MailSender(engine, LocalFolderMailer(blocked), settings)
    for _ in range(settings.mail_max_attempts):
        _wait_until_due(engine)
        sender.deliver_due()
    with Session(engine) as session:
        (row,) = session.exec(select(EmailMessage)).all()
        assert (row.status, row.attempts) == ("failed", settings.mail_max_attempts)
        assert "cannot write" in (row.last_error or "")
        assert log_repository.requeue_failed(session) == 1
        session.commit()
    blocked.unlink()
    assert MailSender(engine, LocalFolderMailer(blocked), settings).deliver_due() == 1
    assert len(list(blocked.glob("*.eml"))) == 1


def _wait_until_due(engine: Engine) -> None:
    def due() -> bool:
        now = datetime.now(UTC).replace(tzinfo=None)
        with Session(engine) as session:
            return session.exec(select(EmailMessage).where(EmailMessage.next_attempt_at <= now)).first() is not None

    wait_for(due, timeout_s=5, interval_s=0.01)
