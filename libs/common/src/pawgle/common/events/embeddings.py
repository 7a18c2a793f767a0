"""Events of the embeddings service: verdicts on photos of pets (stream PETS) and reports (REPORTS), failures."""

from __future__ import annotations

from typing import Literal

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
