"""The vectors of one model's collection: how a pet's or report's photos become points, and their payloads."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from pawgle.embeddings.model.port import ImageEmbedding, ModelInfo
from pawgle.embeddings.models import Subject
from pawgle.embeddings.vectors.port import Kind, VectorPoint, VectorStore, collection_name, point_id

ACTIVE_REPORT_STATUSES = ("lost", "found")


def mean_vector(vectors: Sequence[np.ndarray]) -> np.ndarray:
    """The normalised mean of unit vectors: one vector per pet or report."""
    mean = np.mean(np.stack([np.asarray(v, dtype=np.float32) for v in vectors]), axis=0)
    norm = float(np.linalg.norm(mean))
    if norm == 0.0 or not np.isfinite(norm):
        raise ValueError("photo vectors cancel out: no mean vector")
    return (mean / norm).astype(np.float32)


def photos_fingerprint(image_keys: Sequence[str]) -> str:
    """A short digest of a subject's photo keys (in the payload: which photos a point was made from)."""
    return hashlib.sha256("\n".join(image_keys).encode()).hexdigest()[:16]


def subject_flags(subject: Subject) -> dict[str, Any]:
    """The payload fields that change without new photos (status, visibility, position)."""
    flags: dict[str, Any] = {
        "status": subject.status,
        "visibility": "searchable" if subject.searchable else "hidden",
        "owner_id": subject.owner_id,
    }
    if subject.pet_id is not None:
        flags["pet_id"] = subject.pet_id
    if subject.latitude is not None and subject.longitude is not None:
        flags["position"] = {"lat": subject.latitude, "lon": subject.longitude}
    return flags


@dataclass
class VectorIndex:
    """One model's collection in a vector store."""

    store: VectorStore
    model: ModelInfo
    prefix: str = "pawgle"

    @property
    def collection(self) -> str:
        """`pawgle-<model>-<version>`."""
        return collection_name(self.model.key, prefix=self.prefix)

    def ensure(self) -> None:
        """Create the collection and its payload indexes (before any vector is stored)."""
        self.store.ensure_collection(self.collection, self.model.dimension)

    def points_for(self, subject: Subject, embeddings: Sequence[ImageEmbedding]) -> list[VectorPoint]:
        """One point per photo and the mean point, all with the same payload but for role and photo index."""
        kind: Kind = "pet" if subject.kind == "pet" else "report"
        species = _majority_species(embeddings)
        breeds = sorted({tag.label for e in embeddings for tag in e.breeds[:2]})
        base = {
            "kind": kind,
            "subject_id": subject.subject_id,
            "species": species,
            "breeds": breeds,
            "model": self.model.name,
            "model_version": self.model.version,
            "photos": photos_fingerprint(subject.image_keys),
            **subject_flags(subject),
        }
        points = [
            VectorPoint(point_id(kind, subject.subject_id, "photo", i), e.vector, {**base, "role": "photo", "photo": i})
            for i, e in enumerate(embeddings)
        ]
        mean = mean_vector([e.vector for e in embeddings])
        points.append(VectorPoint(point_id(kind, subject.subject_id, "mean"), mean, {**base, "role": "mean"}))
        return points

    def replace_subject(self, subject: Subject, embeddings: Sequence[ImageEmbedding]) -> int:
        """Store a subject's vectors in place of any older ones; returns how many photo vectors."""
        kind: Kind = "pet" if subject.kind == "pet" else "report"
        points = self.points_for(subject, embeddings)
        self.store.delete_subject(self.collection, kind, subject.subject_id)
        self.store.upsert(self.collection, points)
        return len(embeddings)

    def delete_subject(self, kind: Kind, subject_id: int) -> None:
        """Remove a subject's vectors from this model's collection."""
        self.store.delete_subject(self.collection, kind, subject_id)

    def sibling_collections(self) -> list[str]:
        """Every model's collection under this prefix (this one first): the current one and any being filled.

        Only on a Qdrant server, which many processes share. An embedded store's other collections may be open
        in a reindex process; that one copies flags and removes deleted subjects in its catch-up passes.
        """
        if self.store.name != "qdrant-server":
            return [self.collection]
        others = [c for c in self.store.collections() if c.startswith(f"{self.prefix}-") and c != self.collection]
        return [self.collection, *sorted(others)]

    def forget_subject(self, kind: Kind, subject_id: int) -> None:
        """A deleted pet or report: its vectors go from every model's collection, so a reindex keeps no ghost."""
        for collection in self.sibling_collections():
            self.store.delete_subject(collection, kind, subject_id)

    def reflag(self, subject: Subject) -> None:
        """Copy a subject's status, visibility and position onto its vectors in every model's collection.

        Flags do not depend on the model, so a collection being filled by a reindex stays as current as the
        live one; only new photos need the model (the catch-up job, catchup.py, covers those).
        """
        kind: Kind = "pet" if subject.kind == "pet" else "report"
        for collection in self.sibling_collections():
            self.store.set_subject_payload(collection, kind, subject.subject_id, subject_flags(subject))


def _majority_species(embeddings: Sequence[ImageEmbedding]) -> str:
    counts: dict[str, int] = {}
    for embedding in embeddings:
        counts[embedding.species] = counts.get(embedding.species, 0) + 1
    return max(sorted(counts), key=lambda species: counts[species]) if counts else "other"
