"""The live stream over real HTTP: notices of committed writes (messages, read receipts, new
conversations, and writes made by event consumers) reach the streams of the other participants, opened
on a second process (same database, same NATS), with a header or with a stream ticket; never a body."""

from __future__ import annotations

import httpx
import pytest
from pawgle_chat_test_factories import EventReader, file_report, next_id, wait_for

from pawgle.common.events.chat import EmailReplyReceived
from pawgle.common.events.matcher import MatchFound
from pawgle.common.testing.service import RunningService

BASE = "/api/auth/chat/conversations/"


def open_stream(first: RunningService, url: str, user: int, *, auth: str = "header") -> EventReader:
    if auth == "header":
        reader = EventReader(f"{url}/api/auth/chat/stream/", first.headers(user))
    else:
        ticket = httpx.post(f"{url}/api/auth/chat/stream/ticket/", headers=first.headers(user)).json()["ticket"]
        reader = EventReader(f"{url}/api/auth/chat/stream/?ticket={ticket}", {})
    assert reader.status == "status 200 text/event-stream; charset=utf-8"
    return reader


@pytest.mark.parametrize("auth", ["header", "ticket"])
def test_a_message_sent_through_one_process_reaches_the_stream_on_another(two_processes, auth: str) -> None:
    first, url = two_processes
    a, b = next_id(), next_id()
    report = file_report(first, reporter_id=b)
    conv = first.client.post(f"{BASE}start/", json={"pet_location_id": report.report_id}, headers=first.headers(a))
    conv_id = conv.json()["id"]
    stream = open_stream(first, url, b, auth=auth)
    sent = first.client.post(f"{BASE}{conv_id}/messages/", data={"body": "hi there"}, headers=first.headers(a))
    assert sent.status_code == 201
    _, name, data = stream.next_event()
    assert (name, data) == ("message", {"type": "message", "conversation_id": conv_id, "message_id": sent.json()["id"]})


def test_new_conversations_and_read_receipts_reach_the_other_side(two_processes) -> None:
    first, url = two_processes
    a, b = next_id(), next_id()
    report = file_report(first, reporter_id=b)
    b_stream = open_stream(first, url, b)
    started = first.client.post(f"{BASE}start/", json={"pet_location_id": report.report_id}, headers=first.headers(a))
    conv_id = started.json()["id"]
    _, name, data = b_stream.next_event()
    assert (name, data["conversation_id"]) == ("conversation", conv_id)
    # Sent after the commit: the reporter finds it at once.
    assert first.client.get(f"{BASE}{conv_id}/", headers=first.headers(b)).status_code == 200
    again = first.client.post(f"{BASE}start/", json={"pet_location_id": report.report_id}, headers=first.headers(a))
    assert again.json()["id"] == conv_id
    a_stream = open_stream(first, url, a)
    first.client.post(f"{BASE}{conv_id}/messages/", data={"body": "seen your dog"}, headers=first.headers(a))
    assert b_stream.next_event()[1] == "message"  # (the restart above opened nothing: this is the next event)
    assert a_stream.next_event()[1] == "message"  # the sender's other tabs hear of it too
    page = first.client.get(f"{BASE}{conv_id}/messages/", headers=first.headers(b)).json()["messages"]
    _, name, data = a_stream.next_event()
    assert name == "read"
    assert data == {"type": "read", "conversation_id": conv_id, "user_id": b, "read_at": page[0]["read_at"]}
    # Reading again stamps nothing: no second receipt.
    first.client.get(f"{BASE}{conv_id}/messages/", headers=first.headers(b))
    assert a_stream.quiet(0.5)


def test_consumer_writes_reach_the_streams_after_their_commit(two_processes) -> None:
    first, url = two_processes
    finder, owner = next_id(), next_id()
    report = file_report(first, reporter_id=finder)
    owner_stream, finder_stream = open_stream(first, url, owner), open_stream(first, url, finder)
    match = MatchFound(
        match_id=next_id(), found_report_id=report.report_id, found_reporter_id=finder, lost_user_id=owner,
        pet_id=next_id(), name="Rex", score=0.8, distance_km=1.2,
    )  # fmt: skip
    first.publish(match)
    _, name, data = owner_stream.next_event()
    assert name == "conversation"
    conv_id = data["conversation_id"]
    # The notice follows the commit: the conversation and its first message are there when it arrives.
    messages = first.client.get(f"{BASE}{conv_id}/messages/", headers=first.headers(owner)).json()["messages"]
    assert len(messages) == 1
    assert finder_stream.next_event()[1:] == ("conversation", {"type": "conversation", "conversation_id": conv_id})
    first.publish(match)  # redelivered under a new event id: nothing new, no notice
    first.wait_until_handled("match.found")
    assert owner_stream.quiet(0.5)
    first.publish(EmailReplyReceived(conversation_id=conv_id, sender_id=finder, body="Answering by mail"))
    _, name, data = owner_stream.next_event()
    assert name == "message"
    page = first.client.get(f"{BASE}{conv_id}/messages/", headers=first.headers(owner)).json()["messages"]
    assert page[-1]["id"] == data["message_id"]
    assert page[-1]["body"] == "Answering by mail"
    assert "Answering" not in str(data)


def test_stream_refuses_missing_and_forged_credentials(two_processes) -> None:
    _, url = two_processes
    assert httpx.get(f"{url}/api/auth/chat/stream/").status_code == 401
    forged = httpx.get(f"{url}/api/auth/chat/stream/?ticket=5.9999999999.AAAAAAAAAAAAAAAAAAAAAAAA")
    assert forged.status_code == 401
    assert httpx.post(f"{url}/api/auth/chat/stream/ticket/").status_code == 401


def test_processes_of_one_deployment_share_the_ticket_key(settings_factory) -> None:
    from pydantic import SecretStr

    from pawgle.chat.main import ticket_secret

    edge = SecretStr("edge-secret-of-this-deployment-0123456789")
    one, two = (ticket_secret(settings_factory(edge_secret=edge)) for _ in range(2))
    assert one == two
    assert one != edge.get_secret_value().encode()  # derived, not the edge secret itself
    assert (
        ticket_secret(settings_factory(stream_ticket_secret="explicit-secret-0123456789"))
        == b"explicit-secret-0123456789"
    )
    assert ticket_secret(settings_factory()) != ticket_secret(settings_factory())  # random, one process only


def test_a_deleted_or_deactivated_users_streams_end_and_tickets_stop_working(two_processes) -> None:
    from pawgle.common.events.auth import UserDeleted, UserUpdated

    first, url = two_processes
    deleted, deactivated, later = next_id(), next_id(), next_id()
    streams = [open_stream(first, url, deleted), open_stream(first, url, deactivated, auth="ticket")]
    bystander = open_stream(first, url, next_id())
    ticket = httpx.post(f"{url}/api/auth/chat/stream/ticket/", headers=first.headers(later)).json()["ticket"]
    first.publish(UserDeleted(user_id=deleted))
    first.publish(UserUpdated(user_id=deactivated, display_name="D", email="d@example.org", email_verified=True,
                              is_active=False))  # fmt: skip
    assert streams[0].closed_by_server()
    assert streams[1].closed_by_server()
    assert not bystander.closed_by_server(timeout_s=0.5)
    first.publish(UserDeleted(user_id=later))

    def refused() -> bool:
        with (
            httpx.Client(timeout=5) as client,
            client.stream("GET", f"{url}/api/auth/chat/stream/?ticket={ticket}") as r,
        ):
            return r.status_code == 401

    wait_for(refused, message="a ticket issued before the account was deleted still opens a stream")
