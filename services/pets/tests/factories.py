"""Factories for the pets tests: photo files (good and hostile), multipart forms, events, blob counts."""

from __future__ import annotations

import io
import itertools
import json
import struct
import time
import zlib
from pathlib import Path
from typing import Any

from PIL import ExifTags, Image

from pawgle.common.events.auth import UserRegistered
from pawgle.common.testing.service import RunningService
from pawgle.common.testing.service import wait_for as wait_for  # the tests import it from here

DATA = Path(__file__).parent / "data"
FRONTEND = "https://app.pawgle.test"
PUBLIC_BASE = "http://localhost:8000"
_ids = itertools.count(int(time.time() * 1000) % 1_000_000_000)


def next_id() -> int:
    """A fresh positive user id, unique within the test session."""
    return next(_ids)


def photo() -> bytes:
    """A real photo (shipped in data/)."""
    return (DATA / "dog2.4.jpg").read_bytes()


def _encode(image: Image.Image, fmt: str, **options: Any) -> bytes:
    out = io.BytesIO()
    image.save(out, fmt, **options)
    return out.getvalue()


def jpeg_with_gps() -> bytes:
    """The shipped photo as a phone writes it: EXIF with the camera, the owner and the GPS position."""
    picture = Image.open(io.BytesIO(photo()))
    exif = Image.Exif()
    exif[ExifTags.Base.Make] = "PawPhone"
    exif[ExifTags.Base.Artist] = "Jane Owner"
    gps = exif.get_ifd(ExifTags.IFD.GPSInfo)
    gps[ExifTags.GPS.GPSLatitudeRef] = "N"
    gps[ExifTags.GPS.GPSLatitude] = (52.0, 31.0, 12.5)
    gps[ExifTags.GPS.GPSLongitudeRef] = "E"
    gps[ExifTags.GPS.GPSLongitude] = (13.0, 24.0, 36.0)
    return _encode(picture, "JPEG", quality=92, exif=exif)


def png_bomb(width: int = 12000, height: int = 12000) -> bytes:
    """A valid greyscale PNG of black rows: about 140 KB on disk, 144 megapixels decoded."""
    compressor = zlib.compressobj(9)
    row = b"\x00" * (width + 1)
    body = b"".join(compressor.compress(row) for _ in range(height)) + compressor.flush()

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", body) + chunk(b"IEND", b"")


def truncated_jpeg() -> bytes:
    data = photo()
    return data[: len(data) // 3]


def html_page() -> bytes:
    return b"<!doctype html><html><body><script>alert(document.cookie)</script></body></html>"


def oversized_jpeg(megabytes: int = 11) -> bytes:
    """A real JPEG padded past `megabytes` (trailing bytes after the image, as some cameras write)."""
    return photo() + b"\x00" * (megabytes * 1024 * 1024)


def pet_form(**overrides: Any) -> dict[str, str]:
    """The add page's multipart text fields (values are strings, additionalInfo JSON)."""
    fields: dict[str, Any] = {
        "name": "Hachi",
        "category": "Domestic",
        "type": "Dogs",
        "breed": "Labrador Retriever",
        "isPublic": "true",
        "additionalInfo": json.dumps({"weight": "12", "height": "40", "subNotes": ["shy"]}),
    }
    fields.update(overrides)
    return {k: v for k, v in fields.items() if v is not None}


def images(*files: bytes, field: str = "images") -> list[tuple[str, tuple[str, bytes, str]]]:
    return [(field, (f"photo{i}.jpg", data, "image/jpeg")) for i, data in enumerate(files)]


def add_pet(pets: RunningService, user_id: int, *files: bytes, **fields: Any) -> Any:
    """POST /pets/add/ as `user_id` with these photos (one real photo by default)."""
    return pets.client.post(
        "/api/auth/pets/add/",
        data=pet_form(**fields),
        files=images(*(files or (photo(),))),
        headers=pets.headers(user_id),
    )


def stored_blobs(pets: RunningService) -> list[str]:
    """Every file in the service's local media folder (photos and thumbnails)."""
    root = pets.settings.data_dir / "media"
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file()) if root.exists() else []


def blob_path(pets: RunningService, url: str) -> Path:
    key = pets.app.state.blobs.key_from_url(url)
    assert key is not None, url
    return pets.settings.data_dir / "media" / key


def user_registered(user_id: int, **overrides: Any) -> UserRegistered:
    fields: dict[str, Any] = {
        "user_id": user_id,
        "display_name": f"user {user_id}",
        "email": f"user{user_id}@example.org",
        "email_verified": True,
    }
    fields.update(overrides)
    return UserRegistered(**fields)
