"""Compute the frozen backbone's pooled features once: a clean view and K augmented views of every photo.

The features come from the same ONNX graph the service runs (so training sees exactly what serving sees)
and are cached under training/.cache/ (git-ignored); training the head then takes minutes on a CPU.
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image

from pawgle.embeddings.model.onnx_embedder import OnnxBackbone
from pawgle.embeddings.model.preprocess import to_pixels

sys.path.insert(0, str(Path(__file__).parent))
from augment import augmented_view  # noqa: E402
from identity_data import DEFAULT_DATA, list_identity_photos  # noqa: E402

CACHE = Path(__file__).parent / ".cache"
SEED = 13
BATCH = 32


def cache_path(views: int) -> Path:
    """Where the features for `views` augmented views are kept."""
    return CACHE / f"dogfacenet-dev-features-k{views}.npz"


def compute(data: Path, views: int) -> Path:
    """Write the cache file (photo paths, identities, features[photo, view, 1280]) and return its path."""
    listing = list_identity_photos(data)
    backbone = OnnxBackbone()
    rng = random.Random(SEED)
    features = np.zeros((len(listing.paths), views + 1, 1280), dtype=np.float16)
    started = time.perf_counter()
    pending: list[tuple[int, int, Image.Image]] = []

    def flush() -> None:
        output = backbone.run(to_pixels([image for _, _, image in pending]))
        for (photo, view, _), vector in zip(pending, output.features, strict=True):
            features[photo, view] = vector
        pending.clear()

    for photo_index, path in enumerate(listing.paths):
        photo = Image.open(path).convert("RGB")
        pending.append((photo_index, 0, photo))
        pending.extend((photo_index, view, augmented_view(photo, rng)) for view in range(1, views + 1))
        if len(pending) >= BATCH:
            flush()
        if photo_index % 500 == 0:
            print(f"{photo_index}/{len(listing.paths)} photos, {time.perf_counter() - started:.0f} s", flush=True)  # noqa: T201
    if pending:
        flush()
    CACHE.mkdir(exist_ok=True)
    target = cache_path(views)
    np.savez(
        target,
        paths=np.array([str(p.relative_to(data)) for p in listing.paths]),
        identities=np.array(listing.identities),
        features=features,
    )
    print(f"wrote {target} in {time.perf_counter() - started:.0f} s", flush=True)  # noqa: T201
    return target


def main() -> None:
    """Command line: --data FOLDER --views K."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--views", type=int, default=8)
    args = parser.parse_args()
    compute(args.data.resolve(), args.views)


if __name__ == "__main__":
    main()
