"""Photo pipeline figures: adding a pet with three 3 MB phone photos, and refusing a 144-megapixel bomb.

Each scenario runs in a fresh process; its peak memory is the peak resident set (VmHWM), reported as growth
over the same process after imports and a warm-up photo. tracemalloc adds the peak of the Python heap
(Pillow's pixel buffers live outside it, which is why the resident set is the figure that counts).
Photos go through `PhotoPipeline.accept` into a local blob folder, as a route would call it.
"""

from __future__ import annotations

import asyncio
import io
import multiprocessing
import statistics
import struct
import tempfile
import time
import tracemalloc
import zlib
from pathlib import Path
from typing import Any

from PIL import Image, ImageChops

from bench.stats import percentile, report

ADD_ROUNDS = 20
BOMB_ROUNDS = 50
PHOTO_SIZE = (4032, 3024)  # a 12-megapixel phone photo
SAMPLE = Path(__file__).resolve().parents[1] / "libs" / "common" / "tests" / "data" / "dog2.3.jpg"


def _phone_photos(count: int) -> list[bytes]:
    """12 MP JPEGs of about 3 MB each: a real photo scaled up with sensor-like noise (shifted per photo)."""
    base = Image.open(SAMPLE).convert("RGB").resize(PHOTO_SIZE, Image.Resampling.BICUBIC)
    noise = Image.effect_noise(PHOTO_SIZE, 40).convert("RGB")
    photos = []
    for index in range(count):
        picture = Image.blend(base, ImageChops.offset(noise, 37 * index, 11 * index), 0.12)
        out = io.BytesIO()
        picture.save(out, "JPEG", quality=91)
        photos.append(out.getvalue())
    return photos


def _largest_accepted() -> list[tuple[str, bytes]]:
    """For each kind of image, one just under its default pixel limit (colour gradients: small files)."""
    from pawgle.common.photos import DEFAULT_RULES
    from pawgle.common.photos.decode import _decode_cost

    def picture(megapixels: float) -> Image.Image:
        width = int((megapixels * 1e6 * 4 / 3) ** 0.5)
        size = (width, int(megapixels * 1e6 / width))
        bands = [Image.linear_gradient("L"), Image.radial_gradient("L"), Image.linear_gradient("L").rotate(90)]
        return Image.merge("RGB", [band.resize(size) for band in bands])

    kinds: list[tuple[str, str, dict[str, Any], str]] = [
        ("baseline JPEG 4:4:4", "JPEG", {"quality": 90, "subsampling": 0}, "RGB"),
        ("progressive JPEG 4:4:4", "JPEG", {"quality": 90, "subsampling": 0, "progressive": True}, "RGB"),
        ("PNG", "PNG", {}, "RGB"),
        ("PNG with transparency", "PNG", {}, "RGBA"),
        ("GIF", "GIF", {}, "P"),
        ("WebP", "WEBP", {"quality": 80}, "RGB"),
    ]
    built = []
    for name, fmt, options, mode in kinds:
        probe = io.BytesIO()
        _convert(picture(0.01), mode).save(probe, fmt, **options)
        _, per_pixel = _decode_cost(Image.open(probe))
        limit = min(DEFAULT_RULES.max_pixels, DEFAULT_RULES.max_decode_bytes // per_pixel)
        out = io.BytesIO()
        _convert(picture(limit / 1e6 * 0.99), mode).save(out, fmt, **options)
        built.append((f"{name} ({limit / 1e6 * 0.99:.0f} MP, {out.tell() / 2**20:.1f} MB)", out.getvalue()))
    return built


def _convert(image: Image.Image, mode: str) -> Image.Image:
    if mode == "RGBA":
        image = image.convert("RGBA")
        image.putalpha(Image.linear_gradient("L").resize(image.size))
        return image
    return image.quantize(256) if mode == "P" else image


def _png_bomb(width: int = 12000, height: int = 12000) -> bytes:
    compressor = zlib.compressobj(9)
    row = b"\x00" * (width + 1)
    idat = b"".join(compressor.compress(row) for _ in range(height)) + compressor.flush()

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


def _memory_mb(field: str) -> float:
    """VmRSS (now) or VmHWM (peak since the last reset) of this process, from /proc."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    return float("nan")


def _reset_peak_memory() -> None:
    # Linux resets VmHWM to the current RSS on "5" (proc(5), clear_refs); ru_maxrss cannot be reset and
    # even carries the parent's peak across exec, so it would hide the figure we want.
    Path("/proc/self/clear_refs").write_text("5")


def _scenario(name: str, uploads: list[bytes], rounds: int) -> dict[str, Any]:
    """Run in a child process: warm up, then time `rounds` requests and record the memory they needed."""
    import warnings

    from pawgle.common.blobs import LocalBlobStore
    from pawgle.common.photos import PhotoPipeline, PhotoRejected, PhotoUpload, process_photo

    warnings.simplefilter("ignore", Image.DecompressionBombWarning)
    process_photo(SAMPLE.read_bytes())  # codecs and lazy imports loaded before the baseline
    _reset_peak_memory()
    baseline_mb = _memory_mb("VmRSS")
    timings: list[float] = []
    outcomes: set[str] = set()

    async def run(store_root: Path) -> None:
        pipeline = PhotoPipeline(LocalBlobStore(store_root, public_base_url="http://localhost:8000/"))
        try:
            for _ in range(rounds):
                started = time.perf_counter()
                try:
                    stored = await pipeline.accept(
                        [PhotoUpload(data) for data in uploads], prefix="pets", limit=10, per="pet"
                    )
                    outcomes.add(f"stored {len(stored)}")
                except PhotoRejected as exc:
                    outcomes.add(f"refused {exc.status_code} {exc.code}")
                timings.append(time.perf_counter() - started)
        finally:
            pipeline.close()

    tracemalloc.start()
    with tempfile.TemporaryDirectory() as root:
        asyncio.run(run(Path(root)))
    python_peak_mb = tracemalloc.get_traced_memory()[1] / 2**20
    tracemalloc.stop()
    return {
        "name": name,
        "timings": timings,
        "outcomes": sorted(outcomes),
        "rss_growth_mb": _memory_mb("VmHWM") - baseline_mb,
        "rss_peak_mb": _memory_mb("VmHWM"),
        "python_peak_mb": python_peak_mb,
    }


def _in_fresh_process(name: str, uploads: list[bytes], rounds: int) -> dict[str, Any]:
    with multiprocessing.get_context("spawn").Pool(1) as pool:
        return dict(pool.apply(_scenario, (name, uploads, rounds)))


def _print(result: dict[str, Any], what: str) -> None:
    ms = [t * 1000 for t in result["timings"]]
    report(
        f"{what}: p50 {percentile(ms, 50):.1f} ms, p95 {percentile(ms, 95):.1f} ms, max {max(ms):.1f} ms, "
        f"mean {statistics.fmean(ms):.1f} ms (n={len(ms)}); outcome: {', '.join(result['outcomes'])}"
    )
    report(
        f"  peak memory: process +{result['rss_growth_mb']:.0f} MB over its warm baseline "
        f"(peak RSS {result['rss_peak_mb']:.0f} MB), Python heap peak {result['python_peak_mb']:.1f} MB"
    )


def main() -> None:
    photos = _phone_photos(3)
    sizes = ", ".join(f"{len(p) / 2**20:.1f} MB" for p in photos)
    report(f"three {PHOTO_SIZE[0]}x{PHOTO_SIZE[1]} JPEGs ({sizes}); {ADD_ROUNDS} requests, one after another")
    _print(_in_fresh_process("add", photos, ADD_ROUNDS), "add a pet with three 3 MB photos (decode+re-encode+store)")

    bomb = _png_bomb()
    report(f"decompression bomb: a {len(bomb) / 1024:.0f} KB PNG declaring 12000x12000 (144 MP); {BOMB_ROUNDS} tries")
    _print(_in_fresh_process("bomb", [bomb], BOMB_ROUNDS), "refuse the 144-megapixel bomb")

    report("the largest image of each kind the default rules accept, one request each (worst-case memory):")
    for name, data in _largest_accepted():
        result = _in_fresh_process(name, [data], 1)
        report(
            f"  {name}: {result['timings'][0] * 1000:.0f} ms, peak memory +{result['rss_growth_mb']:.0f} MB "
            f"({', '.join(result['outcomes'])})"
        )


if __name__ == "__main__":
    main()
