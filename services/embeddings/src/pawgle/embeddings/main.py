"""The embeddings service process: image vectors of pets and reports, image search, nearest candidates."""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path

from fastapi import FastAPI

from pawgle.common.app import create_service_app
from pawgle.common.blobs import blob_store_from_env
from pawgle.common.workers import PeriodicJob, WakeableLoop, Worker
from pawgle.common.workqueue import on_commit_wake
from pawgle.embeddings import metrics, repository
from pawgle.embeddings.answers import responders
from pawgle.embeddings.api import router
from pawgle.embeddings.catchup import catch_up_all
from pawgle.embeddings.config import Settings
from pawgle.embeddings.consumers import handlers
from pawgle.embeddings.index import VectorIndex
from pawgle.embeddings.ingest import JOBS_TOPIC
from pawgle.embeddings.model.batching import EmbeddingBatcher
from pawgle.embeddings.model.port import ImageEmbedder
from pawgle.embeddings.vectors import open_vector_store
from pawgle.embeddings.worker import EmbeddingWorker, RetryPolicy

MIGRATIONS = Path(__file__).with_name("migrations")


def load_embedder(settings: Settings) -> ImageEmbedder:
    """The configured model (blocking: loads the ONNX files or connects to the Space)."""
    if settings.model == "gradio":
        from pawgle.embeddings.model.gradio_embedder import GradioImageEmbedder

        token = settings.gradio_token.get_secret_value() if settings.gradio_token else None
        return GradioImageEmbedder(
            settings.gradio_space,
            model_name=settings.gradio_model_name,
            model_version=settings.gradio_model_version,
            dimension=settings.gradio_dimension,
            token=token,
            timeout=settings.gradio_timeout_s,
        )
    from pawgle.embeddings.model.onnx_embedder import load_local_embedder

    return load_local_embedder(threads=settings.model_thread_count())


def create_app(settings: Settings | None = None, *, embedder: ImageEmbedder | None = None) -> FastAPI:
    """Build the embeddings service app (`embedder` replaces the configured model, for tests and benches)."""
    settings = settings or Settings()

    async def on_startup(app: FastAPI) -> None:
        model: ImageEmbedder = embedder if embedder is not None else await asyncio.to_thread(load_embedder, settings)
        store = await asyncio.to_thread(open_vector_store, settings)
        index = VectorIndex(store, model.info, prefix=settings.collection_prefix)
        await asyncio.to_thread(index.ensure)
        app.state.embedder = model
        app.state.index = index
        app.state.batcher = EmbeddingBatcher(
            model, max_batch=settings.batch_max_photos, max_wait=settings.batch_max_wait_s
        )
        app.state.blobs = blob_store_from_env(data_dir=settings.data_dir, public_base_url=settings.public_base_url)

    async def on_shutdown(app: FastAPI) -> None:
        batcher = getattr(app.state, "batcher", None)
        if batcher is not None:
            await batcher.close()
        index = getattr(app.state, "index", None)
        if index is not None:
            with contextlib.suppress(Exception):
                await asyncio.to_thread(index.store.close)

    def workers(app: FastAPI) -> list[Worker]:
        worker = EmbeddingWorker(
            engine=app.state.engine,
            blobs=app.state.blobs,
            batcher=app.state.batcher,
            index=app.state.index,
            retry=RetryPolicy(settings.max_attempts, settings.retry_base_s, settings.retry_max_s),
            batch_jobs=settings.jobs_per_step,
            collect_s=settings.collect_s,
        )
        loop = WakeableLoop("embed-photos", worker.step, poll_interval_s=1.0, on_idle=lambda: _gauge(app))
        on_commit_wake(app.state.engine, JOBS_TOPIC, loop.wake)
        optimize = PeriodicJob("optimize-vectors", app.state.index.store.optimize, every_s=settings.optimize_every_s)
        # After a model switch: subjects another model embedded are marked (a reindex put their vectors here)
        # or queued for this model (catchup.py). Nothing to do, and one cheap query, the rest of the time.
        catch_up = PeriodicJob(
            "catch-up-model",
            lambda: catch_up_all(app.state.engine, index=app.state.index),
            every_s=settings.catch_up_every_s,
        )
        return [loop, optimize, catch_up]

    return create_service_app(
        settings,
        title="PawGle embeddings",
        routers=[router],
        migrations=MIGRATIONS,
        handlers=handlers,
        responders=responders,
        workers=workers,
        on_startup=on_startup,
        on_shutdown=on_shutdown,
    )


async def _gauge(app: FastAPI) -> None:
    def depth() -> int:
        from sqlmodel import Session

        with Session(app.state.engine) as session:
            return repository.pending_count(session)

    metrics.QUEUE_DEPTH.set(await asyncio.to_thread(depth))
