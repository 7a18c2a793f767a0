"""The async batching helper: photos from concurrent callers share batches run off the event loop."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Sequence

import numpy as np
import pytest

from pawgle.embeddings.model.batching import EmbeddingBatcher
from pawgle.embeddings.model.onnx_embedder import OnnxImageEmbedder
from pawgle.embeddings.model.port import ImageEmbedding, ImageInput, InvalidImageError, ModelError, ModelInfo

from .conftest import photo_bytes


class RecordingEmbedder:
    """The real embedder, noting each batch's size and the thread it ran on."""

    def __init__(self, inner: OnnxImageEmbedder, *, fail_with: Exception | None = None) -> None:
        self.inner = inner
        self.fail_with = fail_with
        self.batches: list[int] = []
        self.threads: set[int] = set()

    @property
    def info(self) -> ModelInfo:
        return self.inner.info

    def embed(self, images: Sequence[ImageInput]) -> list[ImageEmbedding]:
        self.batches.append(len(images))
        self.threads.add(threading.get_ident())
        if self.fail_with is not None:
            raise self.fail_with
        return self.inner.embed(images)


async def test_concurrent_photos_are_embedded_in_shared_batches_off_the_loop(
    generic_embedder: OnnxImageEmbedder,
) -> None:
    recording = RecordingEmbedder(generic_embedder)
    batcher = EmbeddingBatcher(recording, max_batch=8, max_wait=0.05)
    photos = [photo_bytes("dog_afhq_flickr_000054.jpg"), photo_bytes("cat_chelsea.jpg")] * 5
    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            ticks += 1
            await asyncio.sleep(0.005)

    beat = asyncio.create_task(ticker())
    try:
        results = await batcher.embed_many(photos)
    finally:
        beat.cancel()
        await batcher.close()
    assert sorted(recording.batches) == [2, 8]
    assert threading.get_ident() not in recording.threads
    assert ticks > 3  # the loop kept running while the model worked
    direct = generic_embedder.embed(photos[:2])
    assert np.allclose(results[0].vector, direct[0].vector, atol=1e-6)
    assert np.allclose(results[1].vector, direct[1].vector, atol=1e-6)


async def test_an_undecodable_photo_fails_alone(generic_embedder: OnnxImageEmbedder) -> None:
    batcher = EmbeddingBatcher(generic_embedder, max_batch=4, max_wait=0.05)
    try:
        good, bad, other = await asyncio.gather(
            batcher.embed(photo_bytes("cat_chelsea.jpg")),
            batcher.embed(b"garbage"),
            batcher.embed(photo_bytes("dog_afhq_flickr_000054.jpg")),
            return_exceptions=True,
        )
    finally:
        await batcher.close()
    assert isinstance(bad, InvalidImageError)
    assert isinstance(good, ImageEmbedding)
    assert good.species == "cat"
    assert isinstance(other, ImageEmbedding)
    assert other.species == "dog"


async def test_a_model_failure_reaches_every_caller_of_the_batch(generic_embedder: OnnxImageEmbedder) -> None:
    batcher = EmbeddingBatcher(RecordingEmbedder(generic_embedder, fail_with=ModelError("boom")), max_wait=0.05)
    try:
        results = await asyncio.gather(
            *(batcher.embed(photo_bytes("cat_chelsea.jpg")) for _ in range(3)), return_exceptions=True
        )
    finally:
        await batcher.close()
    assert all(isinstance(r, ModelError) and str(r) == "boom" for r in results)


async def test_the_batcher_keeps_working_after_a_failed_batch(generic_embedder: OnnxImageEmbedder) -> None:
    recording = RecordingEmbedder(generic_embedder, fail_with=ModelError("once"))
    batcher = EmbeddingBatcher(recording, max_wait=0.01)
    try:
        with pytest.raises(ModelError):
            await batcher.embed(photo_bytes("cat_chelsea.jpg"))
        recording.fail_with = None
        result = await batcher.embed(photo_bytes("cat_chelsea.jpg"))
    finally:
        await batcher.close()
    assert result.species == "cat"
