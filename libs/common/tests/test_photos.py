"""The shared photo rules: what a stored photo keeps, what it loses, what is refused (pipeline: test_photo_pipeline)."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import ExifTags, Image

from pawgle.common.photos import (
    NoPhotoProvided,
    PhotoDamaged,
    PhotoDimensionsTooLarge,
    PhotoRules,
    PhotoTooLarge,
    PhotoTypeNotAllowed,
    TooManyPhotos,
    check_photo_count,
    process_photo,
)
from pawgle.common.photos import decode as decode_module

from . import photo_samples as samples
from .photo_samples import reopen

pytestmark = pytest.mark.filterwarnings("ignore::PIL.Image.DecompressionBombWarning")


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
