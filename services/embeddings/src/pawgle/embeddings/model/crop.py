"""Find the animal in a full photo from the classifier's own class activation map, to embed just that part.

No detector with weights in a registry package was found (ultralytics and mediapipe fetch their weights at
run time), so the localisation comes from EfficientNet-Lite0 itself: the ONNX graph returns a 7 x 7 map of
"dog or cat" evidence (the classifier's animal-class weights applied at every cell). The connected region
around the strongest cell, with a margin, is the animal; the photo is re-embedded cropped to it. When the
photo does not look like a dog or cat, or the animal already fills it, the whole photo is used.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from pawgle.embeddings.model.preprocess import INPUT_SIZE, placement_of

# Below this P(dog or cat) the map shows nothing worth trusting: keep the whole photo. It is low on purpose:
# a small animal in a big scene gets a low probability from the whole photo, and that is exactly the photo
# the crop helps (measured by training/measure_crop.py: 0.3 cropped 4 of 21 far-away copies, 0.01 cropped 19).
MIN_ANIMAL_PROBABILITY = 0.01
# Cells at least this fraction of the way from the map's minimum to its maximum belong to the animal.
CELL_THRESHOLD = 0.5
# Extra context around the region, in cells (a cell is 1/7 of the canvas a side).
MARGIN_CELLS = 0.3
# A region covering more than this share of the photo is not worth a second pass: it would only trim an
# animal that already fills the frame (at 0.7, 828 of 857 aligned face photos were cropped and retrieval on
# them lost 0.006-0.014 top-1; at 0.4, 14 are).
MAX_CROP_AREA = 0.40


@dataclass(frozen=True)
class CropBox:
    """A box on the model's 224 x 224 canvas, in relative coordinates (0..1): left, top, right, bottom."""

    left: float
    top: float
    right: float
    bottom: float


def box_in_photo(box: CropBox, width: int, height: int) -> tuple[int, int, int, int] | None:
    """The canvas box as whole pixels of the letterboxed photo, widened towards a square so the crop is not
    distorted; None when it covers so much of the photo that a second pass would see the same thing."""
    place = placement_of(width, height)

    def to_photo(value: float, offset: int, limit: int) -> float:
        return min(max((value * INPUT_SIZE - offset) / place.scale, 0.0), float(limit))

    left, right = to_photo(box.left, place.left, width), to_photo(box.right, place.left, width)
    top, bottom = to_photo(box.top, place.top, height), to_photo(box.bottom, place.top, height)
    if right - left < 2 or bottom - top < 2:
        return None
    side = max(right - left, bottom - top)
    centre_x, centre_y = (left + right) / 2, (top + bottom) / 2
    left, right = max(0.0, centre_x - side / 2), min(float(width), centre_x + side / 2)
    top, bottom = max(0.0, centre_y - side / 2), min(float(height), centre_y + side / 2)
    if (right - left) * (bottom - top) > MAX_CROP_AREA * width * height:
        return None
    return int(left), int(top), int(round(right)), int(round(bottom))


def _region_around_peak(mask: np.ndarray, peak: tuple[int, int]) -> np.ndarray:
    """The 4-connected cells of `mask` reachable from `peak`."""
    region = np.zeros_like(mask)
    stack = [peak]
    while stack:
        row, col = stack.pop()
        if not (0 <= row < mask.shape[0] and 0 <= col < mask.shape[1]) or region[row, col] or not mask[row, col]:
            continue
        region[row, col] = True
        stack.extend(((row + 1, col), (row - 1, col), (row, col + 1), (row, col - 1)))
    return region


def animal_box(animal_map: np.ndarray, animal_probability: float) -> CropBox | None:
    """The box to crop to, or None to embed the whole photo."""
    if animal_probability < MIN_ANIMAL_PROBABILITY or not np.all(np.isfinite(animal_map)):
        return None
    low, high = float(animal_map.min()), float(animal_map.max())
    if high - low <= 1e-6:
        return None
    scaled = (animal_map - low) / (high - low)
    peak = np.unravel_index(int(np.argmax(scaled)), scaled.shape)
    region = _region_around_peak(scaled >= CELL_THRESHOLD, (int(peak[0]), int(peak[1])))
    rows, cols = np.nonzero(region)
    cells_high, cells_wide = scaled.shape
    box = CropBox(
        left=max(0.0, (cols.min() - MARGIN_CELLS) / cells_wide),
        top=max(0.0, (rows.min() - MARGIN_CELLS) / cells_high),
        right=min(1.0, (cols.max() + 1 + MARGIN_CELLS) / cells_wide),
        bottom=min(1.0, (rows.max() + 1 + MARGIN_CELLS) / cells_high),
    )
    return box
