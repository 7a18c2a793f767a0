"""Vector store figures: Qdrant Edge against qdrant-client's local mode, at 20,000 and 100,000 vectors.

Each adapter runs in a fresh process (so one's memory does not count against the other), stores N mean
vectors (half pets, half reports spread over about 600 x 600 km around Paris, dimension of the identity
model), then answers queries with the service's own filters: unfiltered (pets and active reports), and with
the matcher's geo filter (active reports within 50 km). Figures: ingest rate, query p50/p95, resident set.
"""

from __future__ import annotations

import multiprocessing
import os
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from bench.stats import percentile, report

SIZES = tuple(int(n) for n in os.environ.get("BENCH_VECTORS_SIZES", "20000,100000").split(","))
DIMENSION = 384
# Local mode scans every vector per query: on a loaded 2-core machine 60 queries at 100,000 take many minutes.
QUERIES = int(os.environ.get("BENCH_VECTORS_QUERIES", "60"))
BATCH = 1_000


def _rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def clustered_vectors(n: int, dimension: int, rng: np.random.Generator, *, clusters: int = 200) -> np.ndarray:
    """n unit vectors like a model's: each near one of `clusters` random centres (breeds, look-alikes).

    A vector is its centre plus as much isotropic noise again, normalised: about 0.7 cosine to its centre
    and 0.5 to others of its cluster, about 0 across clusters (pure random vectors are all near 0, which
    makes an index's job unrealistically easy or hard).
    """
    centres = rng.standard_normal((clusters, dimension)).astype(np.float32)
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    noise = rng.standard_normal((n, dimension)).astype(np.float32) / np.sqrt(dimension)
    vectors = centres[rng.integers(0, clusters, n)] + noise
    return (vectors / np.linalg.norm(vectors, axis=1, keepdims=True)).astype(np.float32)


def _points(n: int, rng: np.random.Generator) -> list[Any]:
    from pawgle.embeddings.vectors.port import VectorPoint, point_id

    vectors = clustered_vectors(n, DIMENSION, rng)
    points = []
    for index in range(n):
        kind = "pet" if index % 2 == 0 else "report"
        payload: dict[str, Any] = {
            "kind": kind,
            "subject_id": index,
            "role": "mean",
            "visibility": "searchable",
            "species": "dog" if index % 3 else "cat",
            "owner_id": index % 5000,
            "model": "bench",
            "model_version": "1",
        }
        if kind == "report":
            payload["status"] = ("lost", "found", "resolved")[index % 3]
            payload["position"] = {"lat": 48.85 + rng.uniform(-2.7, 2.7), "lon": 2.35 + rng.uniform(-4.0, 4.0)}
        else:
            payload["status"] = "active"
        points.append(VectorPoint(point_id(kind, index, "mean"), vectors[index], payload))
    return points


def _open(adapter: str, folder: Path) -> Any:
    if adapter == "edge":
        from pawgle.embeddings.vectors.edge_store import EdgeStore

        return EdgeStore(folder)
    from pawgle.embeddings.vectors.qdrant_store import QdrantClientStore

    if adapter == "local-memory":
        # The same brute-force scan without the SQLite persistence (whose writes make a 100,000 ingest take
        # half an hour on a loaded machine): search figures as the persisted mode's, ingest much faster.
        return QdrantClientStore()
    return QdrantClientStore(path=folder)


def _run(adapter: str, n: int, out: Any) -> None:
    from pawgle.embeddings.vectors.port import GeoCircle, VectorQuery

    rng = np.random.default_rng(7)
    points = _points(n, rng)
    with tempfile.TemporaryDirectory() as tmp:
        store = _open(adapter, Path(tmp) / adapter)
        store.ensure_collection("bench", DIMENSION)
        started = time.perf_counter()
        for start in range(0, n, BATCH):
            store.upsert("bench", points[start : start + BATCH])
        store.optimize()
        ingest_s = time.perf_counter() - started
        del points
        active = {"report": ("lost", "found")}
        queries = rng.standard_normal((QUERIES, DIMENSION)).astype(np.float32)
        queries /= np.linalg.norm(queries, axis=1, keepdims=True)
        timings: dict[str, list[float]] = {"unfiltered": [], "geo 50 km": []}
        cpu: dict[str, float] = {"unfiltered": 0.0, "geo 50 km": 0.0}
        for index, vector in enumerate(queries):
            centre = GeoCircle(48.85 + (index % 5) * 0.3, 2.35 - (index % 7) * 0.3, 50.0)
            for label, query in (
                ("unfiltered", VectorQuery(vector=vector, statuses=active)),
                ("geo 50 km", VectorQuery(vector=vector, kinds=("report",), statuses=active, near=centre)),
            ):
                began, cpu_began = time.perf_counter(), time.process_time()
                store.search("bench", query)
                timings[label].append(time.perf_counter() - began)
                cpu[label] += time.process_time() - cpu_began
        rss = _rss_mb()
        store.close()
    figures = {k: (percentile(v, 50), percentile(v, 95), cpu[k] / len(v)) for k, v in timings.items()}
    out.put((ingest_s, figures, rss))


def measure(adapter: str, n: int) -> tuple[float, dict[str, tuple[float, float, float]], float]:
    """Ingest s, {filter: (p50 s, p95 s, CPU s per query)} and resident MB of one adapter at one size (own process)."""
    context = multiprocessing.get_context("spawn")
    queue = context.Queue()
    process = context.Process(target=_run, args=(adapter, n, queue))
    process.start()
    result = queue.get()
    process.join()
    return result  # type: ignore[no-any-return]


def main() -> None:
    os.environ.setdefault("OMP_NUM_THREADS", "2")
    report(f"vector stores: {DIMENSION}-d cosine, half pets half reports, {QUERIES} queries per filter")
    for n in SIZES:
        for adapter in os.environ.get("BENCH_VECTORS_ADAPTERS", "edge,local").split(","):
            ingest_s, timings, rss = measure(adapter, n)
            line = ", ".join(
                f"{k} p50 {p50 * 1000:.1f} ms p95 {p95 * 1000:.1f} ms ({c * 1000:.1f} ms CPU)"
                for k, (p50, p95, c) in timings.items()
            )
            load = " ".join(f"{x:.1f}" for x in os.getloadavg())
            report(
                f"  {adapter:5s} {n:>7,d} vectors: stored and indexed {n / ingest_s:,.0f}/s; {line}; "
                f"RSS {rss:,.0f} MB [load {load}]"
            )


if __name__ == "__main__":
    main()
