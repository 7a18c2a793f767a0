"""The Qdrant Edge adapter (`qdrant-edge-py`): Qdrant's own engine in-process, one shard folder per collection.

Unlike qdrant-client's local mode (a brute-force scan in numpy), Edge keeps payload indexes and builds HNSW
segments (`optimize`), and its shards are snapshots a Qdrant server can restore.
"""

from __future__ import annotations

import shutil
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import qdrant_edge as edge

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


def _has_id(ids: list[str]) -> Any:
    return edge.HasIdCondition(point_ids=set(ids))


def _vector_of(record: Any) -> np.ndarray:
    vector = record.vector
    if isinstance(vector, dict):
        vector = vector.get("", next(iter(vector.values())))
    return np.asarray(vector, dtype=np.float32)


class EdgeStore:
    """Collections as Qdrant Edge shards under one folder."""

    name = "qdrant-edge"

    def __init__(self, root: Path) -> None:
        self.root = root
        root.mkdir(parents=True, exist_ok=True)
        self._shards: dict[str, Any] = {}
        # Edge shards take concurrent reads, but updates and (re)opening are serialised here.
        self._lock = threading.RLock()

    def _shard(self, collection: str) -> Any:
        with self._lock:
            shard = self._shards.get(collection)
            if shard is None:
                folder = self.root / collection
                if not folder.is_dir():
                    raise VectorStoreError(f"collection {collection} does not exist")
                try:
                    shard = edge.EdgeShard.load(str(folder))
                except Exception as exc:  # the engine raises plain exceptions
                    raise VectorStoreError(f"Qdrant Edge could not open {folder}: {exc}") from exc
                self._shards[collection] = shard
            return shard

    def _update(self, collection: str, operation: Any) -> None:
        shard = self._shard(collection)
        with self._lock:
            try:
                shard.update(operation)
            except Exception as exc:
                raise VectorStoreError(f"Qdrant Edge could not update {collection}: {exc}") from exc

    def ensure_collection(self, collection: str, dimension: int) -> None:
        """Create the shard and its payload indexes if missing."""
        with self._lock:
            folder = self.root / collection
            if folder.is_dir():
                return
            config = edge.EdgeConfig(vectors=edge.EdgeVectorParams(size=dimension, distance=edge.Distance.Cosine))
            self._shards[collection] = edge.EdgeShard.create(str(folder), config)
            schemas = [
                *((key, edge.PayloadSchemaType.Keyword) for key in KEYWORD_FIELDS),
                *((key, edge.PayloadSchemaType.Integer) for key in INTEGER_FIELDS),
                (GEO_FIELD, edge.PayloadSchemaType.Geo),
            ]
            for key, schema in schemas:
                self._update(collection, edge.UpdateOperation.create_field_index(key, schema))

    def collections(self) -> list[str]:
        """Names of the shard folders."""
        return sorted(entry.name for entry in self.root.iterdir() if entry.is_dir())

    def drop_collection(self, collection: str) -> None:
        """Close and delete a shard folder."""
        with self._lock:
            shard = self._shards.pop(collection, None)
            if shard is not None:
                shard.close()
            shutil.rmtree(self.root / collection, ignore_errors=True)

    def upsert(self, collection: str, points: Sequence[VectorPoint]) -> None:
        """Insert or overwrite points by id."""
        if not points:
            return
        batch = [edge.Point(p.id, as_unit_list(p.vector), dict(p.payload)) for p in points]
        self._update(collection, edge.UpdateOperation.upsert_points(batch))

    def delete_subject(self, collection: str, kind: Kind, subject_id: int) -> None:
        """Remove every point of one pet or report."""
        self._update(collection, edge.UpdateOperation.delete_points_by_filter(subject_filter(edge, kind, subject_id)))

    def set_subject_payload(self, collection: str, kind: Kind, subject_id: int, values: Mapping[str, Any]) -> None:
        """Change payload fields on every point of one pet or report."""
        operation = edge.UpdateOperation.set_payload_by_filter(subject_filter(edge, kind, subject_id), dict(values))
        self._update(collection, operation)

    def subject_points(self, collection: str, kind: Kind, subject_id: int) -> list[VectorPoint]:
        """Every point of one pet or report, with vectors."""
        request = edge.ScrollRequest(
            limit=_SCROLL_PAGE, filter=subject_filter(edge, kind, subject_id), with_payload=True, with_vector=True
        )
        records, _ = self._shard(collection).scroll(request)
        points = [VectorPoint(str(r.id), _vector_of(r), dict(r.payload or {})) for r in records]
        return sorted(points, key=lambda point: point.id)

    def payloads(self, collection: str, ids: Sequence[str]) -> dict[str, dict[str, Any]]:
        """The payloads of the points with these ids that exist, by id."""
        if not ids:
            return {}
        try:
            records = self._shard(collection).retrieve(list(ids), True, False)
        except VectorStoreError:
            raise
        except Exception as exc:
            raise VectorStoreError(f"Qdrant Edge could not read {collection}: {exc}") from exc
        return {str(r.id): dict(r.payload or {}) for r in records}

    def search(self, collection: str, query: VectorQuery) -> list[VectorHit]:
        """Mean vectors nearest to the query, best first."""
        request = edge.QueryRequest(
            limit=query.limit,
            query=edge.Query.Nearest(as_unit_list(query.vector)),
            filter=query_filter(edge, query, _has_id),
            with_payload=True,
            score_threshold=query.min_score,
        )
        try:
            found = self._shard(collection).query(request)
        except VectorStoreError:
            raise
        except Exception as exc:
            raise VectorStoreError(f"Qdrant Edge could not search {collection}: {exc}") from exc
        return [VectorHit(str(p.id), float(p.score), dict(p.payload or {})) for p in found]

    def count(self, collection: str, *, role: Role | None = None, kind: Kind | None = None) -> int:
        """How many points of one role and kind the shard holds."""
        request = edge.CountRequest(exact=True, filter=role_kind_filter(edge, role, kind))
        return int(self._shard(collection).count(request))

    def optimize(self) -> None:
        """Build the indexed segments of every open shard (blocking; a periodic job runs it)."""
        for collection in list(self._shards):
            # Not under the lock: the shard's own segment holder lets updates and searches go on meanwhile,
            # as on a server (building HNSW over 20,000 vectors takes about 40 s on two busy cores).
            shard = self._shard(collection)
            shard.optimize()
            shard.flush()

    def close(self) -> None:
        """Flush and close every shard."""
        with self._lock:
            for shard in self._shards.values():
                shard.flush()
                shard.close()
            self._shards.clear()
