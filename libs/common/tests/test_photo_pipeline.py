"""The photo pipeline: off the loop, all or nothing, through the blob store; D7; the S3 adapter."""

from __future__ import annotations

import json
import random
import threading
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI, UploadFile
from PIL import ExifTags, Image
from sqlalchemy import text
from sqlmodel import Session

from pawgle.common.blobs import LocalBlobStore, S3BlobStore
from pawgle.common.db import make_engine
from pawgle.common.errors import install_error_handlers
from pawgle.common.photos import (
    ExistingPhotoInvalid,
    ExistingPhotoNotOwned,
    PhotoDamaged,
    PhotoDimensionsTooLarge,
    PhotoPipeline,
    PhotoRejected,
    PhotoRules,
    PhotoTooLarge,
    PhotoTypeNotAllowed,
    PhotoUpload,
    TooManyPhotos,
    owned_photo_keys,
    parse_existing_images,
    process_photo,
    read_upload,
    thumbnail_key_for,
)
from pawgle.common.photos import decode as decode_module
from pawgle.common.testing.s3 import empty_bucket_store
from pawgle.common.testing.server import serve

from . import photo_samples as samples
from .photo_samples import reopen, stored_files

pytestmark = pytest.mark.filterwarnings("ignore::PIL.Image.DecompressionBombWarning")


@pytest.fixture
def media(tmp_path: Path) -> LocalBlobStore:
    return LocalBlobStore(tmp_path / "media", public_base_url="http://localhost:8000/")


@pytest.fixture
async def pipeline(media: LocalBlobStore) -> AsyncIterator[PhotoPipeline]:
    photos = PhotoPipeline(media)
    yield photos
    photos.close()


# The pipeline: off the loop, all or nothing, through the blob store


async def test_the_pipeline_stores_photo_and_thumbnail_under_random_keys(
    pipeline: PhotoPipeline, media: LocalBlobStore
) -> None:
    stored = await pipeline.accept(
        [PhotoUpload(samples.jpeg_with_gps_and_xmp(), "home.jpg"), PhotoUpload(samples.transparent_png())],
        prefix="pets",
        limit=10,
        per="pet",
    )
    assert [s.content_type for s in stored] == ["image/jpeg", "image/webp"]
    assert len(stored_files(media)) == 4
    for photo in stored:
        assert photo.key.startswith("pets/")
        assert "home" not in photo.key
        assert photo.thumbnail_key == thumbnail_key_for(photo.key)
        assert reopen(media.get(photo.key)).size == (photo.width, photo.height)
        assert max(reopen(media.get(photo.thumbnail_key)).size) <= 320
    assert b"PawPhone" not in media.get(stored[0].key)


async def test_decoding_runs_in_the_bounded_photo_threads(
    pipeline: PhotoPipeline, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: list[str] = []
    active = {"now": 0, "most": 0}
    lock = threading.Lock()
    real = decode_module.process_photo

    def watched(*args: object, **kwargs: object) -> object:
        with lock:
            active["now"] += 1
            active["most"] = max(active["most"], active["now"])
            seen.append(threading.current_thread().name)
        try:
            return real(*args, **kwargs)  # type: ignore[arg-type]
        finally:
            with lock:
                active["now"] -= 1

    monkeypatch.setattr("pawgle.common.photos.pipeline.process_photo", watched)
    main_thread = threading.current_thread().name
    await pipeline.prepare([PhotoUpload(samples.shipped_photo())] * 6, prefix="pets")
    assert len(seen) == 6
    assert all(name.startswith("photos") and name != main_thread for name in seen)
    assert active["most"] <= 2


@pytest.mark.parametrize(
    ("bad", "refusal"),
    [
        ("bomb", PhotoDimensionsTooLarge),
        ("truncated", PhotoDamaged),
        ("html", PhotoTypeNotAllowed),
        ("eleven_megabytes", PhotoTooLarge),
        ("bmp", PhotoTypeNotAllowed),
    ],
)
async def test_one_bad_upload_refuses_the_request_and_nothing_is_stored(
    pipeline: PhotoPipeline,
    media: LocalBlobStore,
    bad: str,
    refusal: type[PhotoRejected],
    request: pytest.FixtureRequest,
) -> None:
    good = samples.shipped_photo()
    data = {
        "truncated": good[: len(good) // 3],
        "html": samples.html_page(),
        "bmp": samples.encode(Image.new("RGB", (8, 8)), "BMP"),
    }.get(bad) or request.getfixturevalue(bad)
    with pytest.raises(refusal) as refused:
        await pipeline.accept(
            [PhotoUpload(good), PhotoUpload(data, "photo.jpg"), PhotoUpload(good)], prefix="pets", limit=10, per="pet"
        )
    assert 400 <= refused.value.status_code < 500
    assert "images[1]" in refused.value.detail
    assert stored_files(media) == []


async def test_eleven_photos_for_one_pet_are_refused_and_nothing_is_stored(
    pipeline: PhotoPipeline, media: LocalBlobStore
) -> None:
    with pytest.raises(TooManyPhotos):
        await pipeline.accept(
            [PhotoUpload(samples.shipped_photo())] * 8, prefix="pets", limit=10, per="pet", existing=3
        )
    assert stored_files(media) == []


async def test_the_pipeline_refuses_to_run_inside_an_open_transaction(
    pipeline: PhotoPipeline, media: LocalBlobStore, tmp_path: Path
) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'pets.db'}")
    with Session(engine) as session:
        stored = await pipeline.accept(
            [PhotoUpload(samples.shipped_photo())], prefix="pets", limit=10, per="pet", session=session
        )
        assert len(stored) == 1
        session.execute(text("SELECT 1"))  # the request's first query opens its transaction
        with pytest.raises(RuntimeError, match="before the request's first database query"):
            await pipeline.accept(
                [PhotoUpload(samples.shipped_photo())], prefix="pets", limit=10, per="pet", session=session
            )
    engine.dispose()
    assert len(stored_files(media)) == 2  # only the first call's photo and thumbnail


async def test_a_failing_store_leaves_no_partial_set(media: LocalBlobStore, monkeypatch: pytest.MonkeyPatch) -> None:
    photos = PhotoPipeline(media)
    real_put = media.put
    calls = {"n": 0}

    def flaky_put(key: str, data: bytes, *, content_type: str) -> None:
        calls["n"] += 1
        if calls["n"] == 3:
            raise OSError("disk full")
        real_put(key, data, content_type=content_type)

    monkeypatch.setattr(media, "put", flaky_put)
    with pytest.raises(OSError, match="disk full"):
        await photos.accept([PhotoUpload(samples.shipped_photo())] * 2, prefix="pets", limit=10, per="pet")
    photos.close()
    assert stored_files(media) == []


class _Chunks:
    def __init__(self, total: int) -> None:
        self.left = total
        self.reads = 0

    async def read(self, size: int = -1) -> bytes:
        self.reads += 1
        step = min(size, self.left)
        self.left -= step
        return b"\x00" * step


async def test_reading_an_upload_stops_at_the_size_limit() -> None:
    endless = _Chunks(1024 * 2**20)
    with pytest.raises(PhotoTooLarge):
        await read_upload(endless, rules=PhotoRules(max_bytes=2 * 2**20))
    assert endless.reads <= 9  # 256 KB chunks: stopped just past 2 MB, not after 1 GB
    assert await read_upload(_Chunks(1000)) == b"\x00" * 1000


def test_a_refusal_reaches_the_client_as_a_json_400_saying_what_to_fix(media: LocalBlobStore) -> None:
    """Over real HTTP: the route reads the multipart upload, the pipeline refuses it, the handler shapes it."""
    app = FastAPI()
    install_error_handlers(app)
    photos = PhotoPipeline(media)

    @app.post("/upload/")
    async def upload(images: list[UploadFile]) -> dict[str, list[str]]:
        uploads = [PhotoUpload(await read_upload(f), f.filename) for f in images]
        return {"keys": [p.key for p in await photos.accept(uploads, prefix="pets", limit=10, per="pet")]}

    with serve(app) as base_url, httpx.Client(base_url=base_url, timeout=30) as client:
        files = [("images", ("cat.jpg", samples.html_page(), "image/jpeg"))]
        refused = client.post("/upload/", files=files)
        accepted = client.post("/upload/", files=[("images", ("x.bin", samples.shipped_photo(), "text/plain"))])
    photos.close()
    assert refused.status_code == 400
    body = refused.json()
    assert body["error"] == "Invalid file type. Allowed types: .jpg, .jpeg, .png, .gif, .webp"
    assert "upload a JPEG, PNG, GIF or WebP photo" in body["detail"]
    assert body["code"] == "photo_type_not_allowed"
    assert accepted.status_code == 200
    assert len(stored_files(media)) == 2


# Reusing photos the caller already has (D7)


def test_existing_photos_must_be_the_callers_own(media: LocalBlobStore) -> None:
    mine = ["pets/" + "a" * 22 + ".jpg", "pets/" + "b" * 22 + ".webp"]
    theirs = "pets/" + "c" * 22 + ".jpg"
    sent = [media.url(mine[1]) + "?X-Amz-Expires=60", mine[0], media.url(mine[1])]
    assert owned_photo_keys(sent, owned=set(mine), store=media, prefix="pets") == [mine[1], mine[0]]

    with pytest.raises(ExistingPhotoNotOwned) as foreign:
        owned_photo_keys([mine[0], media.url(theirs)], owned=set(mine), store=media, prefix="pets")
    assert foreign.value.status_code == 404
    assert "existing_images[1]" in foreign.value.detail

    for bad in [
        "https://tracker.example/pixel.gif",
        media.url(thumbnail_key_for(mine[0])),
        "reports/" + "a" * 22 + ".jpg",
    ]:
        with pytest.raises(ExistingPhotoInvalid):
            owned_photo_keys([bad], owned=set(mine), store=media, prefix="pets")


@pytest.mark.parametrize("raw", ["not json", '{"a": 1}', "[1, 2]", json.dumps(["x"] * 11)])
def test_a_malformed_existing_images_field_is_a_clear_400(raw: str) -> None:
    with pytest.raises(ExistingPhotoInvalid) as refused:
        parse_existing_images(raw)
    assert refused.value.status_code == 400
    assert "existing_images" in refused.value.detail


def test_an_absent_existing_images_field_means_none() -> None:
    assert parse_existing_images(None) == []
    assert parse_existing_images("  ") == []
    assert parse_existing_images('["https://x/media/pets/a.jpg"]') == ["https://x/media/pets/a.jpg"]


# The S3 adapter, against a local server speaking the S3 API


@pytest.fixture
def s3_store(s3_endpoint: str) -> S3BlobStore:
    return empty_bucket_store(s3_endpoint, "pawgle-photos")


def s3_keys(store: S3BlobStore) -> list[str]:
    return [item["Key"] for item in store.client.list_objects_v2(Bucket=store.bucket).get("Contents", [])]


async def test_photos_go_through_the_s3_adapter_with_an_image_content_type(s3_store: S3BlobStore) -> None:
    photos = PhotoPipeline(s3_store)
    try:
        [stored] = await photos.accept(
            [PhotoUpload(samples.jpeg_with_gps_and_xmp())], prefix="reports", limit=1, per="report"
        )
        assert sorted(s3_keys(s3_store)) == sorted([stored.key, stored.thumbnail_key])
        head = s3_store.client.head_object(Bucket=s3_store.bucket, Key=stored.key)
        assert head["ContentType"] == "image/jpeg"
        assert reopen(s3_store.get(stored.key)).getexif().get_ifd(ExifTags.IFD.GPSInfo) == {}

        with pytest.raises(PhotoTypeNotAllowed):
            await photos.accept([PhotoUpload(samples.html_page())], prefix="reports", limit=1, per="report")
        with pytest.raises(TooManyPhotos):
            await photos.accept([PhotoUpload(samples.shipped_photo())] * 2, prefix="reports", limit=1, per="report")
        assert len(s3_keys(s3_store)) == 2

        await photos.discard([stored])
        assert s3_keys(s3_store) == []
    finally:
        photos.close()


@pytest.mark.filterwarnings("ignore::UserWarning")  # Pillow warns about the corrupt EXIF and MPO it meets
def test_mangled_files_are_either_stored_or_refused_with_a_4xx_never_an_unexpected_error() -> None:
    """A user can send anything: 400 mutations of small valid files of every kind, with a fixed seed."""
    small = Image.new("RGB", (64, 48), (30, 160, 90))
    seeds = [
        samples.encode(small, "JPEG"),
        samples.encode(small, "PNG"),
        samples.encode(small, "WEBP"),
        samples.animated_gif(),
        samples.transparent_png(),
        samples.multi_picture_jpeg(),
        samples.two_colour_jpeg_with_orientation(6),
    ]
    rng = random.Random(20261201)
    outcomes = {"stored": 0, "refused": 0}
    statuses = set()
    for _ in range(400):
        data = bytearray(rng.choice(seeds))
        for _ in range(rng.randint(1, 6)):
            at = rng.randrange(len(data))
            if rng.random() < 0.7:
                data[at] = rng.randrange(256)
            else:
                data[at:at] = rng.randbytes(rng.randint(1, 16))
        try:
            process_photo(bytes(data))
            outcomes["stored"] += 1
        except PhotoRejected as exc:
            statuses.add(exc.status_code)
            outcomes["refused"] += 1
    assert outcomes["stored"] > 0
    assert outcomes["refused"] > 0
    assert statuses == {400}
