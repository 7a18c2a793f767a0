"""Measure the animal-crop step on full photos: what it crops, and whether it brings a far-away animal's
vector back to the close-up's. `python services/embeddings/training/measure_crop.py [photo folders...]`.

For every photo: the crop box found in the photo itself, then the photo pasted at 35% of the width into a
wider scene (the shipped coffee-cup photo, enlarged), embedded with and without the crop step, and its
similarity to the close-up with the same model.
"""

from __future__ import annotations

import argparse
import io
from pathlib import Path

import numpy as np
from PIL import Image

from pawgle.embeddings.model.onnx_embedder import OnnxBackbone, OnnxIdentityHead, OnnxImageEmbedder

TESTS_PHOTOS = Path(__file__).resolve().parents[1] / "tests" / "data" / "photos"
SHARED_PHOTOS = Path(__file__).resolve().parents[3] / ".." / "shared" / "data" / "photos"
SCENE = TESTS_PHOTOS / "coffee_cup.jpg"


def far_away(photo: Image.Image, scene: Image.Image, position: tuple[float, float]) -> bytes:
    """`photo` small inside a 4:3 scene, as a JPEG."""
    canvas = scene.resize((1200, 900))
    small = photo.copy()
    small.thumbnail((int(canvas.width * 0.35), int(canvas.height * 0.45)))
    left = int(position[0] * (canvas.width - small.width))
    top = int(position[1] * (canvas.height - small.height))
    canvas.paste(small, (left, top))
    out = io.BytesIO()
    canvas.save(out, format="JPEG", quality=88)
    return out.getvalue()


def main() -> None:
    """Print one line per photo and the means."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folders", nargs="*", type=Path, default=[SHARED_PHOTOS, TESTS_PHOTOS])
    args = parser.parse_args()
    backbone = OnnxBackbone()
    head = OnnxIdentityHead()
    with_crop = OnnxImageEmbedder(backbone=backbone, identity_head=head, crop_animal=True)
    without_crop = OnnxImageEmbedder(backbone=backbone, identity_head=head, crop_animal=False)
    scene = Image.open(SCENE).convert("RGB")
    gains = []
    for folder in args.folders:
        for path in sorted(folder.glob("*.jpg")):
            if path == SCENE:
                continue
            data = path.read_bytes()
            (close_up,) = with_crop.embed([data])
            photo = Image.open(io.BytesIO(data)).convert("RGB")
            for position in ((0.1, 0.8), (0.9, 0.2)):
                distant = far_away(photo, scene, position)
                (cropped,) = with_crop.embed([distant])
                (whole,) = without_crop.embed([distant])
                plain = float(close_up.vector @ whole.vector)
                better = float(close_up.vector @ cropped.vector)
                gains.append((plain, better))
                print(  # noqa: T201
                    f"{path.name}: close-up crop {close_up.crop_box}, species {close_up.species}; far away at "
                    f"{position}: crop {cropped.crop_box}, similarity to close-up {plain:.3f} whole, "
                    f"{better:.3f} cropped"
                )
    plain_mean, crop_mean = np.mean(gains, axis=0)
    print(  # noqa: T201
        f"mean similarity of a far-away copy to its close-up: {plain_mean:.3f} whole photo, "
        f"{crop_mean:.3f} with the crop step ({len(gains)} copies)"
    )


if __name__ == "__main__":
    main()
