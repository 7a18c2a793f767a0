from __future__ import annotations

import io
import json
import random
import subprocess
import sys
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
    NoPhotoProvided,
    PhotoDamaged,
    PhotoDimensionsTooLarge,
    PhotoPipeline,
    PhotoRejected,
    PhotoRules,
    PhotoTooLarge,
    PhotoTypeNotAllowed,
    PhotoUpload,
    TooManyPhotos,
    check_photo_count,
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

pytestmark = pytest.mark.filterwarnings("ignore::PIL.Image.DecompressionBombWarning")


@pytest.fixture
def media(tmp_path: Path) -> LocalBlobStore:
    return LocalBlobStore(tmp_path / "media", public_base_url="http://localhost:8000/")


@pytest.fixture
async def pipeline(media: LocalBlobStore) -> AsyncIterator[PhotoPipeline]:
    photos = PhotoPipeline(media)
    yield photos
    photos.close()


@pytest.fixture(scope="module")
def bomb() -> bytes:
    return samples.png_bomb()


@pytest.fixture(scope="module")
def eleven_megabytes() -> bytes:
    data = samples.noise_png(1950, 1950)
    assert 10.5 * 2**20 < len(data) < 12 * 2**20
    return data


def stored_files(store: LocalBlobStore) -> list[Path]:
    return [p for p in store.root.rglob("*") if p.is_file()]


def reopen(data: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(data))
    image.load()
    return image


# What is kept and what is removed


def test_a_jpeg_with_gps_is_stored_without_gps_or_any_other_metadata() -> None:
    upload = samples.jpeg_with_gps_and_xmp()
    original = Image.open(io.BytesIO(upload))
    assert original.getexif().get_ifd(ExifTags.IFD.GPSInfo)[ExifTags.GPS.GPSLatitude] == samples.GPS_POSITION[0]
    assert "xmp" in original.info

    photo = process_photo(upload)

    for data in (photo.data, photo.thumbnail):
        cleaned = reopen(data)
        assert cleaned.format == "JPEG"
        assert dict(cleaned.getexif()) == {}
        assert cleaned.getexif().get_ifd(ExifTags.IFD.GPSInfo) == {}
        assert not {"exif", "xmp", "icc_profile", "comment", "photoshop"} & set(cleaned.info)
        assert b"Exif\x00\x00" not in data
        assert b"PawPhone" not in data
        assert b"ns.adobe.com" not in data
        assert b"taken at home" not in data


def test_an_embedded_colour_profile_is_converted_to_srgb_and_dropped() -> None:
    upload = samples.shipped_photo("dog2.3.jpg")
    assert "icc_profile" in Image.open(io.BytesIO(upload)).info
    photo = process_photo(upload)
    assert "icc_profile" not in reopen(photo.data).info
    assert (photo.width, photo.height) == (745, 736)


@pytest.mark.parametrize(
    ("orientation", "size", "top_left", "bottom_right"),
    [
        (1, (200, 100), "red", "blue"),
        (3, (200, 100), "blue", "red"),  # upside down
        (6, (100, 200), "red", "blue"),  # the phone was turned clockwise: the left edge is the top
        (8, (100, 200), "blue", "red"),
    ],
)
def test_the_exif_orientation_is_applied_to_the_pixels(
    orientation: int, size: tuple[int, int], top_left: str, bottom_right: str
) -> None:
    photo = reopen(process_photo(samples.two_colour_jpeg_with_orientation(orientation)).data)
    assert photo.size == size
    assert "exif" not in photo.info  # no orientation left for a viewer to apply a second time

    def colour_at(x: int, y: int) -> str:
        red, _, blue = photo.convert("RGB").getpixel((x, y))  # type: ignore[misc]
        return "red" if red > blue else "blue"

    assert colour_at(5, 5) == top_left
    assert colour_at(size[0] - 5, size[1] - 5) == bottom_right


def test_a_large_photo_is_scaled_down_and_gets_a_small_thumbnail() -> None:
    big = samples.encode(Image.new("RGB", (4000, 3000), (90, 140, 60)), "JPEG")
    photo = process_photo(big, rules=PhotoRules(max_side=1600, thumbnail_side=200))
    assert (photo.width, photo.height) == (1600, 1200)
    assert reopen(photo.data).size == (1600, 1200)
    assert reopen(photo.thumbnail).size == (200, 150)


def test_transparency_survives_as_webp() -> None:
    photo = process_photo(samples.transparent_png())
    assert (photo.content_type, photo.extension) == ("image/webp", "webp")
    cleaned = reopen(photo.data)
    assert cleaned.mode == "RGBA"
    assert cleaned.getpixel((5, 5))[3] == 0  # type: ignore[index]
    assert cleaned.getpixel((150, 100))[3] == 255  # type: ignore[index]


def test_an_animated_gif_keeps_its_first_frame_as_a_still_photo() -> None:
    photo = process_photo(samples.animated_gif())
    cleaned = reopen(photo.data)
    assert photo.content_type == "image/jpeg"
    assert photo.source_format == "GIF"
    assert getattr(cleaned, "n_frames", 1) == 1
    red, green, blue = cleaned.getpixel((60, 40))  # type: ignore[misc]
    assert red > 200
    assert max(green, blue) < 60


@pytest.mark.parametrize(
    ("fmt", "source_format"),
    [("JPEG", "JPEG"), ("PNG", "PNG"), ("GIF", "GIF"), ("WEBP", "WEBP"), ("MPO", "JPEG")],
)
def test_each_allowed_format_is_accepted_whatever_it_is_named(fmt: str, source_format: str) -> None:
    data = (
        samples.multi_picture_jpeg()
        if fmt == "MPO"
        else samples.encode(Image.open(io.BytesIO(samples.shipped_photo("flickr_cat_000076.jpg"))), fmt)
    )
    photo = process_photo(data, label="images (cat.exe)")
    assert photo.source_format == source_format
    assert reopen(photo.data).format == "JPEG"


@pytest.mark.parametrize("build", [samples.cmyk_jpeg, samples.sixteen_bit_png])
def test_unusual_colour_modes_become_ordinary_rgb_jpegs(build: object) -> None:
    photo = process_photo(build())  # type: ignore[operator]
    assert reopen(photo.data).mode == "RGB"


# What is refused


def test_a_decompression_bomb_is_refused_from_its_header(monkeypatch: pytest.MonkeyPatch, bomb: bytes) -> None:
    assert len(bomb) < 200_000
    decoded = []
    monkeypatch.setattr(decode_module, "_decode_upright_srgb", lambda *a, **k: decoded.append(1))
    with pytest.raises(PhotoDimensionsTooLarge) as refused:
        process_photo(bomb)
    assert decoded == []  # refused before the decoding step was reached
    assert refused.value.status_code == 400
    assert "12000x12000" in refused.value.detail
    assert "144.0 megapixels" in refused.value.detail


_MEMORY_PROBE = """
import json, resource, sys, time
from pathlib import Path
from pawgle.common.photos import PhotoRejected, process_photo

def vm_bytes():
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmSize:"):
            return int(line.split()[1]) * 1024

data = Path(sys.argv[1]).read_bytes()
process_photo(Path(sys.argv[2]).read_bytes())  # warm up: every lazy import and codec is loaded
headroom = int(sys.argv[3]) * 1024 * 1024
resource.setrlimit(resource.RLIMIT_AS, (vm_bytes() + headroom, resource.RLIM_INFINITY))
try:
    if sys.argv[4] == "pipeline":
        process_photo(data)
        outcome = "stored"
    else:
        from PIL import Image
        import io
        Image.open(io.BytesIO(data)).load()
        outcome = "decoded"
except PhotoRejected as exc:
    outcome = type(exc).__name__
except MemoryError:
    outcome = "MemoryError"
print(json.dumps(outcome))
"""


def _run_with_memory_headroom(tmp_path: Path, data: bytes, mode: str, headroom_mb: int = 100) -> str:
    upload = tmp_path / "upload"
    upload.write_bytes(data)
    warm = tmp_path / "warm.jpg"
    warm.write_bytes(samples.shipped_photo())
    done = subprocess.run(
        [sys.executable, "-c", _MEMORY_PROBE, str(upload), str(warm), str(headroom_mb), mode],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return str(json.loads(done.stdout.strip().splitlines()[-1]))


def test_a_decompression_bomb_is_refused_within_100_mb_of_address_space(tmp_path: Path, bomb: bytes) -> None:
    # The same limit that lets a real photo through makes a plain decode of the bomb run out of memory:
    # so the refusal really happens before the pixels are allocated.
    assert _run_with_memory_headroom(tmp_path, bomb, "pipeline") == "PhotoDimensionsTooLarge"
    assert _run_with_memory_headroom(tmp_path, bomb, "plain-decode") == "MemoryError"
    photo = samples.encode(Image.new("RGB", (4000, 3000), (200, 100, 50)), "JPEG", quality=90)
    assert _run_with_memory_headroom(tmp_path, photo, "pipeline") == "stored"


def test_formats_that_decode_whole_get_a_lower_pixel_limit() -> None:
    """The limit follows what decoding costs: a baseline JPEG is cheap, progressive JPEG and WebP are not."""
    rules = PhotoRules(max_decode_bytes=12 * 2**20)  # small, so the test images stay small
    picture = Image.radial_gradient("L").resize((1600, 1200)).convert("RGB")  # 1.9 MP
    assert process_photo(samples.encode(picture, "JPEG"), rules=rules).width == 1600
    assert process_photo(samples.encode(picture, "PNG"), rules=rules).width == 1600  # 12 MB / 6 B per pixel: 2.1 MP
    for fmt, options, kind in [
        ("JPEG", {"progressive": True}, "a progressive JPEG"),
        ("WEBP", {}, "a WebP image"),
        ("PNG", {"transparency": (0, 0, 0)}, "a PNG image with transparency"),
    ]:
        with pytest.raises(PhotoDimensionsTooLarge, match=f"accepted for {kind},"):
            process_photo(samples.encode(picture, fmt, **options), rules=rules)


def test_pillows_own_bomb_error_becomes_the_same_clear_refusal() -> None:
    with pytest.raises(PhotoDimensionsTooLarge):
        process_photo(samples.png_bomb(14000, 14000))  # past Pillow's hard limit: it refuses at open


@pytest.mark.parametrize("fmt", ["JPEG", "PNG"])
def test_a_truncated_file_is_refused_as_damaged(fmt: str) -> None:
    picture = Image.open(io.BytesIO(samples.shipped_photo("flickr_cat_000076.jpg")))
    whole = samples.encode(picture, fmt)
    with pytest.raises(PhotoDamaged) as refused:
        process_photo(whole[: len(whole) // 2])
    assert "upload the complete file" in refused.value.detail


def test_html_named_jpg_is_refused_by_its_content() -> None:
    with pytest.raises(PhotoTypeNotAllowed) as refused:
        process_photo(samples.html_page(), label="images (cat.jpg)")
    assert "HTML document" in refused.value.detail
    assert refused.value.extra["error"] == "Invalid file type. Allowed types: .jpg, .jpeg, .png, .gif, .webp"


@pytest.mark.parametrize(("fmt", "named"), [("BMP", "BMP"), ("TIFF", "TIFF"), ("ICO", "not an image")])
def test_image_formats_outside_the_four_are_refused(fmt: str, named: str) -> None:
    with pytest.raises(PhotoTypeNotAllowed) as refused:
        process_photo(samples.encode(Image.new("RGB", (32, 32), "white"), fmt))
    assert named in refused.value.detail


def test_an_11_mb_image_is_refused_before_decoding(eleven_megabytes: bytes) -> None:
    with pytest.raises(PhotoTooLarge) as refused:
        process_photo(eleven_megabytes)
    assert refused.value.status_code == 400
    assert refused.value.extra["error"] == "Image file too large (max 10MB)"
    assert f"the image is {len(eleven_megabytes) / 2**20:.1f} MB" in refused.value.detail


def test_the_size_limit_is_configurable() -> None:
    with pytest.raises(PhotoTooLarge, match=r"max 20KB"):
        process_photo(samples.shipped_photo(), rules=PhotoRules(max_bytes=20 * 1024))
    with pytest.raises(PhotoTooLarge, match=r"max 2\.5MB"):
        process_photo(b"x" * 3 * 2**20, rules=PhotoRules(max_bytes=int(2.5 * 2**20)))


def test_count_limits_give_clear_errors() -> None:
    check_photo_count(10, limit=10, per="pet", minimum=1)
    with pytest.raises(TooManyPhotos, match="11 given, at most 10 per pet; remove 1"):
        check_photo_count(11, limit=10, per="pet")
    with pytest.raises(NoPhotoProvided, match="No image provided"):
        check_photo_count(0, limit=10, per="pet", minimum=1)


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
