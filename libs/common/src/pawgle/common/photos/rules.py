"""The limits every uploaded photo must meet, and the typed refusal for each one broken."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pawgle.common.errors import BadRequest, NotFound

MEGABYTE = 1024 * 1024


@dataclass(frozen=True)
class PhotoRules:
    """Limits and output sizes of the photo pipeline; services build one from their settings."""

    max_bytes: int = 10 * MEGABYTE
    # Both read from the image header before any pixel is decoded (decompression bombs). max_pixels caps
    # every image; max_decode_bytes caps the memory its decoding may take, estimated per format from the
    # header (decode.py: a camera's baseline JPEG decodes at reduced scale and costs ~1 byte per pixel,
    # PNG and GIF ~6, either with transparency ~11, a progressive JPEG ~7, WebP 17-21). With the defaults:
    # JPEG up to 50 MP, PNG and GIF 22 MP (12 with transparency), progressive JPEG 19 MP, WebP 8 MP (6).
    max_pixels: int = 50_000_000
    max_decode_bytes: int = 128 * MEGABYTE
    max_side: int = 2048  # stored photos are scaled down to this (long side); enough for any screen and the model
    thumbnail_side: int = 320
    jpeg_quality: int = 85
    webp_quality: int = 85
    max_concurrent_decodes: int = 2  # each decode may hold max_decode_bytes: bounded so a burst cannot exhaust memory

    def describe_max_bytes(self) -> str:
        """'10MB' for the default, as the contract's error text spells it."""
        if self.max_bytes < MEGABYTE:
            return f"{round(self.max_bytes / 1024, 1):g}KB"
        return f"{round(self.max_bytes / MEGABYTE, 1):g}MB"


DEFAULT_RULES = PhotoRules()

ALLOWED_EXTENSIONS = ".jpg, .jpeg, .png, .gif, .webp"


class PhotoRejected(BadRequest):
    """An upload that is not an acceptable photo; `code` names the reason (metrics, clients)."""

    code = "photo_rejected"

    def __init__(self, detail: str, **extra: Any) -> None:
        super().__init__(detail, code=self.code, **extra)


class PhotoTooLarge(PhotoRejected):
    code = "photo_too_large"

    def __init__(self, *, label: str, size: int, rules: PhotoRules) -> None:
        limit = rules.describe_max_bytes()
        super().__init__(
            f"Image file too large (max {limit}): {label} is {size / MEGABYTE:.1f} MB; "
            f"upload a smaller photo (at most {limit}).",
            error=f"Image file too large (max {limit})",
        )


class PhotoTypeNotAllowed(PhotoRejected):
    code = "photo_type_not_allowed"

    def __init__(self, *, label: str, found: str | None = None) -> None:
        what = found or "not an image this site can read"
        super().__init__(
            f"Invalid file type. Allowed types: {ALLOWED_EXTENSIONS}. {label} is {what}; "
            "upload a JPEG, PNG, GIF or WebP photo.",
            error=f"Invalid file type. Allowed types: {ALLOWED_EXTENSIONS}",
        )


class PhotoDimensionsTooLarge(PhotoRejected):
    code = "photo_too_many_pixels"

    def __init__(self, *, label: str, width: int, height: int, limit: int, kind: str) -> None:
        size = f"{width}x{height} pixels ({width * height / 1e6:.1f} megapixels)" if width else "too many pixels"
        most = f"{limit / 1e6:.0f}" if limit >= 10_000_000 else f"{limit / 1e6:.1f}"
        super().__init__(
            f"Image dimensions too large: {label} is {size}; at most {most} megapixels are "
            f"accepted for {kind}, resize the photo and upload it again."
        )


class PhotoDamaged(PhotoRejected):
    code = "photo_damaged"

    def __init__(self, *, label: str) -> None:
        super().__init__(
            f"Image file is truncated or damaged: {label} could not be decoded; upload the complete file again."
        )


class PhotoEmpty(PhotoRejected):
    code = "photo_empty"

    def __init__(self, *, label: str) -> None:
        super().__init__(f"Image file is empty: {label} has no content; choose the photo again.")


class TooManyPhotos(PhotoRejected):
    code = "too_many_photos"

    def __init__(self, *, count: int, limit: int, per: str) -> None:
        super().__init__(f"Too many photos: {count} given, at most {limit} per {per}; remove {count - limit}.")


class NoPhotoProvided(PhotoRejected):
    code = "no_photo"

    def __init__(self) -> None:
        super().__init__("No image provided", error="No image provided")


class ExistingPhotoInvalid(PhotoRejected):
    code = "existing_photo_invalid"


class ExistingPhotoNotOwned(NotFound):
    """A well-formed photo reference that is not among the caller's photos (404: no existence oracle, D7)."""

    code = "existing_photo_not_owned"

    def __init__(self, *, label: str) -> None:
        super().__init__(f"Photo not found: {label} is not one of your pets' photos.", code=self.code)
