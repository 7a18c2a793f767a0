"""`make eval`: same-animal retrieval of the generic features and the identity model on `<identity>/<photo>`.

`python -m pawgle.embeddings.model.evaluate [--data FOLDER] [--no-crop] [--all]`. Without --data it uses
../shared/data/identity/dogfacenet-dev when present, else the small set shipped with the tests. On the
data the identity head was trained on, only its held-out validation dogs are scored (unless --all), so the
figures are for dogs the model never saw. The last line is the configured model's (the identity model
when its head is shipped).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from pawgle.embeddings.model.onnx_embedder import (
    BACKBONE_FILE,
    IDENTITY_HEAD_FILE,
    OnnxBackbone,
    OnnxIdentityHead,
    OnnxImageEmbedder,
)
from pawgle.embeddings.model.retrieval import match_rates_at, pair_similarities, retrieval_scores

REPO = Path(__file__).resolve().parents[6]
DEVELOPMENT_DATA = REPO / ".." / "shared" / "data" / "identity" / "dogfacenet-dev"
SHIPPED_DATA = REPO / "services" / "embeddings" / "tests" / "data" / "identities"
IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".webp"}
BATCH = 32


def list_photos(folder: Path, keep: set[str] | None) -> tuple[list[Path], list[str]]:
    """Photo paths and their identity (folder name), sorted; only identities in `keep` when given."""
    paths: list[Path] = []
    identities: list[str] = []
    for identity in sorted(p for p in folder.iterdir() if p.is_dir()):
        if keep is not None and identity.name not in keep:
            continue
        for photo in sorted(p for p in identity.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES):
            paths.append(photo)
            identities.append(identity.name)
    return paths, identities


def embed_all(embedder: OnnxImageEmbedder, paths: list[Path]) -> tuple[np.ndarray, float, int]:
    """Unit vectors of every photo, seconds per photo, and how many photos were cropped."""
    vectors: list[np.ndarray] = []
    cropped = 0
    started = time.perf_counter()
    for start in range(0, len(paths), BATCH):
        results = embedder.embed([path.read_bytes() for path in paths[start : start + BATCH]])
        vectors.extend(result.vector for result in results)
        cropped += sum(result.crop_box is not None for result in results)
    seconds = (time.perf_counter() - started) / max(len(paths), 1)
    return np.stack(vectors), seconds, cropped


def main(argv: list[str] | None = None) -> None:
    """Print both models' figures; the last line is the configured model's."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=None)
    parser.add_argument("--no-crop", action="store_true", help="embed whole photos (no animal crop)")
    parser.add_argument("--all", action="store_true", help="score every identity, also those trained on")
    args = parser.parse_args(argv)
    data = args.data or (DEVELOPMENT_DATA if DEVELOPMENT_DATA.is_dir() else SHIPPED_DATA)
    data = data.resolve()
    backbone = OnnxBackbone()
    models = [("generic", OnnxImageEmbedder(backbone=backbone, crop_animal=not args.no_crop))]
    keep: set[str] | None = None
    if IDENTITY_HEAD_FILE.exists():
        head = OnnxIdentityHead()
        models.append(
            ("identity", OnnxImageEmbedder(backbone=backbone, identity_head=head, crop_animal=not args.no_crop))
        )
        if not args.all and head.metadata.get("training_data") == data.name:
            keep = {str(dog) for dog in head.metadata.get("validation_identities", [])}
    paths, identities = list_photos(data, keep)
    if not paths:
        raise SystemExit(f"no photos under {data} (expected <identity>/<photo> folders)")
    scope = "held-out validation dogs only" if keep is not None else "every identity"
    print(f"data: {data} ({scope}); crop: {'off' if args.no_crop else 'on'}")  # noqa: T201
    print(f"model files: {BACKBONE_FILE.name} {BACKBONE_FILE.stat().st_size / 1e6:.1f} MB", end="")  # noqa: T201
    if IDENTITY_HEAD_FILE.exists():
        print(f", {IDENTITY_HEAD_FILE.name} {IDENTITY_HEAD_FILE.stat().st_size / 1e6:.1f} MB", end="")  # noqa: T201
    print()  # noqa: T201
    lines = []
    for label, embedder in models:
        vectors, seconds, cropped = embed_all(embedder, paths)
        scores = retrieval_scores(vectors, identities)
        info = embedder.info
        extra = ""
        if info.automatch_min_similarity is not None:
            same, different = pair_similarities(vectors, identities)
            tmr, fmr = match_rates_at(info.automatch_min_similarity, same, different)
            extra = f"; at automatch {info.automatch_min_similarity:.2f}: true-match {tmr:.3f}, false-match {fmr:.5f}"
        print(  # noqa: T201
            f"{label} ({info.key}, {info.dimension}-d): {seconds * 1000:.1f} ms/photo, {cropped} cropped{extra}"
        )
        lines.append(f"{label}: {scores.line()}")
    for line in lines:
        print(line)  # noqa: T201
    print(lines[-1].split(": ", 1)[1])  # noqa: T201


if __name__ == "__main__":
    main()
