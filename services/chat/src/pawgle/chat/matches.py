"""match.found: one conversation per matched pair, or per (sighting trail, lost side).

Without a trail, each match opens its own conversation between the finder and the lost side's user.
With one, the first match of the trail with a lost side opens a conversation with every finder of the
trail and that lost side's user; a later match of the same trail and lost side adds its new finders to
that conversation with a system message. Either way a match is handled once (redelivery creates
nothing), and conversation.opened is published for each match with its id, so the notifier links the
match's e-mail to the conversation and the reports service lets every participant see the report.
"""

from __future__ import annotations

from fastapi import FastAPI
from sqlmodel import Session

from pawgle.chat import live, service
from pawgle.chat.models import Conversation, ConversationMatch, Participant, TrailConversation
from pawgle.common.bus.outbox import add_event
from pawgle.common.events.chat import ConversationOpened
from pawgle.common.events.matcher import MatchFound


def lost_side(data: MatchFound) -> str:
    """What the trail's conversation is about on the lost side: the pet, else the lost report, else the user."""
    if data.pet_id is not None:
        return f"pet:{data.pet_id}"
    if data.lost_report_id is not None:
        return f"report:{data.lost_report_id}"
    return f"user:{data.lost_user_id}"


def on_match_found(session: Session, data: MatchFound, app: FastAPI | None) -> None:
    """Open (or, for a trail, join) the match's conversation; nothing when this match was handled already."""
    if session.get(ConversationMatch, data.match_id) is not None:
        return
    finders = sorted({data.found_reporter_id, *data.trail_reporter_ids} - {data.lost_user_id})
    link = session.get(TrailConversation, (data.trail_id, lost_side(data))) if data.trail_id is not None else None
    conversation = session.get(Conversation, link.conversation_id) if link is not None else None
    if conversation is None:
        _open(session, data, finders, app)
    else:
        _join(session, data, conversation, finders, app)


def _open(session: Session, data: MatchFound, finders: list[int], app: FastAPI | None) -> None:
    conversation = service.open_conversation(
        session,
        report_id=data.found_report_id,
        user_ids=[*finders, data.lost_user_id],
        match_id=data.match_id,
        trail_id=data.trail_id,
        via="match",
    )
    session.add(ConversationMatch(match_id=data.match_id, conversation_id=conversation.id))
    if data.trail_id is not None:
        side = lost_side(data)
        session.add(TrailConversation(trail_id=data.trail_id, lost_side=side, conversation_id=conversation.id))
    service.post_message(session, conversation, sender_id=None, body=_opening_text(data))
    if app is not None:
        participants = service.participant_ids(session, conversation.id)
        live.notify_after_commit(session, app, participants, "conversation", conversation_id=conversation.id)


def _join(
    session: Session, data: MatchFound, conversation: Conversation, finders: list[int], app: FastAPI | None
) -> None:
    before = service.participant_ids(session, conversation.id)
    added = [uid for uid in finders if uid not in before]
    for uid in added:
        session.add(Participant(conversation_id=conversation.id, user_id=uid))
    session.add(ConversationMatch(match_id=data.match_id, conversation_id=conversation.id))
    session.flush()
    message = service.post_message(session, conversation, sender_id=None, body=_joining_text(data, len(added)))
    participants = service.participant_ids(session, conversation.id)
    add_event(
        session,
        ConversationOpened(
            conversation_id=conversation.id,
            report_id=conversation.report_id,
            participant_ids=participants,
            match_id=data.match_id,
            trail_id=data.trail_id,
            added_participant_ids=added,
        ),
    )
    if app is not None:
        if added:
            live.notify_after_commit(session, app, added, "conversation", conversation_id=conversation.id)
        live.notify_after_commit(
            session, app, before, "message", conversation_id=conversation.id, message_id=message.id
        )


def _where(data: MatchFound) -> str:
    return f" about {data.distance_km:.1f} km away" if data.distance_km is not None else ""


def _side(data: MatchFound) -> str:
    return "your registered pet" if data.pet_id is not None else "your lost pet report"


def _opening_text(data: MatchFound) -> str:
    sightings = len(set(data.trail_report_ids) | {data.found_report_id})
    if data.trail_id is not None and sightings > 1:
        seen = f"{sightings} sightings of one pet, the latest{_where(data)},"
        people = " The people who saw it are in this conversation."
    else:
        seen = f"a pet reported found{_where(data)}"
        people = ""
    return (
        f"PawGle found a possible match: {seen} looks like {_side(data)} {data.name} "
        f"(similarity {data.score:.0%}).{people} Compare the photos and talk here; never share payment details."
    )


def _joining_text(data: MatchFound, added: int) -> str:
    who = " The person who saw it joined this conversation." if added == 1 else ""
    if added > 1:
        who = f" {added} people who saw it joined this conversation."
    return (
        f"PawGle: another sighting{_where(data)} of the same pet looks like {_side(data)} {data.name} "
        f"(similarity {data.score:.0%}).{who} Never share payment details."
    )
