"""The qdrant-client adapter: a Qdrant server in production, or qdrant-client's own local mode (a folder)."""

from __future__ import annotations

import threading
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from qdrant_client import QdrantClient, models
from qdrant_client.http.exceptions import ResponseHandlingException, UnexpectedResponse

from pawgle.embeddings.vectors.filters import query_filter, role_kind_filter, subject_filter
from pawgle.embeddings.vectors.port import (
    GEO_FIELD,
    INTEGER_FIELDS,
    KEYWORD_FIELDS,
    Kind,
    Role,
    VectorHit,
    VectorPoint,
    VectorQuery,
    VectorStoreError,
    as_unit_list,
)

_SCROLL_PAGE = 256


def _has_id(ids: list[str]) -> models.HasIdCondition:
    return models.HasIdCondition(has_id=list(ids))


class QdrantClientStore:
    """Vectors in Qdrant through qdrant-client: `url` for a server (with its API key), `path` for local mode."""

    def __init__(
        self,
        *,
        url: str | None = None,
        api_key: str | None = None,
        path: Path | None = None,
        timeout_s: float = 10.0,
    ) -> None:
        if url:
            self.name = "qdrant-server"
            self.client = QdrantClient(url=url, api_key=api_key or None, timeout=int(timeout_s))
        elif path is not None:
            self.name = "qdrant-local"
            path.mkdir(parents=True, exist_ok=True)
            self.client = QdrantClient(path=str(path))
        else:
            self.name = "qdrant-memory"
            self.client = QdrantClient(location=":memory:")
        # Local mode is one Python object over a dict of numpy arrays, not safe for concurrent writers.
        self._lock = threading.RLock() if self.name != "qdrant-server" else _NoLock()

    def _call(self, what: str, fn: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            with self._lock:
                return fn(*args, **kwargs)
        except (ResponseHandlingException, UnexpectedResponse, OSError) as exc:
            raise VectorStoreError(f"Qdrant could not {what}: {exc}") from exc

    def ensure_collection(self, collection: str, dimension: int) -> None:
        """Create the collection (cosine) and its payload indexes if missing."""
        if self._call("check a collection", self.client.collection_exists, collection):
            return
        params = models.VectorParams(size=dimension, distance=models.Distance.COSINE)
        self._call("create a collection", self.client.create_collection, collection, vectors_config=params)
        schemas: list[tuple[str, models.PayloadSchemaType]] = [
            *((key, models.PayloadSchemaType.KEYWORD) for key in KEYWORD_FIELDS),
            *((key, models.PayloadSchemaType.INTEGER) for key in INTEGER_FIELDS),
            (GEO_FIELD, models.PayloadSchemaType.GEO),
        ]
        with warnings.catch_warnings():
            # Local mode warns that it ignores payload indexes (it scans); a server builds them.
            warnings.simplefilter("ignore", UserWarning)
            for key, schema in schemas:
                self._call("index a payload field", self.client.create_payload_index, collection, key, schema)

    def collections(self) -> list[str]:
        """Names of the collections that exist."""
        found = self._call("list collections", self.client.get_collections)
        return sorted(item.name for item in found.collections)

    def drop_collection(self, collection: str) -> None:
        """Delete a collection (no error when missing)."""
        self._call("drop a collection", self.client.delete_collection, collection)

    def upsert(self, collection: str, points: Sequence[VectorPoint]) -> None:
        """Insert or overwrite points by id, waiting until they are searchable."""
        if not points:
            return
        structs = [models.PointStruct(id=p.id, vector=as_unit_list(p.vector), payload=dict(p.payload)) for p in points]
        self._call("store vectors", self.client.upsert, collection, points=structs, wait=True)

    def delete_subject(self, collection: str, kind: Kind, subject_id: int) -> None:
        """Remove every point of one pet or report."""
        selector = models.FilterSelector(filter=subject_filter(models, kind, subject_id))
        self._call("delete vectors", self.client.delete, collection, points_selector=selector, wait=True)

    def set_subject_payload(self, collection: str, kind: Kind, subject_id: int, values: Mapping[str, Any]) -> None:
        """Change payload fields on every point of one pet or report."""
        selector = models.FilterSelector(filter=subject_filter(models, kind, subject_id))
        self._call("update payloads", self.client.set_payload, collection, dict(values), points=selector, wait=True)

    def subject_points(self, collection: str, kind: Kind, subject_id: int) -> list[VectorPoint]:
        """Every point of one pet or report, with vectors."""
        records, _ = self._call(
            "read vectors",
            self.client.scroll,
            collection,
            scroll_filter=subject_filter(models, kind, subject_id),
            limit=_SCROLL_PAGE,
            with_vectors=True,
            with_payload=True,
        )
        points = [
            VectorPoint(str(r.id), np.asarray(r.vector, dtype=np.float32), dict(r.payload or {})) for r in records
        ]
        return sorted(points, key=lambda point: point.id)

    def payloads(self, collection: str, ids: Sequence[str]) -> dict[str, dict[str, Any]]:
        """The payloads of the points with these ids that exist, by id."""
        if not ids:
            return {}
        records = self._call("read payloads", self.client.retrieve, collection, ids=list(ids), with_payload=True)
        return {str(r.id): dict(r.payload or {}) for r in records}

    def search(self, collection: str, query: VectorQuery) -> list[VectorHit]:
        """Mean vectors nearest to the query, best first."""
        found = self._call(
            "search",
            self.client.query_points,
            collection,
            query=as_unit_list(query.vector),
            query_filter=query_filter(models, query, _has_id),
            limit=query.limit,
            score_threshold=query.min_score,
            with_payload=True,
        )
        return [VectorHit(str(p.id), float(p.score), dict(p.payload or {})) for p in found.points]

    def count(self, collection: str, *, role: Role | None = None, kind: Kind | None = None) -> int:
        """How many points of one role and kind the collection holds."""
        result = self._call(
            "count", self.client.count, collection, count_filter=role_kind_filter(models, role, kind), exact=True
        )
        return int(result.count)

    def optimize(self) -> None:
        """Nothing to do: a server optimizes by itself, local mode has no index to build."""

    def close(self) -> None:
        """Close the client (local mode releases its folder lock)."""
        self.client.close()


class _NoLock:
    """A Qdrant server handles concurrency itself."""

    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> None:
        return None
