"""A pet's tag: its public `animal_id` and the QR code that leads a finder to `{FRONTEND_ORIGIN}/found/{id}`."""

from __future__ import annotations

import io
import re
import secrets
import string

import qrcode
from qrcode.constants import ERROR_CORRECT_Q

ANIMAL_ID_PREFIX = "ANI"
ANIMAL_ID_RANDOM_CHARS = 22  # 22 base62 characters = 131 random bits (contract D5 asks for at least 96)
_BASE62 = string.digits + string.ascii_uppercase + string.ascii_lowercase
_ANIMAL_ID = re.compile(rf"{ANIMAL_ID_PREFIX}[0-9A-Za-z]{{{ANIMAL_ID_RANDOM_CHARS}}}")


def new_animal_id() -> str:
    """A fresh, unguessable, URL-safe tag id such as `ANI4fK2...` (the caller retries on a unique clash)."""
    return ANIMAL_ID_PREFIX + "".join(secrets.choice(_BASE62) for _ in range(ANIMAL_ID_RANDOM_CHARS))


def is_animal_id(value: str) -> bool:
    """True when `value` has the shape of an id minted by `new_animal_id` (cheap check before any lookup)."""
    return _ANIMAL_ID.fullmatch(value) is not None


def found_page_url(frontend_origin: str, animal_id: str) -> str:
    """The finder's landing page, exactly `{FRONTEND_ORIGIN}/found/{animal_id}` (no trailing slash)."""
    if not re.fullmatch(r"[A-Za-z0-9_-]+", animal_id):
        raise ValueError(f"animal_id must be URL-path-safe, got {animal_id!r}")
    return f"{frontend_origin.rstrip('/')}/found/{animal_id}"


def qr_code_png(url: str, *, box_size: int = 12, border: int = 4) -> bytes:
    """A black-on-white PNG QR code of `url`; error correction Q so a scratched or dirty tag still scans."""
    code = qrcode.QRCode(error_correction=ERROR_CORRECT_Q, box_size=box_size, border=border)
    code.add_data(url)
    code.make(fit=True)
    image = code.make_image(fill_color="black", back_color="white")
    out = io.BytesIO()
    image.save(out)  # qrcode's Pillow image writes PNG by default
    return out.getvalue()


def pet_tag_png(frontend_origin: str, animal_id: str) -> bytes:
    """The PNG the owner downloads and prints (P6)."""
    return qr_code_png(found_page_url(frontend_origin, animal_id))
