"""The whole path on the real embedded stack: a found pet reaches its owner in a private conversation.

An owner registers a dog with two photos (pets) and reports it lost (reports); a stranger files a found
report nearby with a third photo of the same dog. The real image model embeds them (embeddings), the
matcher asks embeddings for candidates over request-reply and publishes match.found, chat opens the
conversation and the notifier tells the owner. Real photos of one dog (DogFaceNet identity 950, shipped
with the embeddings tests); real nats-server, SQLite, Qdrant Edge, HTTP between services.
"""

from __future__ import annotations

import asyncio
import base64
import http.client
import json
import queue
import socket
import threading
import time
import urllib.parse
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import nats
import pytest
from sqlmodel import Session, select

from pawgle.common.bus.tables import OutboxEvent
from pawgle.common.events.embeddings import PetEmbedded, ReportEmbedded
from pawgle.common.events.envelope import encode_event, new_event
from pawgle.common.testing.service import purge_streams
from pawgle.common.testing.stack import Stack, running_stack, sign_up
from pawgle.matcher.config import Settings
from pawgle.matcher.models import KnownPet, KnownReport, Match

PHOTOS = Path(__file__).parents[2] / "services" / "embeddings" / "tests" / "data" / "identities" / "950"
LOST_AT = (48.8566, 2.3522)  # Paris
FOUND_AT = (48.8600, 2.3700)  # 1.3 km away
TEN_KM_AWAY = (48.9470, 2.3522)
FAR_AWAY = (50.6600, 2.3522)  # 200 km north
MATCHES = "/api/auth/matches/"
CONVERSATIONS = "/api/auth/chat/conversations/"


def wait_for(condition: Callable[[], Any], *, timeout_s: float = 15.0, what: str) -> Any:
    deadline = time.monotonic() + timeout_s
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {timeout_s} s")
        time.sleep(0.02)


def user_id_of(token: str) -> int:
    payload = token.split(".")[1]
    return int(json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))["user_id"])


class Person:
    def __init__(self, stack: Stack, name: str) -> None:
        self.stack = stack
        self.token = sign_up(stack, username=f"{name}{time.monotonic_ns() % 10**8}")
        self.id = user_id_of(self.token)
        self.headers = {"Authorization": f"Bearer {self.token}"}

    def get(self, service: str, path: str) -> httpx.Response:
        return httpx.get(self.stack.url(service, path), headers=self.headers, timeout=10)

    def post(self, service: str, path: str, **kwargs: Any) -> httpx.Response:
        return httpx.post(self.stack.url(service, path), headers=self.headers, timeout=10, **kwargs)

    def report(
        self, status: str, at: tuple[float, float], *, photo: str | None, type: str = "Dogs", **extra: str
    ) -> int:
        fields = {
            "animal_name": "Brown dog" if status == "found" else "Bruno",
            "category": "Domestic",
            "type": type,
            "breed": "Mixed",
            "status": status,
            "description": "",
            "latitude": str(at[0]),
            "longitude": str(at[1]),
            "contact_name": "",
            "contact_phone": "",
            "contact_email": "",
            "last_seen_date": "",
            "register_pet": "false",
            **extra,
        }
        files = {"image": ("photo.jpg", (PHOTOS / photo).read_bytes(), "image/jpeg")} if photo else None
        response = self.post("reports", "/api/auth/pets/report/", data=fields, files=files)
        assert response.status_code == 201, response.text
        return int(response.json()["id"])

    def conversations(self) -> list[dict[str, Any]]:
        response = self.get("chat", CONVERSATIONS)
        assert response.status_code == 200
        return list(response.json())

    def matches(self, query: str = "") -> list[dict[str, Any]]:
        response = self.get("matcher", MATCHES + query)
        assert response.status_code == 200
        return list(response.json()["matches"])

    def auto_match_notifications(self) -> list[dict[str, Any]]:
        body = self.get("notifier", "/api/auth/notifications/").json()
        return [n for n in body["notifications"] if n["verb"] == "auto_match"]


def known(stack: Stack, model: type[Any], key: int) -> Any:
    with Session(stack.apps["matcher"].state.engine) as session:
        return session.get(model, key)


def embedded_in_matcher(stack: Stack, model: type[Any], key: int) -> bool:
    row = known(stack, model, key)
    return row is not None and bool(row.model_version)


def matcher_settled(stack: Stack) -> bool:
    """The matcher has no job waiting (every cue it got is matched)."""
    from pawgle.matcher import repository

    with Session(stack.apps["matcher"].state.engine) as session:
        return repository.pending_jobs(session) == 0


def stored_matches(stack: Stack) -> list[Match]:
    with Session(stack.apps["matcher"].state.engine) as session:
        return list(session.exec(select(Match)).all())


def outbox(stack: Stack, service: str, subject: str) -> list[OutboxEvent]:
    with Session(stack.apps[service].state.engine) as session:
        return list(session.exec(select(OutboxEvent).where(OutboxEvent.subject == subject)).all())


def publish_raw(nats_url: str, subject: str, payload: bytes, msg_id: str) -> None:
    async def send() -> None:
        nc = await nats.connect(nats_url)
        try:
            await nc.jetstream().publish(subject, payload, headers={"Nats-Msg-Id": msg_id})
        finally:
            await nc.drain()

    asyncio.run(send())


@pytest.fixture(scope="module")
def story(nats_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """The owner's lost dog, a found report of it, and the report ids of the three that must not match."""
    overrides = {"chat": {"stream_ticket_secret": "stream-ticket-secret-for-tests-0123456789"}}
    # Events other tests left on the session's server (their match ids, report ids) must not reach this stack.
    asyncio.run(purge_streams(nats_url))
    with running_stack(nats_url=nats_url, data_dir=tmp_path_factory.mktemp("stack"), overrides=overrides) as stack:
        owner, finder, early_finder, third = (Person(stack, n) for n in ("owner", "finder", "early", "third"))

        # Seen the day before the owner reported the loss (10 km away: not the same sighting trail).
        early = early_finder.report("found", TEN_KM_AWAY, photo="950.3.jpg")
        wait_for(lambda: embedded_in_matcher(stack, KnownReport, early), what="the early found report embedded")

        files = [("images", (name, (PHOTOS / name).read_bytes(), "image/jpeg")) for name in ("950.1.jpg", "950.2.jpg")]
        form = {"name": "Bruno", "category": "Domestic", "type": "Dogs", "breed": "Mixed", "isPublic": "false"}
        added = owner.post("pets", "/api/auth/pets/add/", data=form, files=files)
        assert added.status_code == 201, added.text
        pet_id = int(added.json()["pet"]["id"])
        wait_for(lambda: embedded_in_matcher(stack, KnownPet, pet_id), what="the pet embedded")

        def lost_report() -> int | None:
            try:
                return owner.report("lost", LOST_AT, photo=None, pet_id=str(pet_id))
            except AssertionError:
                return None  # reports has not heard of the pet yet

        lost = wait_for(lost_report, what="the lost report filed")
        wait_for(lambda: known(stack, KnownReport, lost) is not None and matcher_settled(stack), what="re-matched")

        far = finder.report("found", FAR_AWAY, photo="950.3.jpg")
        cat = finder.report("found", FOUND_AT, photo="950.3.jpg", type="Cats")
        started = time.perf_counter()
        found = finder.report("found", FOUND_AT, photo="950.3.jpg")
        both = wait_for(
            lambda: (
                (owner.conversations(), finder.conversations())
                if owner.conversations() and finder.conversations()
                else None
            ),
            what="the conversation",
        )
        print(f"\nfound report 201 -> conversation seen by both: {time.perf_counter() - started:.2f} s")  # noqa: T201
        for report_id in (far, cat):

            def embedded(r: int = report_id) -> bool:
                return embedded_in_matcher(stack, KnownReport, r)

            wait_for(embedded, what="the other reports embedded")
        wait_for(lambda: matcher_settled(stack), what="matching done")
        yield {
            "stack": stack,
            "owner": owner,
            "finder": finder,
            "third": third,
            "pet_id": pet_id,
            "lost": lost,
            "found": found,
            "not_matching": {"early": early, "far": far, "cat": cat},
            "conversations": both,
            "nats_url": nats_url,
        }


def test_both_sides_see_one_conversation_and_the_owner_is_told(story: dict[str, Any]) -> None:
    owner, finder = story["owner"], story["finder"]
    owner_conversations, finder_conversations = story["conversations"]
    assert len(owner_conversations) == 1
    assert [c["id"] for c in finder_conversations] == [owner_conversations[0]["id"]]
    notes = wait_for(owner.auto_match_notifications, what="the auto_match notification")
    assert len(notes) == 1
    assert "Bruno" in notes[0]["description"]
    [match] = owner.matches()
    assert (match["role"], match["found_report"]["id"], match["pet"]["id"]) == (
        "owner",
        story["found"],
        story["pet_id"],
    )
    assert match["lost_report"]["id"] == story["lost"]
    assert match["score"] >= Settings.model_fields["automatch_min_similarity"].default
    assert match["distance_km"] < 2
    [seen_by_finder] = finder.matches()
    assert seen_by_finder["id"] == match["id"]
    assert (seen_by_finder["lost_report"]["latitude"], seen_by_finder["lost_report"]["longitude"]) != LOST_AT


def test_far_away_another_species_or_before_the_loss_makes_no_match(story: dict[str, Any]) -> None:
    paired = {m.found_report_id for m in stored_matches(story["stack"])}
    assert paired == {story["found"]}
    assert not paired & set(story["not_matching"].values())


def test_the_same_event_twice_and_a_replay_create_nothing_new(story: dict[str, Any]) -> None:
    stack, owner, finder = story["stack"], story["owner"], story["finder"]
    [row] = [
        r
        for r in outbox(stack, "embeddings", "report.embedded")
        if json.loads(r.payload)["data"]["report_id"] == story["found"]
    ]
    publish_raw(story["nats_url"], "report.embedded", row.payload.encode(), msg_id=row.event_id + "-again")
    replayed = new_event(ReportEmbedded(**json.loads(row.payload)["data"]), producer="embeddings")
    publish_raw(story["nats_url"], "report.embedded", encode_event(replayed), msg_id=replayed.id)
    pet = PetEmbedded(
        pet_id=story["pet_id"],
        owner_id=owner.id,
        model_version=json.loads(row.payload)["data"]["model_version"],
        vector_count=2,
    )
    replayed_pet = new_event(pet, producer="embeddings")
    publish_raw(story["nats_url"], "pet.embedded", encode_event(replayed_pet), msg_id=replayed_pet.id)
    time.sleep(0.5)  # the three events reach the matcher's consumers
    wait_for(lambda: matcher_settled(stack), what="matching done")
    assert len(stored_matches(stack)) == 1
    assert len(outbox(stack, "matcher", "match.found")) == 1
    assert len(owner.conversations()) == 1
    assert len(finder.conversations()) == 1
    assert len(owner.auto_match_notifications()) == 1


def test_a_third_user_cannot_open_the_conversation(story: dict[str, Any]) -> None:
    conversation = story["conversations"][0][0]["id"]
    response = story["third"].get("chat", f"{CONVERSATIONS}{conversation}/")
    assert response.status_code == 403
    assert response.json()["detail"] == "Forbidden"
    assert story["third"].matches() == []


class EventStream:
    """The caller's server-sent events, read line by line in a thread; `close()` cuts the connection at once."""

    def __init__(self, url: str, headers: dict[str, str]) -> None:
        parsed = urllib.parse.urlsplit(url)
        self.connection = http.client.HTTPConnection(parsed.hostname or "127.0.0.1", parsed.port, timeout=30)
        self.connection.request("GET", parsed.path, headers=headers)
        self.lines: queue.Queue[tuple[float, str]] = queue.Queue()
        response = self.connection.getresponse()
        self.status = response.status
        self.reader = threading.Thread(target=self._read, args=(response,), daemon=True)
        self.reader.start()

    def _read(self, response: http.client.HTTPResponse) -> None:
        try:
            for raw in response:
                self.lines.put((time.perf_counter(), raw.decode().rstrip("\r\n")))
        except Exception:  # noqa: BLE001 - the test cut the connection mid-read
            return

    def close(self) -> None:
        if self.connection.sock is not None:
            self.connection.sock.shutdown(socket.SHUT_RDWR)
        self.connection.close()
        self.reader.join(timeout=5)


def test_a_message_by_the_owner_arrives_on_the_finders_stream(story: dict[str, Any]) -> None:
    owner, finder = story["owner"], story["finder"]
    conversation = story["conversations"][0][0]["id"]
    stream = EventStream(story["stack"].url("chat", "/api/auth/chat/stream/"), finder.headers)
    assert stream.status == 200
    assert stream.lines.get(timeout=10)[1] == ": connected"
    time.sleep(0.1)  # the stream's subscription is registered once its first bytes are out
    sent_at = time.perf_counter()
    sent = owner.post("chat", f"{CONVERSATIONS}{conversation}/messages/", data={"body": "Is he wearing a red collar?"})
    assert sent.status_code == 201
    while True:
        arrived, line = stream.lines.get(timeout=10)
        if line.startswith("data: ") and sent.json()["id"] in line:
            break
    print(f"\nmessage on the other side's stream after {(arrived - sent_at) * 1000:.0f} ms (send included)")  # noqa: T201
    stream.close()


def test_a_dismissed_match_never_reappears(story: dict[str, Any]) -> None:
    stack, owner = story["stack"], story["owner"]
    [match] = owner.matches()
    assert owner.post("matcher", f"{MATCHES}{match['id']}/dismiss/").status_code == 200
    replayed = new_event(
        ReportEmbedded(
            report_id=story["found"],
            reporter_id=story["finder"].id,
            model_version=stored_matches(stack)[0].model_version,
        ),
        producer="embeddings",
    )
    publish_raw(story["nats_url"], "report.embedded", encode_event(replayed), msg_id=replayed.id)
    time.sleep(0.3)
    wait_for(lambda: matcher_settled(stack), what="matching done")
    assert owner.matches() == []
    assert [m["id"] for m in owner.matches("?status=dismissed")] == [match["id"]]
    assert len(stored_matches(stack)) == 1
    assert len(outbox(stack, "matcher", "match.found")) == 1
    assert len(outbox(stack, "matcher", "match.dismissed")) == 1
