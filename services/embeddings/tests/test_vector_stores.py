"""The same behaviour from every vector store adapter: Qdrant Edge, qdrant-client local mode (and a server)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from pawgle.embeddings.vectors.edge_store import EdgeStore
from pawgle.embeddings.vectors.port import (
    GeoCircle,
    VectorPoint,
    VectorQuery,
    VectorStore,
    VectorStoreError,
    collection_name,
    point_id,
)
from pawgle.embeddings.vectors.qdrant_store import QdrantClientStore

DIM = 8
COLLECTION = collection_name("test-model-1")
# A real Qdrant server, when one is reachable (e.g. the compose stack): EMBEDDINGS_TEST_QDRANT_URL.
SERVER_URL = os.environ.get("EMBEDDINGS_TEST_QDRANT_URL")
ADAPTERS = ["edge", "local", pytest.param("server", marks=pytest.mark.skipif(not SERVER_URL, reason="no server"))]


@pytest.fixture(params=ADAPTERS)
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[VectorStore]:
    opened: VectorStore
    if request.param == "edge":
        opened = EdgeStore(tmp_path / "edge")
    elif request.param == "local":
        opened = QdrantClientStore(path=tmp_path / "local")
    else:
        opened = QdrantClientStore(url=SERVER_URL)
        opened.drop_collection(COLLECTION)
    opened.ensure_collection(COLLECTION, DIM)
    yield opened
    if request.param == "server":
        opened.drop_collection(COLLECTION)
    opened.close()


def unit(*values: float) -> np.ndarray:
    vector = np.zeros(DIM, dtype=np.float32)
    vector[: len(values)] = values
    return vector / np.linalg.norm(vector)


def mean_point(kind: str, subject_id: int, vector: np.ndarray, **payload: object) -> VectorPoint:
    base = {"kind": kind, "subject_id": subject_id, "role": "mean", "visibility": "searchable", "species": "dog"}
    return VectorPoint(point_id(kind, subject_id, "mean"), vector, {**base, **payload})


def test_nearest_first_with_cosine_scores(store: VectorStore) -> None:
    store.upsert(
        COLLECTION,
        [mean_point("pet", 1, unit(1, 0)), mean_point("pet", 2, unit(1, 1)), mean_point("pet", 3, unit(0, 1))],
    )
    hits = store.search(COLLECTION, VectorQuery(vector=unit(1, 0.1), limit=2))
    assert [hit.payload["subject_id"] for hit in hits] == [1, 2]
    assert hits[0].score == pytest.approx(float(unit(1, 0.1) @ unit(1, 0)), abs=1e-4)


def test_filters_species_status_searchable_and_exclusion(store: VectorStore) -> None:
    store.upsert(
        COLLECTION,
        [
            mean_point("pet", 1, unit(1, 0)),
            mean_point("pet", 2, unit(1, 0), species="cat"),
            mean_point("pet", 3, unit(1, 0), visibility="hidden"),
            mean_point("report", 4, unit(1, 0), status="lost"),
            mean_point("report", 5, unit(1, 0), status="resolved"),
        ],
    )
    query = VectorQuery(vector=unit(1, 0), species="dog", statuses={"report": ("lost", "found")})
    assert sorted(hit.payload["subject_id"] for hit in store.search(COLLECTION, query)) == [1, 4]
    excluded = VectorQuery(vector=unit(1, 0), kinds=("report",), exclude_ids=(point_id("report", 4, "mean"),))
    assert [hit.payload["subject_id"] for hit in store.search(COLLECTION, excluded)] == [5]


def test_geo_filter_keeps_reports_inside_the_circle_and_pets_outside_its_reach(store: VectorStore) -> None:
    paris, lyon = {"lat": 48.8566, "lon": 2.3522}, {"lat": 45.764, "lon": 4.8357}
    store.upsert(
        COLLECTION,
        [
            mean_point("report", 1, unit(1, 0), status="found", position=paris),
            mean_point("report", 2, unit(1, 0), status="found", position=lyon),
            mean_point("pet", 3, unit(1, 0)),
        ],
    )
    near_paris = GeoCircle(latitude=48.86, longitude=2.35, radius_km=50)
    query = VectorQuery(vector=unit(1, 0), near=near_paris)
    assert sorted(hit.payload["subject_id"] for hit in store.search(COLLECTION, query)) == [1, 3]
    only_reports = VectorQuery(vector=unit(1, 0), kinds=("report",), near=near_paris)
    assert [hit.payload["subject_id"] for hit in store.search(COLLECTION, only_reports)] == [1]


def test_delete_subject_removes_photos_and_mean(store: VectorStore) -> None:
    photos = [
        VectorPoint(point_id("pet", 7, "photo", i), unit(1, i), {"kind": "pet", "subject_id": 7, "role": "photo"})
        for i in range(3)
    ]
    store.upsert(COLLECTION, [*photos, mean_point("pet", 7, unit(1, 1)), mean_point("pet", 8, unit(1, 1))])
    assert store.count(COLLECTION, role="photo") == 3
    store.delete_subject(COLLECTION, "pet", 7)
    assert store.subject_points(COLLECTION, "pet", 7) == []
    assert store.count(COLLECTION) == 1


def test_payload_update_reflags_without_touching_vectors(store: VectorStore) -> None:
    store.upsert(COLLECTION, [mean_point("report", 9, unit(0, 1), status="lost")])
    store.set_subject_payload(COLLECTION, "report", 9, {"status": "resolved"})
    (point,) = store.subject_points(COLLECTION, "report", 9)
    assert point.payload["status"] == "resolved"
    np.testing.assert_allclose(point.vector, unit(0, 1), atol=1e-6)
    active = VectorQuery(vector=unit(0, 1), statuses={"report": ("lost", "found")})
    assert store.search(COLLECTION, active) == []


def test_upsert_by_id_overwrites_and_collections_are_listed(store: VectorStore) -> None:
    store.upsert(COLLECTION, [mean_point("pet", 1, unit(1, 0))])
    store.upsert(COLLECTION, [mean_point("pet", 1, unit(0, 1))])
    assert store.count(COLLECTION) == 1
    other = collection_name("test-model-2")
    store.ensure_collection(other, DIM)
    assert {COLLECTION, other} <= set(store.collections())
    store.drop_collection(other)
    assert other not in store.collections()


def test_a_vector_that_is_not_unit_length_is_refused(store: VectorStore) -> None:
    with pytest.raises(VectorStoreError, match="normalised"):
        store.upsert(COLLECTION, [mean_point("pet", 1, np.ones(DIM, dtype=np.float32))])
    with pytest.raises(VectorStoreError, match="normalised"):
        store.upsert(COLLECTION, [mean_point("pet", 1, np.full(DIM, np.nan, dtype=np.float32))])


def test_payloads_by_id_leave_missing_points_out(store: VectorStore) -> None:
    store.upsert(COLLECTION, [mean_point("pet", 1, unit(1, 0), photos="abc"), mean_point("report", 2, unit(0, 1))])
    wanted = [point_id("pet", 1, "mean"), point_id("report", 2, "mean"), point_id("pet", 3, "mean")]
    found = store.payloads(COLLECTION, wanted)
    assert set(found) == set(wanted[:2])
    assert found[wanted[0]]["photos"] == "abc"
    assert store.payloads(COLLECTION, []) == {}
