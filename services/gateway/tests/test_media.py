"""/media/ serves the local blob folder read-only: images only, no traversal, no listing."""

from __future__ import annotations

import secrets
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from pawgle.common.blobs import LocalBlobStore, new_blob_key

from .conftest import FRONTEND

PNG = b"\x89PNG\r\n\x1a\n" + secrets.token_bytes(64)


@pytest.fixture
def media(tmp_path: Path, custom_gateway: Callable[..., httpx.Client]) -> tuple[httpx.Client, LocalBlobStore]:
    """A gateway on a fresh data dir and the blob store the services would write into."""
    gateway = custom_gateway()
    store = LocalBlobStore(tmp_path / "media", public_base_url=str(gateway.base_url))
    return gateway, store


def test_a_stored_photo_is_served_with_its_type_and_cache_headers(media: tuple[httpx.Client, LocalBlobStore]) -> None:
    gateway, store = media
    key = new_blob_key("pets", "png")
    store.put(key, PNG, content_type="image/png")
    response = gateway.get(store.url(key), headers={"Origin": FRONTEND})
    assert response.status_code == 200
    assert response.content == PNG
    assert response.headers["content-type"] == "image/png"
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["cache-control"].startswith("public, max-age=")
    assert response.headers["access-control-allow-origin"] == FRONTEND


def test_head_gives_the_headers_only(media: tuple[httpx.Client, LocalBlobStore]) -> None:
    gateway, store = media
    key = new_blob_key("reports", "jpg")
    store.put(key, b"\xff\xd8\xff" + b"x" * 100, content_type="image/jpeg")
    response = gateway.head(store.url(key))
    assert response.status_code == 200
    assert response.headers["content-type"] == "image/jpeg"
    assert response.headers["content-length"] == "103"


@pytest.mark.parametrize(
    "raw_path",
    [
        "/media/../config.png",
        "/media/%2e%2e/outside.png",
        "/media/pets/..%2f..%2foutside.png",
        "/media/pets/%2e%2e%2f%2e%2e%2foutside.png",
        "/media/%2Fetc%2Fpasswd",
        "/media/.hidden.png",
        "/media/pets",
        "/media/pets/",
        "/media/",
        "/media/notes.txt",
        "/media/page.html",
        "/media/pets/missing.png",
        "/media/link.png",
        "/media/pets/a\\..\\..\\outside.png",
    ],
)
def test_nothing_but_stored_images_is_served(
    media: tuple[httpx.Client, LocalBlobStore], tmp_path: Path, raw_path: str
) -> None:
    gateway, store = media
    (tmp_path / "outside.png").write_bytes(PNG)
    (tmp_path / "config.png").write_bytes(PNG)
    store.put("pets/real.png", PNG, content_type="image/png")
    (store.root / ".hidden.png").write_bytes(PNG)
    (store.root / "notes.txt").write_text("secret")
    (store.root / "page.html").write_text("<script>alert(1)</script>")
    (store.root / "link.png").symlink_to(tmp_path / "outside.png")
    request = gateway.build_request("GET", "/media/x")
    request.url = request.url.copy_with(raw_path=raw_path.encode())
    response = gateway.send(request)
    assert response.status_code == 404
    assert response.headers["content-type"] == "application/json; charset=utf-8"
    assert response.json()["detail"] == "Not found."
