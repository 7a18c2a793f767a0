"""Image files for the photo tests, built here or shipped in data/ (see data/SOURCES.md)."""

from __future__ import annotations

import io
import os
import struct
import zlib
from pathlib import Path

from PIL import ExifTags, Image

from pawgle.common.blobs import LocalBlobStore

DATA = Path(__file__).parent / "data"
GPS_POSITION = ((52.0, 31.0, 12.5), (13.0, 24.0, 36.0))  # a home in Berlin, as a phone would record it


def shipped_photo(name: str = "dog2.3.jpg") -> bytes:
    """A real photo from data/."""
    return (DATA / name).read_bytes()


def encode(image: Image.Image, fmt: str, **options: object) -> bytes:
    out = io.BytesIO()
    image.save(out, fmt, **options)
    return out.getvalue()


def jpeg_with_gps_and_xmp() -> bytes:
    """The shipped photo as a phone writes it: EXIF with the camera, the GPS position and XMP."""
    photo = Image.open(io.BytesIO(shipped_photo()))
    exif = Image.Exif()
    exif[ExifTags.Base.Make] = "PawPhone"
    exif[ExifTags.Base.Model] = "PawPhone 15 Pro"
    exif[ExifTags.Base.Artist] = "Jane Owner"
    gps = exif.get_ifd(ExifTags.IFD.GPSInfo)
    gps[ExifTags.GPS.GPSLatitudeRef] = "N"
    gps[ExifTags.GPS.GPSLatitude] = GPS_POSITION[0]
    gps[ExifTags.GPS.GPSLongitudeRef] = "E"
    gps[ExifTags.GPS.GPSLongitude] = GPS_POSITION[1]
    xmp = (
        b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">'
        b'<rdf:Description xmlns:exif="http://ns.adobe.com/exif/1.0/" exif:GPSLatitude="52,31.2N"/>'
        b"</rdf:RDF></x:xmpmeta>"
    )
    return encode(photo, "JPEG", quality=92, exif=exif, xmp=xmp, comment=b"taken at home")


def two_colour_jpeg_with_orientation(orientation: int) -> bytes:
    """A 200x100 picture, left half red and right half blue, whose EXIF says how to turn it upright."""
    picture = Image.new("RGB", (200, 100), "blue")
    picture.paste(Image.new("RGB", (100, 100), "red"), (0, 0))
    exif = Image.Exif()
    exif[ExifTags.Base.Orientation] = orientation
    return encode(picture, "JPEG", quality=95, exif=exif)


def png_bomb(width: int = 12000, height: int = 12000) -> bytes:
    """A valid greyscale PNG of all-black rows: about 140 KB on disk, width x height pixels once decoded."""
    compressor = zlib.compressobj(9)
    row = b"\x00" * (width + 1)  # filter byte + one byte per pixel
    parts = [compressor.compress(row) for _ in range(height)]
    parts.append(compressor.flush())
    idat = b"".join(parts)

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


def noise_png(width: int, height: int) -> bytes:
    """Random pixels, which PNG cannot compress: a real image whose file size is about width*height*3."""
    return encode(Image.frombytes("RGB", (width, height), os.urandom(width * height * 3)), "PNG", compress_level=1)


def transparent_png() -> bytes:
    """A cut-out: an opaque disc on a transparent background (what the edited-image page saves)."""
    picture = Image.new("RGBA", (300, 200), (0, 0, 0, 0))
    picture.paste(Image.new("RGBA", (100, 100), (200, 120, 40, 255)), (100, 50))
    return encode(picture, "PNG")


def animated_gif() -> bytes:
    """Three frames: red, green, blue."""
    frames = [Image.new("RGB", (120, 80), colour) for colour in ("red", "lime", "blue")]
    return encode(frames[0], "GIF", save_all=True, append_images=frames[1:], duration=100, loop=0)


def multi_picture_jpeg() -> bytes:
    """An MPO: the JPEG with extra pictures that many phones write (Pillow names it MPO, not JPEG)."""
    frames = [Image.new("RGB", (64, 48), colour) for colour in ("red", "blue")]
    return encode(frames[0], "MPO", save_all=True, append_images=frames[1:])


def cmyk_jpeg() -> bytes:
    return encode(Image.new("CMYK", (64, 48), (0, 255, 255, 0)), "JPEG")


def sixteen_bit_png() -> bytes:
    return encode(Image.new("I;16", (64, 48), 40000), "PNG")


def html_page() -> bytes:
    return b"<!DOCTYPE html><html><body><script>fetch('/api/token/refresh/')</script></body></html>"


def stored_files(store: LocalBlobStore) -> list[Path]:
    return [p for p in store.root.rglob("*") if p.is_file()]


def reopen(data: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(data))
    image.load()
    return image
