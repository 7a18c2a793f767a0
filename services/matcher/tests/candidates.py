"""Helpers of the matcher tests: a real answerer of embeddings' nearest-candidates subject, and event builders.

The answerer (`CandidateIndex`) subscribes to `rpc.embeddings.nearest_candidates` on the real nats-server
and answers from vectors the test gives it (real model vectors of the shipped photos, or vectors built at
an exact cosine), with the request's semantics: kinds, statuses, radius around the subject, threshold,
limit, best first, never the subject itself.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np
from nats.aio.msg import Msg
from sqlmodel import select

from pawgle.common.bus.tables import OutboxEvent
from pawgle.common.events.embeddings import (
    NEAREST_CANDIDATES,
    Candidate,
    NearestCandidates,
    NearestCandidatesRequest,
    PetEmbedded,
    ReportEmbedded,
)
from pawgle.common.events.envelope import EventData
from pawgle.common.events.pets import PetCreated
from pawgle.common.events.reports import ReportFiled
from pawgle.common.geo import haversine_km
from pawgle.common.testing.service import RunningService, wait_for
from pawgle.matcher.models import Match

MODEL = "efficientnet-lite0-dogid-1"
IDENTITIES = Path(__file__).parents[2] / "embeddings" / "tests" / "data" / "identities"
# Paris, and a point 2 km east of it.
PARIS = (48.8566, 2.3522)
NEAR_PARIS = (48.8566, 2.3795)


@cache
def photo_vectors() -> dict[str, np.ndarray]:
    """The identity model's vectors of a few shipped photos (two dogs), computed once per session."""
    from pawgle.embeddings.model.onnx_embedder import load_local_embedder

    names = ["950/950.1.jpg", "950/950.2.jpg", "950/950.3.jpg", "181/181.0.jpg", "181/181.3.jpg"]
    embedder = load_local_embedder()
    embeddings = embedder.embed([(IDENTITIES / name).read_bytes() for name in names])
    return {name: np.asarray(e.vector, dtype=np.float32) for name, e in zip(names, embeddings, strict=True)}


def mean_vector(*vectors: np.ndarray) -> np.ndarray:
    mean = np.mean(np.stack(vectors), axis=0)
    return mean / np.linalg.norm(mean)


def vector_at(base: np.ndarray, similarity: float, *, seed: int) -> np.ndarray:
    """A unit vector whose cosine with `base` is exactly `similarity`."""
    rng = np.random.default_rng(seed)
    other = rng.normal(size=base.shape)
    other -= other.dot(base) * base
    other /= np.linalg.norm(other)
    return similarity * base + math.sqrt(1 - similarity**2) * other


@dataclass
class Point:
    kind: str
    id: int
    vector: np.ndarray
    owner_id: int
    status: str = "active"
    pet_id: int | None = None
    latitude: float | None = None
    longitude: float | None = None


@dataclass
class CandidateIndex:
    """The vectors the answerer knows, and the requests it was asked."""

    points: dict[tuple[str, int], Point] = field(default_factory=dict)
    requests: list[NearestCandidatesRequest] = field(default_factory=list)
    model_version: str = MODEL
    # Subjects whose queries are received but not answered until `Matcher.release()`.
    held: set[tuple[str, int]] = field(default_factory=set)

    def add(self, point: Point) -> None:
        self.points[(point.kind, point.id)] = point

    def answer(self, request: NearestCandidatesRequest) -> NearestCandidates:
        self.requests.append(request)
        subject = self.points.get((request.subject_kind, request.subject_id))
        if subject is None:
            return NearestCandidates(model_version=self.model_version, embedded=False)
        hits = []
        for point in self.points.values():
            if point is subject or point.kind not in request.kinds:
                continue
            if point.kind == "report" and point.status not in request.report_statuses:
                continue
            if point.kind == "report" and request.radius_km is not None and subject.latitude is not None:
                far = haversine_km(
                    subject.latitude, subject.longitude or 0.0, point.latitude or 0.0, point.longitude or 0.0
                )
                if far > request.radius_km:
                    continue
            similarity = float(np.dot(subject.vector, point.vector))
            if similarity >= request.min_similarity:
                hits.append((similarity, point))
        hits.sort(key=lambda h: -h[0])
        return NearestCandidates(
            model_version=self.model_version,
            embedded=True,
            candidates=[
                Candidate(
                    kind=p.kind,  # type: ignore[arg-type]
                    id=p.id,
                    similarity=round(s, 4),
                    owner_id=p.owner_id,
                    status=p.status,
                    pet_id=p.pet_id,
                    latitude=p.latitude,
                    longitude=p.longitude,
                )
                for s, p in hits[: request.limit]
            ],
        )


@dataclass
class Matcher:
    """The running matcher, the answerer's index and helpers to feed events and read what came out."""

    service: RunningService
    index: CandidateIndex

    def start_answering(self) -> None:
        """Answer rpc.embeddings.nearest_candidates from `index`, on the real bus."""
        index, nc = self.index, self.service.app.state.nc

        async def subscribe() -> None:
            async def on_request(msg: Msg) -> None:
                request = NearestCandidatesRequest.model_validate_json(msg.data)
                if (request.subject_kind, request.subject_id) in index.held:
                    index.requests.append(request)
                    return  # never answered: the caller's own timeout decides
                await nc.publish(msg.reply, index.answer(request).model_dump_json().encode())

            await nc.subscribe(NEAREST_CANDIDATES.subject, cb=on_request)
            await nc.flush()

        self.service.portal.call(subscribe)

    def publish(self, data: EventData, *, occurred_at: datetime | None = None) -> Any:
        from pawgle.common.events.envelope import new_event

        envelope = new_event(data, producer="tests")
        if occurred_at is not None:
            envelope = envelope.model_copy(update={"occurred_at": occurred_at})
        return self.service.publish(data, envelope=envelope)

    def matches(self) -> list[Match]:
        with self.service.session() as session:
            return list(session.exec(select(Match).order_by(Match.id)).all())  # type: ignore[arg-type]

    def events(self, subject: str) -> list[dict[str, Any]]:
        with self.service.session() as session:
            rows = session.exec(
                select(OutboxEvent).where(OutboxEvent.subject == subject).order_by(OutboxEvent.seq)
            ).all()  # type: ignore[arg-type]
        return [json.loads(row.payload)["data"] for row in rows]

    def idle(self) -> None:
        """Wait until every consumer handled what was published and the matching queue is empty."""
        for event_type in self.service.app.state.handlers.event_types:
            self.service.wait_until_handled(event_type)
        from pawgle.matcher import repository

        def empty() -> bool:
            with self.service.session() as session:
                return repository.pending_jobs(session) == 0

        wait_for(empty, timeout_s=10, message="matching jobs still queued")

    # --- builders --------------------------------------------------------------------------------

    def pet(self, pet_id: int, owner_id: int, vector: np.ndarray, *, type: str = "Dogs", name: str = "Rex") -> None:
        self.index.add(Point("pet", pet_id, vector, owner_id))
        self.publish(
            PetCreated(pet_id=pet_id, owner_id=owner_id, name=name, type=type, breed="Mixed", category="Domestic")
        )

    def report(
        self,
        report_id: int,
        reporter_id: int,
        status: str,
        vector: np.ndarray | None,
        *,
        at: tuple[float, float] = PARIS,
        type: str = "Dogs",
        pet_id: int | None = None,
        reported_at: datetime | None = None,
        name: str = "Rex",
    ) -> None:
        if vector is not None:
            self.index.add(Point("report", report_id, vector, reporter_id, status, pet_id, at[0], at[1]))
        filed = ReportFiled(
            report_id=report_id,
            reporter_id=reporter_id,
            status=status,  # type: ignore[arg-type]
            latitude=at[0],
            longitude=at[1],
            animal_name=name,
            type=type,
            breed="Mixed",
            category="Domestic",
            pet_id=pet_id,
            pet_owner_id=None,
            reported_at=reported_at or datetime.now(UTC),
        )
        self.publish(filed)

    def embedded(self, kind: str, subject_id: int, owner_id: int) -> None:
        """What the embeddings service says once the subject's photos are vectors (the matcher's cue)."""
        if kind == "pet":
            self.publish(PetEmbedded(pet_id=subject_id, owner_id=owner_id, model_version=MODEL, vector_count=2))
        else:
            self.publish(ReportEmbedded(report_id=subject_id, reporter_id=owner_id, model_version=MODEL))
