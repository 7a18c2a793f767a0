"""Async front of an `ImageEmbedder`: requests from many events are batched and run in a worker thread."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Sequence
from dataclasses import dataclass

from pawgle.embeddings.model.port import ImageEmbedder, ImageEmbedding, ImageInput, InvalidImageError


@dataclass
class _Request:
    image: ImageInput
    done: asyncio.Future[ImageEmbedding]


class EmbeddingBatcher:
    """Collects photos for up to `max_wait` seconds (or `max_batch` photos) and embeds them in one call.

    The model runs in a thread (`asyncio.to_thread`), so the event loop never waits on it; one batch runs at
    a time, which is all a CPU model can use. A photo that cannot be decoded fails alone: the rest of its
    batch is embedded again without it. Any other model failure fails every photo of the batch.
    """

    def __init__(self, embedder: ImageEmbedder, *, max_batch: int = 16, max_wait: float = 0.01) -> None:
        self.embedder = embedder
        self.max_batch = max_batch
        self.max_wait = max_wait
        # Each item is one caller's photos, taken whole into a batch (so a worker's round stays together).
        self._queue: asyncio.Queue[list[_Request]] = asyncio.Queue()
        self._worker: asyncio.Task[None] | None = None

    def _submit(self, images: Sequence[ImageInput]) -> list[asyncio.Future[ImageEmbedding]]:
        if self._worker is None or self._worker.done():
            self._worker = asyncio.create_task(self._run(), name="embedding-batcher")
        loop = asyncio.get_running_loop()
        requests = [_Request(image, loop.create_future()) for image in images]
        self._queue.put_nowait(requests)
        return [request.done for request in requests]

    async def embed(self, image: ImageInput) -> ImageEmbedding:
        """The embedding of one photo; raises the model's error for it."""
        (done,) = self._submit([image])
        return await done

    async def embed_together(self, images: Sequence[ImageInput]) -> list[ImageEmbedding | BaseException]:
        """Photos that go into the same model batches (up to `max_batch` each), with other callers' if room.

        One result per photo, in order: its embedding, or the model's error for it (an `InvalidImageError`
        fails only its own photo).
        """
        if not images:
            return []
        return list(await asyncio.gather(*self._submit(images), return_exceptions=True))

    async def embed_many(self, images: Sequence[ImageInput]) -> list[ImageEmbedding]:
        """Embeddings of several photos (they may share batches with other callers)."""
        return list(await asyncio.gather(*self._submit(images)))

    async def close(self) -> None:
        """Stop the worker; requests still queued fail with CancelledError."""
        if self._worker is not None:
            self._worker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._worker
        while not self._queue.empty():
            for request in self._queue.get_nowait():
                request.done.cancel()

    async def _run(self) -> None:
        while True:
            batch = list(await self._queue.get())
            deadline = asyncio.get_running_loop().time() + self.max_wait
            while len(batch) < self.max_batch:
                if not self._queue.empty():
                    batch.extend(self._queue.get_nowait())
                    continue
                remaining = deadline - asyncio.get_running_loop().time()
                if remaining <= 0:
                    break
                try:
                    batch.extend(await asyncio.wait_for(self._queue.get(), remaining))
                except TimeoutError:
                    break
            for start in range(0, len(batch), self.max_batch):
                await self._embed_batch([r for r in batch[start : start + self.max_batch] if not r.done.done()])

    async def _embed_batch(self, batch: list[_Request]) -> None:
        while batch:
            try:
                results = await asyncio.to_thread(self.embedder.embed, [request.image for request in batch])
            except InvalidImageError as exc:
                bad = batch.pop(exc.index if 0 <= exc.index < len(batch) else 0)
                bad.done.set_exception(InvalidImageError(str(exc), index=0))
                continue
            except Exception as exc:  # noqa: BLE001 - every waiter gets the model's own error
                for request in batch:
                    if not request.done.done():
                        request.done.set_exception(exc)
                return
            for request, result in zip(batch, results, strict=True):
                if not request.done.done():
                    request.done.set_result(result)
            return
