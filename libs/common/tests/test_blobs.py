from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from pawgle.common.blobs import LocalBlobStore, S3BlobStore, blob_store_for, new_blob_key
from pawgle.common.config import ServiceSettings
from pawgle.common.testing.s3 import empty_bucket_store


@pytest.fixture
def s3_store(s3_endpoint: str) -> S3BlobStore:
    return empty_bucket_store(s3_endpoint, "pawgle-test")


@pytest.fixture
def local_store(tmp_path: Path) -> LocalBlobStore:
    return LocalBlobStore(tmp_path / "media", public_base_url="http://localhost:8000/")


def test_keys_are_random_and_reveal_nothing() -> None:
    keys = {new_blob_key("pets", "webp") for _ in range(1000)}
    assert len(keys) == 1000
    key = keys.pop()
    assert key.startswith("pets/")
    assert key.endswith(".webp")
    assert len(key.split("/")[1].split(".")[0]) >= 22  # 128 bits in base64url


@pytest.mark.parametrize("store_name", ["local_store", "s3_store"])
def test_a_blob_round_trips_and_its_url_maps_back_to_its_key(store_name: str, request: pytest.FixtureRequest) -> None:
    store = request.getfixturevalue(store_name)
    key = new_blob_key("pets", "jpg")
    store.put(key, b"\xff\xd8jpeg bytes", content_type="image/jpeg")
    assert store.exists(key)
    assert store.get(key) == b"\xff\xd8jpeg bytes"
    url = store.url(key)
    assert url.startswith("http")
    assert store.key_from_url(url) == key
    store.delete(key)
    assert not store.exists(key)


def test_s3_urls_are_path_style_presigned_and_fetchable(s3_store: S3BlobStore, s3_endpoint: str) -> None:
    key = new_blob_key("reports", "png")
    s3_store.put(key, b"png bytes", content_type="image/png")
    url = s3_store.url(key)
    assert url.startswith(f"{s3_endpoint}/pawgle-test/{key}?")
    assert "X-Amz-Signature=" in url
    response = httpx.get(url, timeout=5)
    assert response.status_code == 200
    assert response.content == b"png bytes"
    assert response.headers["content-type"] == "image/png"


@pytest.mark.parametrize("key", ["../etc/passwd", "/abs/path", "a/../../b", "", "sp ace.png", "x\x00.png"])
def test_unsafe_keys_are_refused(local_store: LocalBlobStore, key: str) -> None:
    with pytest.raises(ValueError, match="invalid blob key"):
        local_store.put(key, b"x", content_type="image/png")


@pytest.mark.parametrize(
    "url",
    ["https://evil.example/media/pets/a.png", "http://localhost:8000/media/../secrets", "http://localhost:8000/x.png"],
)
def test_foreign_or_tampered_urls_map_to_no_key(local_store: LocalBlobStore, url: str) -> None:
    assert local_store.key_from_url(url) is None


def test_a_presigned_query_string_is_ignored_when_mapping_back(local_store: LocalBlobStore) -> None:
    key = new_blob_key("pets", "png")
    assert local_store.key_from_url(local_store.url(key) + "?X-Amz-Expires=60") == key


def test_the_s3_store_comes_from_settings_with_the_secret_kept_secret(
    s3_endpoint: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PAWGLE_S3_BUCKET", "pawgle-settings")
    monkeypatch.setenv("PAWGLE_S3_ENDPOINT_URL", s3_endpoint)
    monkeypatch.setenv("PAWGLE_S3_ACCESS_KEY_ID", "test")
    monkeypatch.setenv("PAWGLE_S3_SECRET_ACCESS_KEY", "not-in-any-repr")
    monkeypatch.setenv("PAWGLE_S3_REGION", "us-east-1")
    settings = ServiceSettings(service_name="toy", data_dir=tmp_path)
    assert "not-in-any-repr" not in repr(settings)
    store = blob_store_for(settings)
    assert isinstance(store, S3BlobStore)
    store.client.create_bucket(Bucket="pawgle-settings")
    key = new_blob_key("pets", "jpg")
    store.put(key, b"photo", content_type="image/jpeg")
    assert httpx.get(store.url(key)).content == b"photo"


def test_without_a_bucket_the_store_is_the_shared_media_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PAWGLE_S3_BUCKET", raising=False)
    store = blob_store_for(ServiceSettings(service_name="toy", data_dir=tmp_path))
    assert isinstance(store, LocalBlobStore)
