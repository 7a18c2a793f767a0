"""Compute the frozen backbone's identity descriptors once: a clean view and K augmented views of every photo.

The descriptors come from the same ONNX graph the service runs (`identity_features`: the photo's and its
mirror image's pooled descriptors, see export_backbone.py), so training sees exactly what serving sees. They
are cached under training/.cache/ (git-ignored), one file per view (`view0` is the clean photo), so an
interrupted run resumes and training the head then takes minutes on a CPU. Every augmented view is seeded
by (photo, view), so the cache is the same on every machine and for any K.
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
BATCH = 16  # photos per call; the graph runs each with its mirror image, so 32 images


def view_path(data_name: str, view: int) -> Path:
    """One view of every photo: photo x (plain, mirrored) x descriptor, float16."""
    return CACHE / f"{data_name}-view{view}.npy"


def identities_path(data_name: str) -> Path:
    """The identity of every photo, in the cache's order."""
    return CACHE / f"{data_name}-identities.npy"


def view_of(photo: Image.Image, photo_index: int, view: int) -> Image.Image:
    """The clean photo (view 0) or its augmented view `view`, seeded by photo and view."""
    return photo if view == 0 else augmented_view(photo, random.Random(f"{SEED}-{photo_index}-{view}"))


def compute(data: Path, views: int, *, threads: int | None = None) -> None:
    """Write every missing view file (and the identities) for views 0..`views`."""
    listing = list_identity_photos(data)
    CACHE.mkdir(exist_ok=True)
    np.save(identities_path(data.name), np.array(listing.identities))
    backbone: OnnxBackbone | None = None
    for view in range(views + 1):
        target = view_path(data.name, view)
        if target.exists():
            continue
        backbone = backbone or OnnxBackbone(threads=threads)
        features: np.ndarray | None = None
        started = time.perf_counter()
        for start in range(0, len(listing.paths), BATCH):
            chunk = range(start, min(start + BATCH, len(listing.paths)))
            photos = [view_of(Image.open(listing.paths[i]).convert("RGB"), i, view) for i in chunk]
            output = backbone.run(to_pixels(photos)).identity_features
            if features is None:
                features = np.zeros((len(listing.paths), *output.shape[1:]), dtype=np.float16)
            features[chunk.start : chunk.stop] = output
            if start % 1600 == 0:
                elapsed = time.perf_counter() - started
                print(f"view {view}: {start}/{len(listing.paths)} photos, {elapsed:.0f} s", flush=True)  # noqa: T201
        np.save(target, features)
        print(f"wrote {target.name} in {time.perf_counter() - started:.0f} s", flush=True)  # noqa: T201


def load(data: Path, views: int) -> tuple[list[str], list[np.ndarray]]:
    """(identities, [photo x 2 x descriptor per view]), computing what is missing first."""
    compute(data, views)
    identities = [str(name) for name in np.load(identities_path(data.name))]
    return identities, [np.load(view_path(data.name, view)) for view in range(views + 1)]


def main() -> None:
    """Command line: --data FOLDER --views K."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--views", type=int, default=4)
    parser.add_argument("--threads", type=int, default=None)
    args = parser.parse_args()
    compute(args.data.resolve(), args.views, threads=args.threads)


if __name__ == "__main__":
    main()
