"""Image model figures: raw onnxruntime throughput of EfficientNet-Lite0, time per photo end to end, sizes."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from bench.stats import report, summary_ms
from pawgle.embeddings.model.onnx_embedder import (
    BACKBONE_FILE,
    IDENTITY_HEAD_FILE,
    OnnxBackbone,
    OnnxIdentityHead,
    OnnxImageEmbedder,
)
from pawgle.embeddings.model.preprocess import decode_image, to_pixels

PHOTOS = Path(__file__).resolve().parents[1] / "services" / "embeddings" / "tests" / "data" / "photos"
SECONDS_PER_FIGURE = 4.0


def images_per_second(backbone: OnnxBackbone, pixels: np.ndarray) -> float:
    """Photos per second through the backbone alone, at the batch size of `pixels`."""
    backbone.run(pixels)  # warm-up
    done, started = 0, time.perf_counter()
    while time.perf_counter() - started < SECONDS_PER_FIGURE:
        backbone.run(pixels)
        done += len(pixels)
    return done / (time.perf_counter() - started)


def main() -> None:
    backbone = OnnxBackbone()
    photos = [path.read_bytes() for path in sorted(PHOTOS.glob("*.jpg"))]
    pixels = to_pixels([decode_image(photo) for photo in photos])
    batch16 = np.concatenate([pixels] * (16 // len(pixels) + 1))[:16]
    report(
        f"model files: {BACKBONE_FILE.name} {BACKBONE_FILE.stat().st_size / 1e6:.1f} MB, "
        f"{IDENTITY_HEAD_FILE.name} {IDENTITY_HEAD_FILE.stat().st_size / 1e6:.1f} MB"
    )
    report(f"raw onnxruntime, batch 1: {images_per_second(backbone, pixels[:1]):.0f} images/s")
    report(f"raw onnxruntime, batch 16: {images_per_second(backbone, batch16):.0f} images/s")
    for label, embedder in (
        ("generic", OnnxImageEmbedder(backbone=backbone)),
        ("identity", OnnxImageEmbedder(backbone=backbone, identity_head=OnnxIdentityHead())),
    ):
        timings = []
        started = time.perf_counter()
        while time.perf_counter() - started < SECONDS_PER_FIGURE:
            for photo in photos:
                begun = time.perf_counter()
                embedder.embed([photo])
                timings.append(time.perf_counter() - begun)
        report(f"{label} ({embedder.info.key}), one photo end to end (decode, crop pass, head): {summary_ms(timings)}")
