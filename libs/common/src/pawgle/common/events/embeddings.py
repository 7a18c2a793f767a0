"""Events of the embeddings service: verdicts on photos of pets (stream PETS) and reports (REPORTS), failures.

Also the request-reply endpoint other services call (the matcher's nearest-candidates query) and its models.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from pawgle.common.bus.rpc import Endpoint
from pawgle.common.events.envelope import EventData, event_model


@event_model
class PetEmbedded(EventData):
    event_type = "pet.embedded"
    pet_id: int
    owner_id: int
    model_version: str
    vector_count: int


@event_model
class ReportEmbedded(EventData):
    event_type = "report.embedded"
    report_id: int
    reporter_id: int
    model_version: str


@event_model
class EmbeddingFailed(EventData):
    """The image model gave up on a pet's or report's photos after its retries."""

    event_type = "embedding.failed"
    subject_kind: Literal["pet", "report"]
    subject_id: int
    owner_id: int
    name: str
    reason: str


# --- request-reply: the matcher's "nearest candidates" query (answered by the embeddings service) ---------


SubjectKind = Literal["pet", "report"]
ActiveStatus = Literal["lost", "found"]
_BOTH_KINDS: tuple[SubjectKind, ...] = ("pet", "report")
_BOTH_STATUSES: tuple[ActiveStatus, ...] = ("lost", "found")


class NearestCandidatesRequest(BaseModel):
    """Nearest pets and reports to one embedded pet's or report's mean vector, with the matcher's filters."""

    subject_kind: Literal["pet", "report"]
    subject_id: int
    kinds: list[SubjectKind] = Field(default_factory=lambda: list(_BOTH_KINDS), max_length=2)
    # Statuses a report candidate may have (contract 6.1: the opposite status, active only).
    report_statuses: list[ActiveStatus] = Field(default_factory=lambda: list(_BOTH_STATUSES), max_length=2)
    # Reports farther than this from the subject's own position are left out (None: no distance filter;
    # pets carry no position and are never filtered by distance).
    radius_km: float | None = Field(None, gt=0, le=20_000)
    min_similarity: float = Field(0.6, ge=-1, le=1)
    limit: int = Field(10, ge=1, le=100)
    # True: only pets whose owner made them searchable (public image search); the matcher sees every pet.
    searchable_only: bool = False


class Candidate(BaseModel):
    """One candidate: a pet or a report, its cosine similarity, and for a report its linked pet."""

    kind: Literal["pet", "report"]
    id: int
    similarity: float
    owner_id: int
    status: str
    pet_id: int | None = None
    latitude: float | None = None
    longitude: float | None = None


class NearestCandidates(BaseModel):
    """The answer: best first; `embedded` is False when the subject has no vector (yet) in the active model."""

    model_version: str
    embedded: bool
    candidates: list[Candidate] = Field(default_factory=list)


NEAREST_CANDIDATES = Endpoint(
    "rpc.embeddings.nearest_candidates", request=NearestCandidatesRequest, response=NearestCandidates, timeout_s=3.0
)
