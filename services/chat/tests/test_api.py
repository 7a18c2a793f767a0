"""C1-C5 over real HTTP on the running chat (real bus, real database), with upstream events published."""

from __future__ import annotations

import uuid

from pawgle_chat_test_factories import file_report, jpeg, next_id, sign_up, wait_for
from sqlmodel import select

from pawgle.chat.models import Conversation, Message
from pawgle.common.events.auth import UserDeleted
from pawgle.common.events.chat import EmailReplyReceived
from pawgle.common.events.matcher import MatchFound
from pawgle.common.events.pets import PetCreated

BASE = "/api/auth/chat/conversations/"


def start(chat, user: int, report_id: int):
    return chat.client.post(f"{BASE}start/", json={"pet_location_id": report_id}, headers=chat.headers(user))


def send(chat, user: int, conversation_id: str, body: str | None = None, files=None):
    data = {"body": body} if body is not None else {}
    return chat.client.post(f"{BASE}{conversation_id}/messages/", data=data, files=files, headers=chat.headers(user))


def messages(chat, user: int, conversation_id: str, after: str | None = None):
    params = {"after": after} if after is not None else {}
    return chat.client.get(f"{BASE}{conversation_id}/messages/", params=params, headers=chat.headers(user))


def test_start_is_idempotent_and_includes_reporter_and_pet_owner(chat) -> None:
    owner, caller = next_id(), next_id()
    pet_id = next_id()
    chat.publish(
        PetCreated(
            pet_id=pet_id,
            owner_id=owner,
            name="Biscuit",
            type="dog",
            breed="",
            category="",
            image_keys=["pets/AAAAAAAAAAAAAAAAAAAAAA.jpg"],
        )
    )
    report = file_report(chat, pet_id=pet_id, pet_owner_id=owner)
    chat.wait_until_handled("pet.created")
    first = start(chat, caller, report.report_id)
    assert first.status_code == 200, first.text
    again = start(chat, caller, report.report_id)
    assert again.json()["id"] == first.json()["id"]
    body = first.json()
    assert set(body) == {
        "id",
        "pet_location_id",
        "pet_name",
        "pet_image_url",
        "last_message_at",
        "last_message_preview",
        "unread_count",
        "created_at",
        "is_test",
    }
    assert body["pet_name"] == "Biscuit"
    assert body["pet_image_url"] == "http://media.test/media/pets/AAAAAAAAAAAAAAAAAAAAAA.jpg"
    assert body["unread_count"] == 0
    assert body["last_message_at"] is None
    for user in (owner, report.reporter_id):
        listed = chat.client.get(BASE, headers=chat.headers(user)).json()
        assert [c["id"] for c in listed] == [body["id"]]
    stranger = chat.client.get(f"{BASE}{body['id']}/", headers=chat.headers(next_id()))
    assert stranger.status_code == 403
    assert stranger.json()["detail"] == "Forbidden"


def test_start_refuses_missing_and_unknown_reports(chat) -> None:
    user = next_id()
    missing = chat.client.post(f"{BASE}start/", json={}, headers=chat.headers(user))
    assert missing.status_code == 400
    assert missing.json()["detail"] == "pet_location_id is required"
    unknown = start(chat, user, 987654321)
    assert unknown.status_code == 404
    assert unknown.json()["detail"] == "Not found"
    form = chat.client.post(f"{BASE}start/", data={"pet_location_id": "abc"}, headers=chat.headers(user))
    assert form.status_code == 400


def test_unknown_and_malformed_ids_are_json_404(chat) -> None:
    user = next_id()
    for path in (f"{BASE}{uuid.uuid4()}/", f"{BASE}not-a-uuid/", f"{BASE}not-a-uuid/messages/"):
        answer = chat.client.get(path, headers=chat.headers(user))
        assert answer.status_code == 404, path
        assert answer.json()["detail"] == "Not found"
    assert chat.client.get(BASE).status_code == 401


def test_messages_flow_with_cursor_read_stamps_and_unread_count(chat) -> None:
    finder, owner = next_id(), next_id()
    sign_up(chat, finder, "Fiona")
    report = file_report(chat, reporter_id=owner, status="lost")
    conv = start(chat, finder, report.report_id).json()["id"]
    sent = send(chat, finder, conv, "  I think I saw your dog  ")
    assert sent.status_code == 201, sent.text
    message = sent.json()
    assert message["body"] == "I think I saw your dog"
    assert message["sender_id"] == finder
    assert message["sender_name"] == "Fiona"
    assert message["created_at"].endswith("Z")
    assert len(message["created_at"]) == len("2025-04-01T09:15:02.123456Z")
    assert chat.client.get(BASE, headers=chat.headers(owner)).json()[0]["unread_count"] == 1
    # The finder's own message is not "unread" for them, and reading it themselves stamps nothing.
    mine = messages(chat, finder, conv).json()["messages"]
    assert mine[0]["read_at"] is None
    theirs = messages(chat, owner, conv).json()
    assert [m["id"] for m in theirs["messages"]] == [message["id"]]
    assert theirs["messages"][0]["read_at"] is not None
    assert chat.client.get(BASE, headers=chat.headers(owner)).json()[0]["unread_count"] == 0
    # Cursor: strictly after, and an already-read message is not sent again.
    assert messages(chat, owner, conv, after=message["created_at"]).json()["messages"] == []
    second = send(chat, finder, conv, "second").json()
    after = messages(chat, owner, conv, after=message["created_at"]).json()["messages"]
    assert [m["id"] for m in after] == [second["id"]]
    # An offset spelling of the same instant works; garbage is a 400.
    offset = message["created_at"].replace("Z", "+00:00")
    assert messages(chat, owner, conv, after=offset).status_code == 200
    bad = messages(chat, owner, conv, after="yesterday")
    assert bad.status_code == 400
    assert bad.json()["detail"] == "Invalid 'after' timestamp."


def test_unread_messages_from_others_come_back_even_behind_the_cursor(chat) -> None:
    a, b = next_id(), next_id()
    report = file_report(chat, reporter_id=b)
    conv = start(chat, a, report.report_id).json()["id"]
    from_b = send(chat, b, conv, "from b").json()
    own = send(chat, a, conv, "from a").json()
    # a's cursor jumped to its own message: b's unread one is still delivered, once.
    got = messages(chat, a, conv, after=own["created_at"]).json()["messages"]
    assert [m["id"] for m in got] == [from_b["id"]]
    assert messages(chat, a, conv, after=own["created_at"]).json()["messages"] == []


def test_send_rules_empty_too_long_and_forbidden(chat) -> None:
    a, b = next_id(), next_id()
    report = file_report(chat, reporter_id=b)
    conv = start(chat, a, report.report_id).json()["id"]
    empty = send(chat, a, conv, "   ")
    assert empty.status_code == 400
    assert empty.json()["detail"] == "Empty message"
    long = send(chat, a, conv, "x" * 4001)
    assert long.status_code == 400
    assert long.json()["detail"] == "Message too long"
    assert send(chat, a, conv, "x" * 4000).status_code == 201
    assert send(chat, next_id(), conv, "let me in").status_code == 403


def test_attachments_are_verified_re_encoded_and_limited_to_six(chat) -> None:
    a, b = next_id(), next_id()
    report = file_report(chat, reporter_id=b)
    conv = start(chat, a, report.report_id).json()["id"]
    photo = send(chat, a, conv, files=[("attachments", ("cat.jpg", jpeg(), "image/jpeg"))])
    assert photo.status_code == 201, photo.text
    body = photo.json()
    assert body["body"] == ""
    assert len(body["attachments"]) == 1
    assert body["attachments"][0]["url"].startswith("http://media.test/media/chat/")
    listed = chat.client.get(BASE, headers=chat.headers(b)).json()[0]
    assert listed["last_message_preview"] == "[photo]"
    html = send(chat, a, conv, files=[("attachments", ("x.jpg", b"<html>hi</html>", "image/jpeg"))])
    assert html.status_code == 400
    seven = send(chat, a, conv, "many", files=[("attachments", (f"{i}.jpg", jpeg(), "image/jpeg")) for i in range(7)])
    assert seven.status_code == 400
    single = send(chat, a, conv, files=[("image", ("one.jpg", jpeg(), "image/jpeg"))])
    assert single.status_code == 201
    assert len(single.json()["attachments"]) == 1


def test_scam_messages_carry_a_warning_for_the_recipient_only(chat) -> None:
    a, b = next_id(), next_id()
    report = file_report(chat, reporter_id=b)
    conv = start(chat, a, report.report_id).json()["id"]
    sent = send(chat, a, conv, "Send me 3 gift cards and I'll bring the dog").json()
    assert sent["warning"] is None
    seen = messages(chat, b, conv).json()["messages"][0]
    assert seen["warning"]
    assert "money" in seen["warning"]
    send(chat, a, conv, "He is safe, come to the park at 5")
    assert messages(chat, b, conv).json()["messages"][-1]["warning"] is None
    warned = [
        "I need 40 euros for the transport fee first",
        "Tell me the 6-digit code you just got",
        "Let's continue on WhatsApp",
        "Call me: +33 6 12 34 56 78",
        "write to finder.bob@example.org",
    ]
    fine = [
        "His microchip is 250269604123456, does it match?",
        "Found him at 48.8566, 2.3522 on 12/03/2025 at 10:30",
        "Can you send me a photo of his collar?",
    ]
    for body in warned + fine:
        send(chat, a, conv, body)
    seen = messages(chat, b, conv).json()["messages"][-len(warned + fine) :]
    assert [m["warning"] is not None for m in seen] == [True] * len(warned) + [False] * len(fine)
    assert all(m["warning"] is None for m in messages(chat, a, conv).json()["messages"])


def test_match_found_opens_one_conversation_with_a_system_message(chat) -> None:
    finder, owner = next_id(), next_id()
    report = file_report(chat, reporter_id=finder)
    match = MatchFound(
        match_id=next_id(),
        found_report_id=report.report_id,
        found_reporter_id=finder,
        lost_user_id=owner,
        pet_id=next_id(),
        name="Rex",
        score=0.83,
        distance_km=2.4,
    )
    envelope = chat.publish(match)
    chat.publish(match)  # a redelivery under a new event id creates nothing new either
    chat.publish(match, envelope=envelope)
    chat.wait_until_handled("match.found")
    for user in (finder, owner):
        listed = chat.client.get(BASE, headers=chat.headers(user)).json()
        assert len(listed) == 1
    conv = listed[0]["id"]
    first = messages(chat, owner, conv).json()["messages"]
    assert len(first) == 1
    assert first[0]["sender_id"] is None
    assert "Rex" in first[0]["body"]
    with chat.session() as session:
        assert len(session.exec(select(Conversation).where(Conversation.match_id == match.match_id)).all()) == 1


def test_email_reply_posts_as_the_participant_and_user_deleted_anonymises(chat) -> None:
    a, b = next_id(), next_id()
    sign_up(chat, a, "Alice")
    report = file_report(chat, reporter_id=b)
    conv = start(chat, a, report.report_id).json()["id"]
    send(chat, a, conv, "hello", files=[("attachments", ("c.jpg", jpeg(), "image/jpeg"))])
    chat.publish(EmailReplyReceived(conversation_id=conv, sender_id=b, body="Replying by mail"))
    wait_for(lambda: len(messages(chat, a, conv).json()["messages"]) == 2)
    assert messages(chat, a, conv).json()["messages"][-1]["sender_id"] == b
    chat.publish(EmailReplyReceived(conversation_id=conv, sender_id=next_id(), body="intruder"))
    contact = f"{BASE}{conv}/contact/"
    chat.client.post(contact, json={"contact": "alice: 0612345678"}, headers=chat.headers(a))
    chat.client.post(contact, json={"contact": "b@example.org"}, headers=chat.headers(b))
    assert chat.client.get(contact, headers=chat.headers(b)).json()["shared"][0]["user_id"] == a
    chat.publish(UserDeleted(user_id=a))
    chat.wait_until_handled("user.deleted")
    chat.wait_until_handled("message.email_reply_received")
    got = messages(chat, b, conv).json()["messages"]
    assert len(got) == 2
    assert got[0]["sender_id"] is None
    assert got[0]["sender_name"] == "Deleted user"
    assert got[0]["body"] == ""
    assert got[0]["attachments"] == []
    with chat.session() as session:
        assert session.exec(select(Message).where(Message.sender_id == a)).all() == []
    # A deleted user's offered contact details are gone with them.
    assert chat.client.get(contact, headers=chat.headers(b)).json()["shared"] == []


def test_timestamps_of_quick_sends_are_strictly_increasing(chat) -> None:
    a, b = next_id(), next_id()
    report = file_report(chat, reporter_id=b)
    conv = start(chat, a, report.report_id).json()["id"]
    stamps = [send(chat, a, conv, f"m{i}").json()["created_at"] for i in range(5)]
    assert stamps == sorted(stamps)
    assert len(set(stamps)) == 5


CONTACT = "/api/auth/pets/contact-owner/"


def contact(chat, user: int | None, **fields):
    headers = chat.headers(user) if user is not None else {"Authorization": "Bearer null"}
    files = fields.pop("files", None)
    return chat.client.post(CONTACT, data=fields, files=files, headers=headers)


def test_contact_owner_lands_in_the_conversation_without_contact_details(chat) -> None:
    owner, reporter, caller = next_id(), next_id(), next_id()
    report = file_report(chat, reporter_id=reporter, pet_id=next_id(), pet_owner_id=owner, status="lost")
    form = {
        "pet_location_id": str(report.report_id),
        "message": "I have your dog",
        "contact_name": "Carol",
        "contact_email": "carol@example.org",
        "contact_phone": "+33 6 12 34 56 78",
    }
    sent = contact(chat, caller, files=[("image", ("dog.jpg", jpeg(), "image/jpeg"))], **form)
    assert sent.status_code == 200, sent.text
    body = sent.json()
    assert body["success"] is True
    assert body["message"].startswith("Your message has been sent.")
    conv = body["conversation_id"]
    for user in (owner, reporter):
        got = messages(chat, user, conv).json()["messages"]
        assert [m["body"] for m in got] == ["I have your dog"]
        assert len(got[0]["attachments"]) == 1
        assert "carol" not in str(got).lower()
        assert "12 34" not in str(got)
    # The same caller again reuses the conversation (like C2).
    assert contact(chat, caller, **form).json()["conversation_id"] == conv


def test_contact_owner_refusals_keep_the_envelope(chat) -> None:
    report = file_report(chat)
    anon = contact(chat, None, pet_location_id=str(report.report_id), message="hi")
    assert anon.status_code == 401
    assert anon.json()["success"] is False
    assert anon.json()["message"] == "Please sign in to contact the owner."
    user = next_id()
    missing = contact(chat, user, pet_location_id=str(report.report_id), message="  ")
    assert missing.status_code == 400
    assert missing.json() == missing.json() | {
        "success": False,
        "message": "Missing required fields",
    }
    unknown = contact(chat, user, pet_location_id="987654321", message="hi")
    assert unknown.status_code == 404
    assert unknown.json()["message"] == "Pet location record not found"


def test_contact_owner_is_throttled_ten_per_hour_per_user(chat) -> None:
    report = file_report(chat)
    user = next_id()
    answers = [contact(chat, user, pet_location_id=str(report.report_id), message=f"m{i}") for i in range(11)]
    assert [a.status_code for a in answers[:10]] == [200] * 10
    assert answers[10].status_code == 429
    assert answers[10].json()["success"] is False
    assert "throttled" in answers[10].json()["message"]
    assert contact(chat, next_id(), pet_location_id=str(report.report_id), message="other user").status_code == 200


def test_contact_details_are_revealed_only_when_both_sides_offered(chat) -> None:
    a, b = next_id(), next_id()
    report = file_report(chat, reporter_id=b)
    conv = start(chat, a, report.report_id).json()["id"]
    path = f"{BASE}{conv}/contact/"
    offered = chat.client.post(path, json={"contact": "a: 0612345678"}, headers=chat.headers(a)).json()
    assert offered["offered"] is True
    assert offered["shared"] == []
    # b has not offered: b sees nothing of a.
    assert chat.client.get(path, headers=chat.headers(b)).json()["shared"] == []
    both = chat.client.post(path, json={"contact": "b@example.org"}, headers=chat.headers(b)).json()
    assert both["shared"] == [{"user_id": a, "contact": "a: 0612345678"}]
    assert chat.client.get(path, headers=chat.headers(a)).json()["shared"] == [
        {"user_id": b, "contact": "b@example.org"}
    ]
    chat.client.delete(path, headers=chat.headers(a))
    assert chat.client.get(path, headers=chat.headers(b)).json()["shared"] == []
    assert chat.client.get(path, headers=chat.headers(next_id())).status_code == 403
    assert chat.client.post(path, json={"contact": ""}, headers=chat.headers(a)).status_code == 400
