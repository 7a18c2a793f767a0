"""Embeddings service figures: photos embedded per second through the whole path against raw onnxruntime,
and image search latency (query photo embedding included) with many pets stored, geo filter on.

Whole path: pet.created published to a real nats-server, the service's consumer queues the job, the worker
reads the photo from the blob folder, embeds it, stores the vectors in Qdrant Edge and writes pet.embedded to
the outbox; timed until every pet is `completed`. Raw: the same model on the same photos, batches of 16.
The vector stores side by side: `python -m bench embeddings_vectors`.
"""

from __future__ import annotations

import asyncio
import os
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import nats
import numpy as np
from sqlmodel import Session, func, select

from bench.stats import percentile, report
from pawgle.common.events.envelope import encode_event, new_event
from pawgle.common.events.pets import PetCreated
from pawgle.common.natsserver import NatsServer
from pawgle.common.testing.server import serve
from pawgle.common.testing.tokens import TokenIssuer
from pawgle.embeddings.config import Settings
from pawgle.embeddings.main import create_app
from pawgle.embeddings.model.onnx_embedder import load_local_embedder
from pawgle.embeddings.models import Subject
from pawgle.embeddings.vectors.port import VectorPoint, point_id

PHOTOS = Path(__file__).resolve().parents[1] / "services" / "embeddings" / "tests" / "data" / "photos"
PETS = int(os.environ.get("BENCH_EMBED_PETS", "96"))
STORED = tuple(int(n) for n in os.environ.get("BENCH_EMBED_STORED", "20000,100000").split(","))
SEARCHES = 40


def _photos() -> list[bytes]:
    return [p.read_bytes() for p in sorted(PHOTOS.glob("*.jpg"))]


def raw_throughput(embedder: Any, photos: list[bytes]) -> float:
    """Photos per second of the model alone, batches of 16."""
    batch = [photos[i % len(photos)] for i in range(16)]
    embedder.embed(batch)  # warm-up
    started = time.perf_counter()
    for _ in range(PETS // 16):
        embedder.embed(batch)
    return (PETS // 16) * 16 / (time.perf_counter() - started)


def _completed(engine: Any) -> int:
    with Session(engine) as session:
        return int(session.exec(select(func.count()).where(Subject.feature_status == "completed")).one())


async def _publish(url: str, events: list[PetCreated]) -> None:
    nc = await nats.connect(url)
    js = nc.jetstream()
    for data in events:
        envelope = new_event(data, producer="bench")
        await js.publish(envelope.subject, encode_event(envelope), headers={"Nats-Msg-Id": envelope.id})
    await nc.drain()


def _seed(app: Any, n: int, rng: np.random.Generator) -> None:
    """n searchable pets' mean vectors (half with an active report near Paris), straight into the store."""
    index = app.state.index
    for start in range(0, n, 2000):
        count = min(2000, n - start)
        vectors = rng.standard_normal((count, index.model.dimension)).astype(np.float32)
        vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
        points = []
        for offset in range(count):
            i = 1_000_000 + start + offset
            kind = "pet" if i % 2 else "report"
            payload: dict[str, Any] = {"kind": kind, "subject_id": i, "role": "mean", "visibility": "searchable"}
            payload["status"] = "active" if kind == "pet" else "lost"
            if kind == "report":
                payload["position"] = {"lat": 48.85 + rng.uniform(-2.7, 2.7), "lon": 2.35 + rng.uniform(-4, 4)}
            points.append(VectorPoint(point_id(kind, i, "mean"), vectors[offset], payload))
        index.store.upsert(index.collection, points)
    index.store.optimize()


def main() -> None:
    photos = _photos()
    embedder = load_local_embedder()
    raw = raw_throughput(embedder, photos)
    report(f"raw onnxruntime ({embedder.info.key}): {raw:.1f} photos/s (batches of 16)")
    with tempfile.TemporaryDirectory(prefix="pawgle-bench-embeddings-") as tmp:
        server = NatsServer(Path(tmp) / "js").start()
        try:
            settings = Settings(
                environment="test", data_dir=Path(tmp), nats_url=server.url, log_level="ERROR", optimize_every_s=3600
            )
            app = create_app(settings, embedder=embedder)
            tokens = TokenIssuer(issuer=settings.jwt_issuer, audience=settings.jwt_audience)
            app.state.token_verifier.jwks.set_keys(tokens.jwks)
            with serve(app) as url:
                for i, photo in enumerate(photos):
                    app.state.blobs.put(f"pets/bench-{i}.jpg", photo, content_type="image/jpeg")
                events = [
                    PetCreated(
                        pet_id=i + 1,
                        owner_id=1,
                        name="Rex",
                        type="Dogs",
                        breed="Beagle",
                        category="Domestic",
                        is_public=True,
                        image_keys=[f"pets/bench-{i % len(photos)}.jpg"],
                    )
                    for i in range(PETS)
                ]
                started = time.perf_counter()
                asyncio.run(_publish(server.url, events))
                while _completed(app.state.engine) < PETS:
                    if time.perf_counter() - started > 600:
                        raise RuntimeError("pets were not embedded within 600 s")
                    time.sleep(0.01)
                path = PETS / (time.perf_counter() - started)
                report(
                    f"whole path (pet.created -> vectors stored -> pet.embedded): {path:.1f} photos/s, "
                    f"{100 * path / raw:.0f}% of raw (target >= 80%)"
                )
                rng = np.random.default_rng(3)
                seeded = 0
                form = {"latitude": "48.85", "longitude": "2.35", "radius_km": "50"}
                with httpx.Client(base_url=url, timeout=30) as client:
                    for n in STORED:
                        _seed(app, n - seeded, rng)
                        seeded = n
                        timings = []
                        for i in range(SEARCHES):
                            files = {"image": ("q.jpg", photos[i % len(photos)], "image/jpeg")}
                            headers = tokens.headers(1)  # fresh: seeding 100,000 outlasts an access token
                            began = time.perf_counter()
                            response = client.post("/api/auth/pets/search/", files=files, data=form, headers=headers)
                            timings.append(time.perf_counter() - began)
                            response.raise_for_status()
                        p50, p95 = percentile(timings, 50) * 1000, percentile(timings, 95) * 1000
                        report(
                            f"image search, {n:,} stored, geo filter 50 km, query embedding included: "
                            f"p50 {p50:.0f} ms, p95 {p95:.0f} ms (target p95 <= 250 ms at 20,000)"
                        )
                rss = [ln for ln in Path("/proc/self/status").read_text().splitlines() if ln.startswith("VmHWM")]
                report(f"service process peak memory (model, store, bench): {rss[0].split()[1]} kB")
        finally:
            server.stop()


if __name__ == "__main__":
    main()
