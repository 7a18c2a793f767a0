"""Augmentations that turn a clean photo into the kind of photo a finder takes: other framing, scale, side,
light and focus. Plain PIL and numpy, seeded, so the cached training features are reproducible."""

from __future__ import annotations

import io
import random

from PIL import Image, ImageEnhance, ImageFilter


def augmented_view(photo: Image.Image, rng: random.Random) -> Image.Image:
    """One random lost-pet-style variant of `photo`."""
    width, height = photo.size
    # Crop and scale: keep 55-100% of the area, aspect 3:4 to 4:3, anywhere in the photo.
    for _ in range(10):
        area = width * height * rng.uniform(0.55, 1.0)
        aspect = rng.uniform(0.75, 1.333)
        crop_w, crop_h = int(round((area * aspect) ** 0.5)), int(round((area / aspect) ** 0.5))
        if crop_w <= width and crop_h <= height:
            left, top = rng.randint(0, width - crop_w), rng.randint(0, height - crop_h)
            photo = photo.crop((left, top, left + crop_w, top + crop_h))
            break
    if rng.random() < 0.5:
        photo = photo.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    if rng.random() < 0.4:
        photo = photo.rotate(rng.uniform(-12, 12), resample=Image.Resampling.BILINEAR, expand=False)
    photo = ImageEnhance.Brightness(photo).enhance(rng.uniform(0.65, 1.35))
    photo = ImageEnhance.Contrast(photo).enhance(rng.uniform(0.7, 1.3))
    photo = ImageEnhance.Color(photo).enhance(rng.uniform(0.6, 1.4))
    if rng.random() < 0.3:
        photo = photo.filter(ImageFilter.GaussianBlur(radius=rng.uniform(0.5, 2.0)))
    if rng.random() < 0.3:
        # A small, far-away or heavily compressed photo: down-scale, then JPEG at low quality.
        side = rng.randint(56, 140)
        photo = photo.resize((side, side), Image.Resampling.BILINEAR)
        buffer = io.BytesIO()
        photo.save(buffer, format="JPEG", quality=rng.randint(30, 75))
        photo = Image.open(io.BytesIO(buffer.getvalue())).convert("RGB")
    return photo
