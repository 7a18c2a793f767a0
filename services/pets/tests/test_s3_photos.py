"""The pets service on the production blob adapter: photos in an S3 bucket (moto, real boto3 calls)."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator

import httpx
import pytest
from pawgle_pets_test_factories import add_pet, jpeg_with_gps, next_id, pet_form, png_bomb, wait_for
from PIL import Image

from pawgle.common.blobs import S3BlobStore
from pawgle.common.testing.service import RunningService, running_service
from pawgle.pets.main import create_app

BUCKET = "pawgle-pets-test"


@pytest.fixture
def s3_pets(settings_factory, s3_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[RunningService]:
    for name, value in {
        "PAWGLE_S3_BUCKET": BUCKET,
        "PAWGLE_S3_ENDPOINT_URL": s3_endpoint,
        "PAWGLE_S3_ACCESS_KEY_ID": "test",
        "PAWGLE_S3_SECRET_ACCESS_KEY": "test",
        "PAWGLE_S3_REGION": "us-east-1",
    }.items():
        monkeypatch.setenv(name, value)
    settings = settings_factory()
    app = create_app(settings)
    with running_service(app, settings) as running:
        store: S3BlobStore = app.state.blobs
        if BUCKET not in [b["Name"] for b in store.client.list_buckets()["Buckets"]]:
            store.client.create_bucket(Bucket=BUCKET)
        for item in store.client.list_objects_v2(Bucket=BUCKET).get("Contents", []):
            store.client.delete_object(Bucket=BUCKET, Key=item["Key"])
        yield running


def bucket_keys(running: RunningService) -> list[str]:
    store: S3BlobStore = running.app.state.blobs
    return sorted(item["Key"] for item in store.client.list_objects_v2(Bucket=BUCKET).get("Contents", []))


def test_photos_go_to_the_bucket_without_gps_behind_presigned_urls_and_leave_with_the_pet(s3_pets, s3_endpoint) -> None:
    owner = next_id()
    assert add_pet(s3_pets, owner, png_bomb()).status_code == 400
    assert bucket_keys(s3_pets) == []
    pet = add_pet(s3_pets, owner, jpeg_with_gps()).json()["pet"]
    (url,) = pet["images"]
    assert url.startswith(f"{s3_endpoint}/{BUCKET}/pets/")
    assert "X-Amz-Signature=" in url
    fetched = httpx.get(url, timeout=10)
    assert fetched.status_code == 200
    assert fetched.headers["content-type"] == "image/jpeg"
    assert not Image.open(io.BytesIO(fetched.content)).getexif()
    assert len(bucket_keys(s3_pets)) == 2  # the photo and its thumbnail

    # The edit flow sends the presigned URL back: its query string is ignored, the pet is restored.
    s3_pets.client.delete(f"/api/auth/pets/{pet['id']}/delete/", headers=s3_pets.headers(owner))
    form = pet_form(existing_images=json.dumps([url]))
    again = s3_pets.client.post("/api/auth/pets/add/", data=form, headers=s3_pets.headers(owner)).json()["pet"]
    assert (again["id"], again["animal_id"]) == (pet["id"], pet["animal_id"])
    poster = s3_pets.client.get(f"/api/auth/pets/{pet['id']}/poster/", headers=s3_pets.headers(owner))
    assert poster.status_code == 200

    replaced = s3_pets.client.put(
        f"/api/auth/pets/{pet['id']}/edit/",
        files=[("image", ("new.jpg", jpeg_with_gps(), "image/jpeg"))],
        headers=s3_pets.headers(owner),
    )
    assert replaced.status_code == 200
    new_key = s3_pets.app.state.blobs.key_from_url(replaced.json()["images"][0])
    wait_for(lambda: len(bucket_keys(s3_pets)) == 2 and new_key in bucket_keys(s3_pets))
