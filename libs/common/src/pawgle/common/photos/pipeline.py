"""The async entry point: check, process off the event loop, store under random keys, all or nothing.

Call `PhotoPipeline.accept()` in the route *before* the first database query of the request: decoding
takes tens to hundreds of milliseconds and must not hold a transaction (or a SQLite write lock) open.
If the database step then fails, call `discard()` with what was stored.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import re
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Protocol

from prometheus_client import Counter

from pawgle.common.blobs import BlobStore, new_blob_key
from pawgle.common.photos.decode import ProcessedPhoto, process_photo
from pawgle.common.photos.rules import (
    DEFAULT_RULES,
    NoPhotoProvided,
    PhotoEmpty,
    PhotoRejected,
    PhotoRules,
    PhotoTooLarge,
    TooManyPhotos,
)

log = logging.getLogger(__name__)

PHOTOS_STORED = Counter("pawgle_photos_stored_total", "Photos accepted and stored", ["prefix", "source_format"])
PHOTOS_REJECTED = Counter("pawgle_photos_rejected_total", "Uploads refused by the photo rules", ["prefix", "reason"])

_THUMBNAIL_MARK = ".thumb."
# What `new_blob_key` produces for a photo: prefix, 22 base64url characters (128 bits), extension.
_PHOTO_KEY = re.compile(r"(?P<prefix>[a-z][a-z0-9_-]{0,30})/(?P<token>[A-Za-z0-9_-]{22})\.(?P<ext>jpg|webp)")


@dataclass(frozen=True)
class PhotoUpload:
    """One uploaded file as the route received it; the name is used in no decision, only in logs."""

    data: bytes
    filename: str | None = None


@dataclass(frozen=True)
class StoredPhoto:
    """Where a processed photo and its thumbnail were stored."""

    key: str
    thumbnail_key: str
    content_type: str
    width: int
    height: int


class AsyncReadable(Protocol):
    async def read(self, size: int = -1) -> bytes: ...


class TransactionAware(Protocol):
    def in_transaction(self) -> bool: ...


def thumbnail_key_for(key: str) -> str:
    """The thumbnail's key beside a photo's key: `pets/<token>.jpg` -> `pets/<token>.thumb.jpg`."""
    stem, _, extension = key.rpartition(".")
    return f"{stem}{_THUMBNAIL_MARK}{extension}"


def is_photo_key(key: str, *, prefix: str | None = None) -> bool:
    """True when `key` has the shape of a stored photo's key (not a thumbnail), optionally under `prefix`."""
    match = _PHOTO_KEY.fullmatch(key)
    return match is not None and (prefix is None or match["prefix"] == prefix)


def check_photo_count(count: int, *, limit: int, per: str, minimum: int = 0) -> None:
    """Refuse a request with more than `limit` photos in total (or fewer than `minimum`) with a clear 400."""
    if count > limit:
        raise TooManyPhotos(count=count, limit=limit, per=per)
    if count < minimum:
        raise NoPhotoProvided()


async def read_upload(file: AsyncReadable, *, rules: PhotoRules = DEFAULT_RULES, label: str = "the image") -> bytes:
    """Read an upload, refusing it as soon as it passes the size limit (never buffers more than that)."""
    chunks: list[bytes] = []
    size = 0
    while chunk := await file.read(256 * 1024):
        size += len(chunk)
        if size > rules.max_bytes:
            raise PhotoTooLarge(label=label, size=size, rules=rules)
        chunks.append(chunk)
    return b"".join(chunks)


class PhotoPipeline:
    """Shared photo handling of pets, reports and chat over one blob store."""

    def __init__(self, store: BlobStore, *, rules: PhotoRules = DEFAULT_RULES) -> None:
        self.store = store
        self.rules = rules
        # A pool of its own: decoding is bounded here whatever else uses asyncio's default executor.
        self._decoders = ThreadPoolExecutor(max_workers=rules.max_concurrent_decodes, thread_name_prefix="photos")

    def close(self) -> None:
        """Stop the decoding threads (at service shutdown)."""
        self._decoders.shutdown(wait=True, cancel_futures=True)

    async def prepare(
        self, uploads: Sequence[PhotoUpload], *, prefix: str, field: str = "images"
    ) -> list[ProcessedPhoto]:
        """Verify and re-encode every upload off the event loop; the first refusal raises, nothing is kept."""
        loop = asyncio.get_running_loop()
        for index, upload in enumerate(uploads):
            # Cheap checks first, so one oversized file refuses the request before any decoding starts.
            label = _label(field, index, len(uploads))
            try:
                if not upload.data:
                    raise PhotoEmpty(label=label)
                if len(upload.data) > self.rules.max_bytes:
                    raise PhotoTooLarge(label=label, size=len(upload.data), rules=self.rules)
            except PhotoRejected as exc:
                self._count_rejection(prefix, exc)
                raise
        jobs = [
            loop.run_in_executor(
                self._decoders,
                functools.partial(
                    process_photo, upload.data, rules=self.rules, label=_label(field, index, len(uploads))
                ),
            )
            for index, upload in enumerate(uploads)
        ]
        results = await asyncio.gather(*jobs, return_exceptions=True)
        for result in results:
            if isinstance(result, PhotoRejected):
                self._count_rejection(prefix, result)
                raise result
            if isinstance(result, BaseException):
                raise result
        return [r for r in results if isinstance(r, ProcessedPhoto)]

    async def store_processed(self, photos: Sequence[ProcessedPhoto], *, prefix: str) -> list[StoredPhoto]:
        """Write each photo and its thumbnail under fresh random keys; on any failure remove what was written."""
        stored: list[StoredPhoto] = []
        try:
            for photo in photos:
                key = new_blob_key(prefix, photo.extension)
                thumb_key = thumbnail_key_for(key)
                await asyncio.to_thread(self.store.put, key, photo.data, content_type=photo.content_type)
                stored.append(StoredPhoto(key, thumb_key, photo.content_type, photo.width, photo.height))
                await asyncio.to_thread(self.store.put, thumb_key, photo.thumbnail, content_type=photo.content_type)
        except BaseException:
            await asyncio.shield(self.discard(stored))
            raise
        for photo in photos:
            PHOTOS_STORED.labels(prefix, photo.source_format).inc()
        return stored

    async def accept(
        self,
        uploads: Sequence[PhotoUpload],
        *,
        prefix: str,
        limit: int,
        per: str,
        existing: int = 0,
        minimum: int = 0,
        field: str = "images",
        session: TransactionAware | None = None,
    ) -> list[StoredPhoto]:
        """Count-check, verify, re-encode and store a request's photos: all of them or (on a 4xx) none.

        Pass the request's database session to have it checked that no transaction is open yet.
        """
        if session is not None and session.in_transaction():
            # A programming error, caught by the caller's tests: decoding inside a transaction would hold
            # its locks (on SQLite the single write lock) for the whole decode.
            raise RuntimeError("PhotoPipeline.accept() must run before the request's first database query")
        try:
            check_photo_count(existing + len(uploads), limit=limit, per=per, minimum=minimum)
        except PhotoRejected as exc:
            self._count_rejection(prefix, exc)
            raise
        processed = await self.prepare(uploads, prefix=prefix, field=field)
        return await self.store_processed(processed, prefix=prefix)

    async def discard(self, photos: Sequence[StoredPhoto]) -> None:
        """Delete stored photos and their thumbnails (a failed request, a deleted pet); missing ones are fine."""
        for photo in photos:
            for key in (photo.key, photo.thumbnail_key):
                try:
                    await asyncio.to_thread(self.store.delete, key)
                except Exception:  # noqa: BLE001 - an orphan blob is harmless; the caller's error matters more
                    log.warning("could not delete blob %s", key, exc_info=True)

    async def discard_keys(self, keys: Sequence[str]) -> None:
        """Delete photos by their keys (and each one's thumbnail)."""
        await self.discard([StoredPhoto(k, thumbnail_key_for(k), "", 0, 0) for k in keys])

    @staticmethod
    def _count_rejection(prefix: str, exc: PhotoRejected) -> None:
        PHOTOS_REJECTED.labels(prefix, exc.code).inc()


def _label(field: str, index: int, total: int) -> str:
    return field if total == 1 else f"{field}[{index}]"
