"""Events in, vectors stored, events out: the consumers, the embedding worker and the vector store together."""

from __future__ import annotations

import numpy as np
from sqlmodel import select

from pawgle.common.events.pets import PetCreated, PetDeleted, PetUpdated
from pawgle.common.events.reports import ReportFiled, ReportResolved
from pawgle.common.testing.service import RunningService, wait_for
from pawgle.embeddings import ingest
from pawgle.embeddings.index import photos_fingerprint
from pawgle.embeddings.models import EmbeddingJob, Subject

from .service_fixtures import SwitchableEmbedder, outbox_events, store_photo


def pet_created(pet_id: int, keys: list[str], *, owner_id: int = 5, is_public: bool = True) -> PetCreated:
    return PetCreated(
        pet_id=pet_id,
        owner_id=owner_id,
        name="Rex",
        type="Dogs",
        breed="Beagle",
        category="Domestic",
        is_public=is_public,
        image_keys=keys,
    )


def subject(running: RunningService, kind: str, subject_id: int) -> Subject | None:
    with running.session() as session:
        return session.get(Subject, (kind, subject_id))


def feature_status(running: RunningService, kind: str, subject_id: int) -> str | None:
    found = subject(running, kind, subject_id)
    return found.feature_status if found else None


def points(running: RunningService, kind: str, subject_id: int) -> list:
    index = running.app.state.index
    return index.store.subject_points(index.collection, kind, subject_id)


def test_a_new_pet_gets_one_vector_per_photo_and_a_normalised_mean_then_pet_embedded(
    embeddings: RunningService,
) -> None:
    keys = [store_photo(embeddings, "dog_afhq_flickr_000054.jpg"), store_photo(embeddings, "cat_chelsea.jpg")]
    embeddings.publish(pet_created(1, keys))
    wait_for(lambda: feature_status(embeddings, "pet", 1) == "completed", message="pet 1 not embedded")
    stored = points(embeddings, "pet", 1)
    assert sorted(p.payload["role"] for p in stored) == ["mean", "photo", "photo"]
    photos = [p.vector for p in stored if p.payload["role"] == "photo"]
    (mean,) = [p.vector for p in stored if p.payload["role"] == "mean"]
    expected = np.mean(photos, axis=0)
    np.testing.assert_allclose(mean, expected / np.linalg.norm(expected), atol=1e-5)
    payload = next(p.payload for p in stored if p.payload["role"] == "mean")
    model = embeddings.app.state.index.model
    assert payload["model"] == model.name
    assert payload["model_version"] == model.version
    assert model.key.replace(".", "_") in embeddings.app.state.index.collection
    assert "name" not in payload
    assert "Rex" not in str(payload)
    embedded = wait_for(lambda: outbox_events(embeddings, "pet.embedded"))
    assert embedded == [{"pet_id": 1, "owner_id": 5, "model_version": model.key, "vector_count": 2}]


def test_photos_of_several_events_share_model_batches(embeddings: RunningService, embedder: SwitchableEmbedder) -> None:
    key = store_photo(embeddings, "dog_afhq_flickr_000054.jpg")
    # A wide batching window, so a busy machine cannot split the batch by scheduling alone.
    embeddings.app.state.batcher.max_wait = 0.5
    # Six pets queued in one consumer transaction (as a batch of delivered events is): one claim takes them all.
    with embeddings.session() as session:
        for pet_id in range(10, 16):
            ingest.on_pet_snapshot(
                session, index=embeddings.app.state.index, data=pet_created(pet_id, [key]), photos_changed=True
            )
        session.commit()
    wait_for(lambda: all(feature_status(embeddings, "pet", i) == "completed" for i in range(10, 16)), timeout_s=20)
    assert embedder.photos_embedded == 6
    assert embedder.calls == 1


def test_a_model_that_keeps_failing_gives_embedding_failed_and_no_vector(
    embeddings: RunningService, embedder: SwitchableEmbedder
) -> None:
    embedder.failing = True
    embeddings.publish(pet_created(2, [store_photo(embeddings, "dog_afhq_flickr_000054.jpg")]))
    wait_for(lambda: feature_status(embeddings, "pet", 2) == "failed", message="pet 2 not failed")
    assert points(embeddings, "pet", 2) == []
    assert embedder.calls >= 3
    failed = wait_for(lambda: outbox_events(embeddings, "embedding.failed"))
    assert failed == [{"subject_kind": "pet", "subject_id": 2, "owner_id": 5, "name": "Rex", "reason": "model"}]
    assert outbox_events(embeddings, "pet.embedded") == []


def test_a_photo_missing_from_the_blob_store_fails_at_once_without_a_vector(embeddings: RunningService) -> None:
    embeddings.publish(pet_created(3, ["pets/never-stored.jpg"]))
    wait_for(lambda: feature_status(embeddings, "pet", 3) == "failed")
    assert points(embeddings, "pet", 3) == []
    assert outbox_events(embeddings, "embedding.failed")[0]["reason"] == "photo_missing"


def test_a_deleted_pets_vectors_are_gone(embeddings: RunningService) -> None:
    embeddings.publish(pet_created(4, [store_photo(embeddings, "dog_afhq_flickr_000054.jpg")]))
    wait_for(lambda: feature_status(embeddings, "pet", 4) == "completed")
    assert len(points(embeddings, "pet", 4)) == 2
    embeddings.publish(PetDeleted(pet_id=4, owner_id=5))
    wait_for(lambda: subject(embeddings, "pet", 4) is None)
    assert points(embeddings, "pet", 4) == []


def test_an_update_without_new_photos_reflags_and_does_not_embed_again(
    embeddings: RunningService, embedder: SwitchableEmbedder
) -> None:
    key = store_photo(embeddings, "dog_afhq_flickr_000054.jpg")
    embeddings.publish(pet_created(6, [key], is_public=True))
    wait_for(lambda: feature_status(embeddings, "pet", 6) == "completed")
    calls = embedder.calls
    update = PetUpdated(
        pet_id=6, owner_id=5, name="Rex", type="Dogs", breed="Beagle", category="Domestic", image_keys=[key]
    )
    embeddings.publish(update)
    wait_for(lambda: all(p.payload["visibility"] == "hidden" for p in points(embeddings, "pet", 6)))
    assert embedder.calls == calls


def job_generation(running: RunningService, kind: str, subject_id: int) -> int | None:
    with running.session() as session:
        job = session.exec(
            select(EmbeddingJob).where(EmbeddingJob.kind == kind, EmbeddingJob.subject_id == subject_id)
        ).first()
        return job.generation if job else None


def test_photos_replaced_while_the_model_embeds_the_old_ones_are_embedded_and_the_old_result_dropped(
    embeddings: RunningService, embedder: SwitchableEmbedder
) -> None:
    dog = store_photo(embeddings, "dog_afhq_flickr_000054.jpg")
    cat = store_photo(embeddings, "cat_chelsea.jpg")
    embedder.gate.clear()
    embeddings.publish(pet_created(30, [dog]))
    assert embedder.entered.wait(timeout=20), "the model never got the first photos"
    replaced = PetUpdated(
        pet_id=30,
        owner_id=5,
        name="Rex",
        type="Dogs",
        breed="Beagle",
        category="Domestic",
        is_public=True,
        image_keys=[cat, dog],
        images_changed=True,
    )
    embeddings.publish(replaced)
    wait_for(lambda: job_generation(embeddings, "pet", 30) == 2, message="the update did not replace the job")
    embedder.gate.set()
    embedded = wait_for(lambda: [e for e in outbox_events(embeddings, "pet.embedded") if e["pet_id"] == 30])
    assert embedded == [{"pet_id": 30, "owner_id": 5, "model_version": embedder.info.key, "vector_count": 2}]
    stored = points(embeddings, "pet", 30)
    assert len(stored) == 3
    assert {p.payload["photos"] for p in stored} == {photos_fingerprint([cat, dog])}
    assert job_generation(embeddings, "pet", 30) is None


def test_a_pet_deleted_while_the_model_embeds_it_gets_no_vector_and_no_event(
    embeddings: RunningService, embedder: SwitchableEmbedder
) -> None:
    dog = store_photo(embeddings, "dog_afhq_flickr_000054.jpg")
    embedder.gate.clear()
    embeddings.publish(pet_created(31, [dog]))
    assert embedder.entered.wait(timeout=20), "the model never got the photo"
    embeddings.publish(PetDeleted(pet_id=31, owner_id=5))
    wait_for(lambda: subject(embeddings, "pet", 31) is None)
    embedder.gate.set()
    # The next pet's job may get the deleted one's id (SQLite reuses it): the old result must not settle it.
    embeddings.publish(pet_created(32, [dog]))
    wait_for(lambda: feature_status(embeddings, "pet", 32) == "completed")
    assert points(embeddings, "pet", 31) == []
    assert [e for e in outbox_events(embeddings, "pet.embedded") if e["pet_id"] == 31] == []


def test_a_resolved_report_keeps_its_vector_flagged_resolved(embeddings: RunningService) -> None:
    key = store_photo(embeddings, "cat_chelsea.jpg", key="reports/cat.jpg")
    filed = ReportFiled(
        report_id=20,
        reporter_id=8,
        status="found",
        latitude=48.85,
        longitude=2.35,
        animal_name="N/A",
        type="Cats",
        breed="Siamese",
        category="Domestic",
        image_key=key,
    )
    embeddings.publish(filed)
    wait_for(lambda: feature_status(embeddings, "report", 20) == "completed")
    (mean,) = [p for p in points(embeddings, "report", 20) if p.payload["role"] == "mean"]
    assert mean.payload["position"] == {"lat": 48.85, "lon": 2.35}
    assert outbox_events(embeddings, "report.embedded")[0]["report_id"] == 20
    embeddings.publish(ReportResolved(report_id=20, reporter_id=8))
    wait_for(lambda: all(p.payload["status"] == "resolved" for p in points(embeddings, "report", 20)))
