"""Reusing photos a caller already has (the edit flow's `existing_images`): only the caller's own (D7).

The service holding the photos (pets) knows which keys belong to the caller; this module turns what the
client sent (URLs, presigned or not, or bare keys) into keys, checks their shape, and checks membership in
that set. Foreign and unknown photos get the same 404, so the answer reveals nothing about other users.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Iterable

from pawgle.common.blobs import BlobStore
from pawgle.common.photos.pipeline import is_photo_key
from pawgle.common.photos.rules import ExistingPhotoInvalid, ExistingPhotoNotOwned

MAX_EXISTING_FIELD_CHARS = 64 * 1024


def parse_existing_images(raw: str | None, *, field: str = "existing_images", max_items: int = 10) -> list[str]:
    """The multipart field as a list of strings: absent or blank means none; anything else malformed is a 400."""
    if raw is None or not raw.strip():
        return []
    if len(raw) > MAX_EXISTING_FIELD_CHARS:
        raise ExistingPhotoInvalid(f"{field} is too long; send at most {max_items} photo URLs.")
    try:
        value = json.loads(raw)
    except ValueError:
        raise ExistingPhotoInvalid(f'{field} must be a JSON array of photo URLs, e.g. ["https://..."].') from None
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise ExistingPhotoInvalid(f"{field} must be a JSON array of strings (photo URLs).")
    if len(value) > max_items:
        raise ExistingPhotoInvalid(f"{field} has {len(value)} photos; at most {max_items} are allowed.")
    return value


def key_of_reference(reference: str, *, store: BlobStore, prefix: str) -> str | None:
    """The photo key a URL (query string ignored) or bare key names, or None if it names none of ours."""
    reference = reference.strip()
    key = store.key_from_url(reference) if "://" in reference else reference.split("?", 1)[0]
    if key is None or not is_photo_key(key, prefix=prefix):
        return None
    return key


def owned_photo_keys(
    references: Iterable[str],
    *,
    owned: Collection[str],
    store: BlobStore,
    prefix: str,
    field: str = "existing_images",
) -> list[str]:
    """Keys of the referenced photos, in order and without repeats; each must be among `owned` (404 if not)."""
    keys: list[str] = []
    for index, reference in enumerate(references):
        label = f"{field}[{index}]"
        key = key_of_reference(reference, store=store, prefix=prefix)
        if key is None:
            raise ExistingPhotoInvalid(f"{label} is not the URL of a photo stored by this site; send it as returned.")
        if key not in owned:
            raise ExistingPhotoNotOwned(label=label)
        if key not in keys:
            keys.append(key)
    return keys
