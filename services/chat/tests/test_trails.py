"""Sighting trails: one conversation per (trail, lost side) with every finder of the trail; a later match
of the trail adds its finder with a system message; redelivery creates nothing; no trail, no sharing."""

from __future__ import annotations

import json
from typing import Any

from pawgle_chat_test_factories import file_report, next_id
from sqlmodel import col, select

from pawgle.chat.models import Conversation, ConversationMatch
from pawgle.common.bus.tables import OutboxEvent
from pawgle.common.events.matcher import MatchFound

BASE = "/api/auth/chat/conversations/"


def listed(chat, user: int) -> list[dict[str, Any]]:
    return chat.client.get(BASE, headers=chat.headers(user)).json()


def messages(chat, user: int, conversation_id: str) -> list[dict[str, Any]]:
    return chat.client.get(f"{BASE}{conversation_id}/messages/", headers=chat.headers(user)).json()["messages"]


def opened_events(chat, conversation_id: str) -> list[dict[str, Any]]:
    with chat.session() as session:
        rows = session.exec(select(OutboxEvent).where(col(OutboxEvent.subject).endswith("conversation.opened"))).all()
    data = [json.loads(row.payload)["data"] for row in rows]
    return [d for d in data if d["conversation_id"] == conversation_id]


def trail_match(*, trail: int, report: int, finder: int, reports: list[int], finders: list[int], **rest: Any):
    fields: dict[str, Any] = {"name": "Rex", "score": 0.81, "distance_km": 3.0, **rest}
    return MatchFound(
        match_id=next_id(),
        found_report_id=report,
        found_reporter_id=finder,
        trail_id=trail,
        trail_report_ids=reports,
        trail_reporter_ids=finders,
        **fields,
    )


def test_a_trail_keeps_one_conversation_per_lost_side_and_adds_later_finders(chat) -> None:
    f1, f2, f3, owner, other_owner = (next_id() for _ in range(5))
    r1, r2 = file_report(chat, reporter_id=f1), file_report(chat, reporter_id=f2)
    r3 = file_report(chat, reporter_id=f3)
    trail, pet = next_id(), next_id()
    ids = [r1.report_id, r2.report_id]
    first = trail_match(trail=trail, report=r1.report_id, finder=f1, reports=ids, finders=[f1, f2],
                        lost_user_id=owner, pet_id=pet)  # fmt: skip
    chat.publish(first)
    chat.wait_until_handled("match.found")
    for user in (f1, f2, owner):
        assert len(listed(chat, user)) == 1, user
    conv = listed(chat, owner)[0]["id"]
    opening = messages(chat, owner, conv)
    assert len(opening) == 1
    assert opening[0]["sender_id"] is None
    assert "2 sightings" in opening[0]["body"]
    assert listed(chat, f3) == []

    later = trail_match(trail=trail, report=r3.report_id, finder=f3, reports=[*ids, r3.report_id],
                        finders=[f1, f2, f3], lost_user_id=owner, pet_id=pet)  # fmt: skip
    envelope = chat.publish(later)
    chat.publish(later)  # redelivered under a new event id
    chat.publish(later, envelope=envelope)  # and the same one again
    chat.publish(first)  # the first match replayed
    chat.wait_until_handled("match.found")
    assert [c["id"] for c in listed(chat, owner)] == [conv]
    assert [c["id"] for c in listed(chat, f3)] == [conv]
    thread = messages(chat, f3, conv)
    assert len(thread) == 2
    assert "joined this conversation" in thread[1]["body"]
    events = opened_events(chat, conv)
    assert [(e["match_id"], e["added_participant_ids"]) for e in events] == [
        (first.match_id, []),
        (later.match_id, [f3]),
    ]
    assert events[0]["participant_ids"] == sorted([f1, f2, owner])
    assert events[1]["participant_ids"] == sorted([f1, f2, f3, owner])
    assert {e["trail_id"] for e in events} == {trail}

    # The same trail and another lost side (someone else's pet): a conversation of its own.
    elsewhere = trail_match(trail=trail, report=r3.report_id, finder=f3, reports=[*ids, r3.report_id],
                            finders=[f1, f2, f3], lost_user_id=other_owner, pet_id=next_id())  # fmt: skip
    chat.publish(elsewhere)
    chat.wait_until_handled("match.found")
    assert len(listed(chat, other_owner)) == 1
    assert listed(chat, other_owner)[0]["id"] != conv
    assert len(listed(chat, f1)) == 2
    with chat.session() as session:
        handled = session.exec(select(ConversationMatch).where(ConversationMatch.conversation_id == conv)).all()
        assert sorted(m.match_id for m in handled) == sorted([first.match_id, later.match_id])


def test_without_a_trail_each_match_has_its_own_conversation(chat) -> None:
    finder, owner = next_id(), next_id()
    report = file_report(chat, reporter_id=finder)
    for pet in (next_id(), next_id()):
        chat.publish(
            MatchFound(
                match_id=next_id(),
                found_report_id=report.report_id,
                found_reporter_id=finder,
                lost_user_id=owner,
                pet_id=pet,
                name="Rex",
                score=0.7,
            )  # fmt: skip
        )
    chat.wait_until_handled("match.found")
    assert len(listed(chat, owner)) == 2
    with chat.session() as session:
        found = session.exec(select(Conversation).where(Conversation.report_id == report.report_id)).all()
        assert len(found) == 2
        assert all(c.match_id is not None for c in found)
