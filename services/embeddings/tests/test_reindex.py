"""Changing model: a replay into a new collection, the ops command with progress, the catch-up after a switch."""

from __future__ import annotations

import numpy as np
import pytest
from sqlalchemy import update
from sqlmodel import select

from pawgle.common.testing.service import RunningService, wait_for
from pawgle.embeddings import ops_commands
from pawgle.embeddings.catchup import catch_up_all
from pawgle.embeddings.index import VectorIndex
from pawgle.embeddings.models import EmbeddingJob, Subject
from pawgle.embeddings.reindex import reindex

from .service_fixtures import store_photo
from .test_pipeline import feature_status, pet_created, points, subject


def embedded_pet(running: RunningService, pet_id: int, *photos: str) -> list[str]:
    keys = [store_photo(running, name) for name in photos]
    running.publish(pet_created(pet_id, keys))
    wait_for(lambda: feature_status(running, "pet", pet_id) == "completed", message=f"pet {pet_id} not embedded")
    return keys


def test_a_reindex_into_a_new_collection_gives_the_same_vectors(embeddings: RunningService) -> None:
    embedded_pet(embeddings, 30, "dog_afhq_flickr_000054.jpg", "cat_chelsea.jpg")
    embedded_pet(embeddings, 31, "cat_afhq_flickr_000076.jpg")
    live: VectorIndex = embeddings.app.state.index
    fresh = VectorIndex(live.store, live.model, prefix="rebuilt")
    seen: list[tuple[str, int, int]] = []
    state = embeddings.app.state
    report = reindex(
        state.engine, embedder=state.embedder, index=fresh, blobs=state.blobs, progress=lambda *a: seen.append(a)
    )
    assert (report.embedded, report.failed) == (2, [])
    assert seen[-1] == ("fill", 2, 2)
    assert fresh.collection != live.collection
    for pet_id in (30, 31):
        before = live.store.subject_points(live.collection, "pet", pet_id)
        after = fresh.store.subject_points(fresh.collection, "pet", pet_id)
        assert [p.id for p in before] == [p.id for p in after]
        for old, new in zip(before, after, strict=True):
            np.testing.assert_allclose(old.vector, new.vector, atol=1e-5)
            assert old.payload == new.payload
    # Run again (an interrupted reindex resumed): nothing is embedded twice.
    again = reindex(state.engine, embedder=state.embedder, index=fresh, blobs=state.blobs)
    assert (again.embedded, again.unchanged) == (0, 2)


def test_the_ops_command_fills_a_new_collection_with_progress(
    embeddings: RunningService, request: pytest.FixtureRequest, capsys: pytest.CaptureFixture[str]
) -> None:
    if "local" in request.node.callspec.id:
        pytest.skip("qdrant-client's local mode locks its folder: reindex there runs with the service stopped")
    embedded_pet(embeddings, 40, "dog_afhq_flickr_000054.jpg")
    settings = embeddings.settings.model_copy(update={"collection_prefix": "next"})
    state = embeddings.app.state
    assert ops_commands.main(["reindex", "--model", "generic"], settings=settings, embedder=state.embedder) == 0
    out = capsys.readouterr().out
    collection = f"next-{state.index.model.key}"
    assert f"reindex {collection} fill: 1/1 pets and reports" in out
    assert "1 embedded, 0 already there, 0 removed, 0 failed" in out
    assert ops_commands.main(["collections"], settings=settings) == 0
    assert f"{collection}\t1 pets and reports" in capsys.readouterr().out
    (mean,) = [p for p in points(embeddings, "pet", 40) if p.payload["role"] == "mean"]
    from pawgle.embeddings.vectors.edge_store import EdgeStore

    other = EdgeStore(settings.vector_folder() / "edge")
    try:
        (copy,) = [p for p in other.subject_points(collection, "pet", 40) if p.payload["role"] == "mean"]
    finally:
        other.close()
    np.testing.assert_allclose(mean.vector, copy.vector, atol=1e-5)


def test_after_a_switch_the_catch_up_marks_what_is_there_and_embeds_what_is_not(embeddings: RunningService) -> None:
    embedded_pet(embeddings, 50, "dog_afhq_flickr_000054.jpg")
    embedded_pet(embeddings, 51, "cat_chelsea.jpg")
    state = embeddings.app.state
    new_photo = store_photo(embeddings, "cat_afhq_flickr_000076.jpg")
    # As left by pods of the previous model: both embedded by "old-model-1", and pet 51's photos changed
    # there (its vectors in this model's collection are of the photo it had before).
    with embeddings.session() as session:
        session.execute(update(Subject).values(model_key="old-model-1"))
        session.execute(update(Subject).where(Subject.subject_id == 51).values(image_keys=[new_photo]))
        session.commit()
    assert catch_up_all(state.engine, index=state.index) == (1, 1)
    marked = subject(embeddings, "pet", 50)
    assert marked is not None
    assert marked.model_key == state.index.model.key
    wait_for(lambda: feature_status(embeddings, "pet", 51) == "completed", message="pet 51 not re-embedded")
    redone = subject(embeddings, "pet", 51)
    assert redone is not None
    assert redone.model_key == state.index.model.key
    (mean,) = [p for p in points(embeddings, "pet", 51) if p.payload["role"] == "mean"]
    from pawgle.embeddings.index import photos_fingerprint

    assert mean.payload["photos"] == photos_fingerprint([new_photo])
    with embeddings.session() as session:
        assert session.exec(select(EmbeddingJob)).all() == []
    assert catch_up_all(state.engine, index=state.index) == (0, 0)
