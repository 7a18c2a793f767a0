"""`pawgle-ops embeddings ...`: the embeddings service's own operator commands.

    pawgle-ops embeddings reindex --model identity|generic|gradio   fill that model's collection, with progress
    pawgle-ops embeddings collections                               every collection and its mean vectors

Same settings (env) as the service. See reindex.py for how a model switch goes without downtime. With the
embedded Qdrant Edge store the command opens only the new model's shard, which the running service never
touches; qdrant-client's local mode locks its whole folder, so there the service must be stopped first.
"""

from __future__ import annotations

import argparse
import sys
import time

from pawgle.common.blobs import blob_store_from_env
from pawgle.common.db import make_engine
from pawgle.embeddings.config import Settings
from pawgle.embeddings.index import VectorIndex
from pawgle.embeddings.model.port import ImageEmbedder
from pawgle.embeddings.reindex import reindex
from pawgle.embeddings.vectors import open_vector_store

COMMANDS = ("reindex", "collections")
MODELS = ("identity", "generic", "gradio")


def _out(line: str) -> None:
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="pawgle-ops embeddings", description="Operate the embeddings service.")
    commands = parser.add_subparsers(dest="command", required=True)
    fill = commands.add_parser("reindex", help="embed every pet and report into a model's own collection")
    fill.add_argument("--model", choices=MODELS, required=True, help="identity / generic: local ONNX; gradio: Space")
    commands.add_parser("collections", help="every collection of this service and how many pets and reports")
    return parser


def load_model(name: str, settings: Settings) -> ImageEmbedder:
    """The embedder a `--model` name means (gradio: the EMBEDDINGS_GRADIO_* settings)."""
    if name == "gradio":
        from pawgle.embeddings.main import load_embedder

        return load_embedder(settings.model_copy(update={"model": "gradio"}))
    from pawgle.embeddings.model.onnx_embedder import load_local_embedder

    return load_local_embedder(identity=name == "identity", threads=settings.model_thread_count())


def main(argv: list[str], settings: Settings | None = None, embedder: ImageEmbedder | None = None) -> int:
    """Run one command (`embedder` replaces the one `--model` names, for tests)."""
    args = build_parser().parse_args(argv)
    settings = settings or Settings(run_workers=False)
    store = open_vector_store(settings)
    try:
        if args.command == "collections":
            for collection in store.collections():
                if collection.startswith(f"{settings.collection_prefix}-"):
                    _out(f"{collection}\t{store.count(collection, role='mean')} pets and reports")
            return 0
        model = embedder or load_model(args.model, settings)
        index = VectorIndex(store, model.info, prefix=settings.collection_prefix)
        blobs = blob_store_from_env(data_dir=settings.data_dir, public_base_url=settings.public_base_url)
        began = time.perf_counter()

        def show(label: str, done: int, total: int) -> None:
            if done == total or done % 320 == 0:
                rate = done / max(time.perf_counter() - began, 1e-6)
                _out(f"reindex {index.collection} {label}: {done}/{total} pets and reports ({rate:.1f}/s)")

        _out(f"reindex {index.collection}: model {model.info.key}, dimension {model.info.dimension}")
        report = reindex(make_engine(settings.db_url), embedder=model, index=index, blobs=blobs, progress=show)
        _out(
            f"reindex {index.collection} done in {report.seconds:.0f} s, {report.passes} passes: "
            f"{report.embedded} embedded, {report.unchanged} already there, {report.removed} removed, "
            f"{len(report.failed)} failed"
        )
        for kind, subject_id, error in report.failed:
            _out(f"  failed {kind} {subject_id}: {error}")
        if not report.failed:
            _out(f"next: roll the service out with the model that makes {index.collection} (no downtime)")
        return 1 if report.failed else 0
    finally:
        store.close()
