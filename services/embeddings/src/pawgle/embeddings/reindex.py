"""Fill a model's collection from what the service knows (every pet's and report's photo keys), with progress.

`python -m pawgle.embeddings.reindex --model generic|identity|gradio` embeds every subject's photos with
that model into its own collection (`pawgle-<model key>`) while the running service keeps serving from the
current one; switching is then a rolling restart with the new model setting, whose pods find their
collection already full (no downtime). Vectors of the two models never meet: each has its own collection.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable

from sqlmodel import Session, select

from pawgle.common.blobs import BlobStore, blob_store_from_env
from pawgle.common.db import make_engine
from pawgle.embeddings.config import Settings
from pawgle.embeddings.index import VectorIndex
from pawgle.embeddings.model.port import ImageEmbedder, ModelError
from pawgle.embeddings.models import Subject
from pawgle.embeddings.vectors import open_vector_store

PAGE = 32


def reindex(
    session: Session,
    *,
    embedder: ImageEmbedder,
    index: VectorIndex,
    blobs: BlobStore,
    progress: Callable[[int, int], None] = lambda done, total: None,
) -> tuple[int, int]:
    """Embed every subject with photos into `index`; returns (subjects stored, subjects that failed)."""
    index.ensure()
    subjects = [s for s in session.exec(select(Subject).order_by(Subject.kind, Subject.subject_id)) if s.image_keys]
    stored = failed = 0
    for start in range(0, len(subjects), PAGE):
        for subject in subjects[start : start + PAGE]:
            try:
                embeddings = embedder.embed([blobs.get(key) for key in subject.image_keys])
            except (ModelError, OSError, KeyError):
                failed += 1
                continue
            index.replace_subject(subject, embeddings)
            stored += 1
        progress(min(start + PAGE, len(subjects)), len(subjects))
    index.store.optimize()
    return stored, failed


def main(argv: list[str] | None = None) -> int:
    """The command line: which model to fill, with a progress line per page."""
    parser = argparse.ArgumentParser(prog="python -m pawgle.embeddings.reindex", description=__doc__)
    parser.add_argument("--model", choices=("generic", "identity", "gradio"), required=True)
    args = parser.parse_args(argv)
    settings = Settings()
    from pawgle.embeddings.main import load_embedder

    if args.model == "gradio":
        embedder = load_embedder(settings.model_copy(update={"model": "gradio"}))
    else:
        from pawgle.embeddings.model.onnx_embedder import load_local_embedder

        embedder = load_local_embedder(identity=args.model == "identity", threads=settings.model_thread_count())
    store = open_vector_store(settings)
    index = VectorIndex(store, embedder.info, prefix=settings.collection_prefix)
    blobs = blob_store_from_env(data_dir=settings.data_dir, public_base_url=settings.public_base_url)

    def show(done: int, total: int) -> None:
        sys.stdout.write(f"\r{index.collection}: {done}/{total} pets and reports")
        sys.stdout.flush()

    with Session(make_engine(settings.db_url)) as session:
        stored, failed = reindex(session, embedder=embedder, index=index, blobs=blobs, progress=show)
    store.close()
    sys.stdout.write(f"\n{index.collection}: {stored} stored, {failed} failed\n")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
