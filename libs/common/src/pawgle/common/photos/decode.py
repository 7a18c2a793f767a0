"""Turn uploaded bytes into a clean photo: verified by decoding, upright, sRGB, no metadata, re-encoded.

Synchronous and CPU-bound: call it through `PhotoPipeline` (a bounded thread pool), never on the event loop.
"""

from __future__ import annotations

import io
import logging
import math
from dataclasses import dataclass

from PIL import Image, ImageCms, UnidentifiedImageError

from pawgle.common.photos.rules import (
    DEFAULT_RULES,
    PhotoDamaged,
    PhotoDimensionsTooLarge,
    PhotoEmpty,
    PhotoRules,
    PhotoTooLarge,
    PhotoTypeNotAllowed,
)

log = logging.getLogger(__name__)

# Pillow's own format names. MPO is how Pillow names the multi-picture JPEGs many phones write.
_ALLOWED_FORMATS = ("JPEG", "PNG", "GIF", "WEBP")
_JPEG_FAMILY = {"JPEG", "MPO"}
_SRGB = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB"))
_ORIENTATION_TAG = 0x0112
# EXIF orientation -> the transposition that makes the pixels upright (as ImageOps.exif_transpose does).
_ORIENTATION_FIX = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}


@dataclass(frozen=True)
class ProcessedPhoto:
    """A photo ready to store: the re-encoded image, its thumbnail, and what they are."""

    data: bytes
    thumbnail: bytes
    content_type: str  # image/jpeg or image/webp
    extension: str  # jpg or webp
    width: int
    height: int
    source_format: str  # what the upload really was (JPEG, PNG, GIF, WEBP), for logs and metrics


def process_photo(data: bytes, *, rules: PhotoRules = DEFAULT_RULES, label: str = "the image") -> ProcessedPhoto:
    """Verify `data` is an allowed photo within the rules and return it cleaned and re-encoded.

    Raises a PhotoRejected subclass (HTTP 400) naming `label` for every refusal.
    """
    if not data:
        raise PhotoEmpty(label=label)
    if len(data) > rules.max_bytes:
        raise PhotoTooLarge(label=label, size=len(data), rules=rules)
    with _open_checked(data, rules=rules, label=label) as image:
        source_format = "JPEG" if image.format in _JPEG_FAMILY else str(image.format)
        picture = _decode_upright_srgb(image, rules=rules, label=label)
        thumb = picture.copy()
        thumb.thumbnail((rules.thumbnail_side, rules.thumbnail_side), Image.Resampling.LANCZOS)
        content_type, extension = _output_format(picture)
        return ProcessedPhoto(
            data=_encode(picture, extension, rules),
            thumbnail=_encode(thumb, extension, rules),
            content_type=content_type,
            extension=extension,
            width=picture.width,
            height=picture.height,
            source_format=source_format,
        )


def decode_photo(data: bytes, *, rules: PhotoRules = DEFAULT_RULES, label: str = "the image") -> Image.Image:
    """Verify `data` as `process_photo` does and return the decoded picture (upright, sRGB), re-encoding nothing.

    For a photo that is only looked at, never stored (an image-search query): the same refusals, without the
    cost of encoding a copy and a thumbnail. The picture is at most `rules.max_side` on its long side.
    """
    if not data:
        raise PhotoEmpty(label=label)
    if len(data) > rules.max_bytes:
        raise PhotoTooLarge(label=label, size=len(data), rules=rules)
    with _open_checked(data, rules=rules, label=label) as image:
        picture = _decode_upright_srgb(image, rules=rules, label=label)
        return picture.copy() if picture is image else picture


def _open_checked(data: bytes, *, rules: PhotoRules, label: str) -> Image.Image:
    """Open lazily (header only) and refuse by format and pixel count before anything is decoded."""
    try:
        # `formats` keeps Pillow from trying its other plugins (PSD, TIFF, EPS, ...) on hostile input.
        image = Image.open(io.BytesIO(data), formats=_ALLOWED_FORMATS)
    except Image.DecompressionBombError:
        # Pillow's own last-resort refusal (past ~179 MP); our limit is far lower, so say the same thing.
        raise PhotoDimensionsTooLarge(
            label=label, width=0, height=0, limit=rules.max_pixels, kind="any image"
        ) from None
    except UnidentifiedImageError:
        raise PhotoTypeNotAllowed(label=label, found=_sniff_other_format(data)) from None
    except (OSError, ValueError, SyntaxError, EOFError):
        # A recognised signature with a header that does not parse.
        raise PhotoDamaged(label=label) from None
    width, height = image.size
    if width <= 0 or height <= 0:
        image.close()
        raise PhotoDamaged(label=label)
    kind, bytes_per_pixel = _decode_cost(image)
    limit = min(rules.max_pixels, rules.max_decode_bytes // bytes_per_pixel)
    if width * height > limit:
        image.close()
        raise PhotoDimensionsTooLarge(label=label, width=width, height=height, limit=limit, kind=kind)
    return image


def _decode_cost(image: Image.Image) -> tuple[str, int]:
    """What kind of image this is, and the peak bytes per pixel its decoding takes (`make bench` measures it)."""
    if image.format in _JPEG_FAMILY:
        if image.info.get("progressive"):
            # libjpeg holds every coefficient of the whole image: 2 bytes per sample, up to 3 per pixel.
            return "a progressive JPEG", 7
        return "a JPEG", 1  # decoded at 1/2..1/8 scale, streaming
    has_alpha = image.mode in ("RGBA", "LA", "PA") or "transparency" in image.info
    if image.format == "WEBP":
        # libwebp's canvas, Pillow's copy and the conversion, all at full size
        return ("a WebP image with transparency", 21) if has_alpha else ("a WebP image", 17)
    if has_alpha:
        return f"a {image.format} image with transparency", 11  # scaling premultiplies alpha: a full copy
    return f"a {image.format} image", 6


def _decode_upright_srgb(image: Image.Image, *, rules: PhotoRules, label: str) -> Image.Image:
    """Decode the first frame, scale it down, apply the EXIF orientation, convert to sRGB RGB or RGBA."""
    if image.format in _JPEG_FAMILY:
        # Decode at 1/2, 1/4 or 1/8 scale straight from the DCT data while the long side stays at least
        # 3/4 of max_side: a 12 MP photo decodes at 2016x1512, a 50 MP one at 2000x1500, in a fraction of
        # the time and memory of a full decode (max_side is a cap, not an exact size).
        scale = rules.max_side * 3 / 4 / max(image.size)
        if scale < 1:
            image.draft("RGB", (math.ceil(image.width * scale), math.ceil(image.height * scale)))
    try:
        image.load()  # the first frame only: an animation's other frames are never decoded
    except Image.DecompressionBombError:
        raise PhotoDimensionsTooLarge(
            label=label, width=0, height=0, limit=rules.max_pixels, kind="any image"
        ) from None
    except (OSError, ValueError, SyntaxError, EOFError, MemoryError) as exc:
        log.info("photo refused as damaged (%s): %s", label, exc)
        raise PhotoDamaged(label=label) from None
    icc = image.info.get("icc_profile")
    orientation = _exif_orientation(image)
    picture = _to_rgb_modes(image)
    # Scale down before rotating and colour-converting, so those copies are small: first by an integer
    # factor (a cheap box filter), then with Lanczos to the final size, as Pillow's reducing_gap does.
    factor = max(picture.size) // rules.max_side
    if factor >= 2:
        picture = picture.reduce(factor)
    picture.thumbnail((rules.max_side, rules.max_side), Image.Resampling.LANCZOS)
    if orientation in _ORIENTATION_FIX:
        picture = picture.transpose(_ORIENTATION_FIX[orientation])
    return _to_srgb(picture, icc)


def _exif_orientation(image: Image.Image) -> int:
    try:
        return int(image.getexif().get(_ORIENTATION_TAG, 1))
    except Exception:  # noqa: BLE001 - damaged EXIF must not cost the photo: it is discarded anyway
        return 1


def _to_rgb_modes(image: Image.Image) -> Image.Image:
    """Bring palette, 1-bit, 16-bit and grey-with-alpha images to RGB or RGBA (CMYK and L stay for ICC)."""
    if image.mode in ("RGB", "RGBA", "L", "CMYK"):
        return image
    if image.mode.startswith("I") or image.mode == "F":
        # 16-bit and float greyscale PNGs: scale to 8 bits (a plain convert would clip at 255).
        return image.convert("I").point(lambda value: value / 256).convert("L")
    has_alpha = image.mode in ("LA", "PA", "La", "RGBa") or "transparency" in image.info
    return image.convert("RGBA" if has_alpha else "RGB")


def _to_srgb(image: Image.Image, icc: bytes | None) -> Image.Image:
    """RGB or RGBA pixels in sRGB: an embedded profile is converted, not just dropped, so colours stay right."""
    target = "RGBA" if image.mode == "RGBA" else "RGB"
    if icc:
        try:
            source = ImageCms.ImageCmsProfile(io.BytesIO(icc))
            converted = ImageCms.profileToProfile(image, source, _SRGB, outputMode=target)
            if converted is not None:
                image = converted
        except (ImageCms.PyCMSError, OSError, ValueError, TypeError):
            pass  # a broken or unusual profile: keep the pixels as they are, as browsers do
    if image.mode != target:
        image = image.convert(target)
    if target == "RGBA" and image.getchannel("A").getextrema()[0] == 255:
        image = image.convert("RGB")  # an alpha channel with nothing transparent is stored as a plain photo
    return image


def _output_format(image: Image.Image) -> tuple[str, str]:
    """JPEG for ordinary photos; WebP when transparency must survive (JPEG has none)."""
    if image.mode == "RGBA":
        return "image/webp", "webp"
    return "image/jpeg", "jpg"


def _encode(image: Image.Image, extension: str, rules: PhotoRules) -> bytes:
    # A fresh info dict and no exif/icc/xmp arguments: nothing of the upload's metadata is written back.
    image.info = {}
    out = io.BytesIO()
    if extension == "jpg":
        # Optimised Huffman tables: 3-4 % smaller for a little CPU; progressive would save ~5 % more
        # at four times the encoding time, too dear on small machines.
        image.save(out, "JPEG", quality=rules.jpeg_quality, optimize=True)
    else:
        image.save(out, "WEBP", quality=rules.webp_quality, method=4)
    return out.getvalue()


def _sniff_other_format(data: bytes) -> str | None:
    """Name a few common types that are not allowed, so the message says what was actually sent."""
    head = data[:64].lstrip().lower()
    if head.startswith((b"<!doctype html", b"<html", b"<head", b"<body", b"<script")):
        return "an HTML document"
    if head.startswith((b"<?xml", b"<svg")):
        return "an SVG or XML document"
    if head.startswith(b"%pdf"):
        return "a PDF document"
    if data[4:12] in (b"ftypheic", b"ftypheix", b"ftypmif1", b"ftypavif"):
        return "a HEIC or AVIF image"
    if data[:2] == b"BM":
        return "a BMP image"
    if data[:4] in (b"II*\x00", b"MM\x00*"):
        return "a TIFF image"
    return None
