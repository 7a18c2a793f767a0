"""The vector store port: what the embeddings service stores and asks, whichever engine holds the vectors.

One collection per model (its name carries the model's name and version), holding the pets' and reports'
vectors side by side: one point per photo (`role` "photo") and one mean-pooled, normalised point per pet or
report (`role` "mean"), which is what searches compare against. Payloads hold only what filters need and
nothing personal: kind, subject id, status, visibility, species, breed tags, owner id, position (reports),
model.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

import numpy as np

Kind = Literal["pet", "report"]
Role = Literal["photo", "mean"]

# Payload fields that get an index before the first point is stored (Qdrant plans filtered searches with them).
# `visibility` is "searchable" or "hidden", a keyword and not a bool: qdrant-edge-py 0.9 turns a Python True in
# a match condition into the integer 1, which never matches a stored boolean.
KEYWORD_FIELDS = ("kind", "role", "status", "species", "visibility", "model", "model_version")
INTEGER_FIELDS = ("subject_id", "owner_id")
GEO_FIELD = "position"

# uuid5 namespace of point ids: the same (model, subject, photo) always lands on the same point, so a redelivered
# event or a replay overwrites instead of duplicating.
_POINT_NAMESPACE = uuid.UUID("5b0c3a52-8d3e-4f1e-9a0c-6f1f3f1d2a77")


def collection_name(model_key: str, *, prefix: str = "pawgle") -> str:
    """`pawgle-<model name>-<model version>`, in the characters every adapter accepts in a name."""
    return f"{prefix}-{re.sub(r'[^A-Za-z0-9_-]', '_', model_key)}"


def point_id(kind: Kind, subject_id: int, role: Role, index: int = 0) -> str:
    """The stable id of one pet's or report's photo vector (or of its mean vector)."""
    return str(uuid.uuid5(_POINT_NAMESPACE, f"{kind}:{subject_id}:{role}:{index}"))


@dataclass(frozen=True)
class GeoCircle:
    """A circle on the map: the centre in degrees and the radius in kilometres."""

    latitude: float
    longitude: float
    radius_km: float


@dataclass(frozen=True)
class VectorPoint:
    """One stored vector with its payload."""

    id: str
    vector: np.ndarray
    payload: Mapping[str, Any]


@dataclass(frozen=True)
class VectorHit:
    """A search result: the point's id, cosine similarity and payload."""

    id: str
    score: float
    payload: Mapping[str, Any]


@dataclass(frozen=True)
class VectorQuery:
    """A nearest-neighbour search over mean vectors, restricted by payload filters (all optional)."""

    vector: np.ndarray
    limit: int = 10
    kinds: tuple[Kind, ...] = ("pet", "report")
    # Per kind, the statuses that may be returned (a kind absent here is not restricted by status).
    statuses: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    species: str | None = None
    # Only points inside this circle; points without a position (pets) are then left out unless
    # `near_applies_to` excludes their kind from the geo filter.
    near: GeoCircle | None = None
    near_applies_to: tuple[Kind, ...] = ("report",)
    searchable_only: bool = True
    exclude_ids: tuple[str, ...] = ()
    min_score: float | None = None


class VectorStoreError(Exception):
    """The vector store could not do what was asked (unreachable, corrupt, misconfigured)."""


class VectorStore(Protocol):
    """Blocking vector store calls: run them in a thread from async code."""

    name: str

    def ensure_collection(self, collection: str, dimension: int) -> None:
        """Create the collection and its payload indexes if missing (before any point is stored)."""
        ...

    def collections(self) -> list[str]:
        """Names of the collections that exist."""
        ...

    def drop_collection(self, collection: str) -> None:
        """Delete a collection and all its points (no error when missing)."""
        ...

    def upsert(self, collection: str, points: Sequence[VectorPoint]) -> None:
        """Insert or overwrite points by id."""
        ...

    def delete_subject(self, collection: str, kind: Kind, subject_id: int) -> None:
        """Remove every point (photos and mean) of one pet or report."""
        ...

    def set_subject_payload(self, collection: str, kind: Kind, subject_id: int, values: Mapping[str, Any]) -> None:
        """Change payload fields on every point of one pet or report (status, searchable, position)."""
        ...

    def subject_points(self, collection: str, kind: Kind, subject_id: int) -> list[VectorPoint]:
        """Every point of one pet or report, with vectors, ordered by id."""
        ...

    def payloads(self, collection: str, ids: Sequence[str]) -> dict[str, dict[str, Any]]:
        """The payloads of the points with these ids that exist, by id (missing ids are left out)."""
        ...

    def search(self, collection: str, query: VectorQuery) -> list[VectorHit]:
        """Mean vectors nearest to `query.vector` by cosine similarity, best first."""
        ...

    def count(self, collection: str, *, role: Role | None = None, kind: Kind | None = None) -> int:
        """How many points (of one role and kind, when given) the collection holds."""
        ...

    def optimize(self) -> None:
        """Build indexes over what was stored lately (blocking; a no-op where the engine does it itself)."""
        ...

    def close(self) -> None:
        """Release files and connections."""
        ...


def as_unit_list(vector: np.ndarray) -> list[float]:
    """A float32 vector as the list of floats the engines take, refusing anything that is not unit length."""
    array = np.asarray(vector, dtype=np.float32).ravel()
    norm = float(np.linalg.norm(array))
    if not np.isfinite(norm) or abs(norm - 1.0) > 1e-3:
        raise VectorStoreError(f"vectors must be L2-normalised (norm {norm:.4f})")
    return [float(value) for value in array]
