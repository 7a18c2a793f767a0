"""Photo decoding and resizing shared by the service, the training script and the export check.

The ONNX graph normalises pixels itself, so the only preprocessing outside it is here: decode, apply the
EXIF orientation, convert to RGB, scale the longer side to 224 with PIL's bilinear filter and pad the
shorter one with mid-grey (the whole photo, undistorted: no centre crop cutting off an animal at the edge,
no squashing that turns a cat in a wide photo into "other"), float32 channels-first in 0..255.
"""

from __future__ import annotations

import io
import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from pawgle.embeddings.model.port import ImageInput, InvalidImageError, ModelError

INPUT_SIZE = 224
# (127 - 127) / 128 = 0 after the graph's normalisation: padding carries no signal.
PAD_VALUE = 127
# Decoding a huge JPEG at full size is wasted work: JPEG draft mode decodes at 1/2, 1/4 or 1/8 scale
# straight from the DCT, keeping at least this many pixels a side, still enough for a crop of the animal.
DRAFT_MIN_SIDE = 512
MAX_PIXELS = 60_000_000


def decode_image(image: ImageInput, *, index: int = 0) -> Image.Image:
    """An RGB image upright as the camera meant it; raises `InvalidImageError` for anything else."""
    if isinstance(image, Image.Image):
        return ImageOps.exif_transpose(image).convert("RGB")
    if not isinstance(image, bytes | bytearray | memoryview) or len(image) == 0:
        raise InvalidImageError("the photo is empty or not bytes", index=index)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            opened = Image.open(io.BytesIO(bytes(image)))
            if opened.width * opened.height > MAX_PIXELS:
                raise InvalidImageError(
                    f"the photo has {opened.width}x{opened.height} pixels; send at most {MAX_PIXELS:,}", index=index
                )
            if opened.format == "JPEG":
                opened.draft("RGB", (DRAFT_MIN_SIDE, DRAFT_MIN_SIDE))
            upright = ImageOps.exif_transpose(opened)
            return upright.convert("RGB")
    except InvalidImageError:
        raise
    except (UnidentifiedImageError, OSError, ValueError, Image.DecompressionBombWarning, SyntaxError) as exc:
        raise InvalidImageError(f"the photo could not be decoded as an image ({exc})", index=index) from exc


@dataclass(frozen=True)
class Placement:
    """Where a photo lands on the 224 x 224 canvas: its scale and the padding before it."""

    scale: float
    left: int
    top: int
    width: int
    height: int


def placement_of(width: int, height: int) -> Placement:
    """The letterbox placement of a photo of this size."""
    scale = INPUT_SIZE / max(width, height)
    placed_w = max(1, min(INPUT_SIZE, round(width * scale)))
    placed_h = max(1, min(INPUT_SIZE, round(height * scale)))
    return Placement(scale, (INPUT_SIZE - placed_w) // 2, (INPUT_SIZE - placed_h) // 2, placed_w, placed_h)


def to_pixels(images: Sequence[Image.Image]) -> np.ndarray:
    """N x 3 x 224 x 224 float32 pixels (0..255) for the ONNX graph, each photo letterboxed."""
    batch = np.full((len(images), 3, INPUT_SIZE, INPUT_SIZE), PAD_VALUE, dtype=np.float32)
    for position, image in enumerate(images):
        place = placement_of(image.width, image.height)
        resized = image.resize((place.width, place.height), Image.Resampling.BILINEAR)
        batch[position, :, place.top : place.top + place.height, place.left : place.left + place.width] = np.asarray(
            resized, dtype=np.float32
        ).transpose(2, 0, 1)
    return batch


def l2_normalise(vectors: np.ndarray) -> np.ndarray:
    """Rows scaled to unit length (float32); a zero or non-finite row is a model failure, not a vector."""
    vectors = np.asarray(vectors, dtype=np.float32)
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    if not np.all(np.isfinite(vectors)) or np.any(norms <= 1e-12):
        raise ModelError("the model returned a zero or non-finite vector")
    return vectors / norms
