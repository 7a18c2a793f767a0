"""Photos and attachments: a local folder on one machine, any S3 API (R2, MinIO, AWS) in production.

Keys are random (never derived from user ids or times); URLs are minted at response time, so what is
stored is the key, never a URL.
"""

from __future__ import annotations

import secrets
from pathlib import Path
from typing import Protocol
from urllib.parse import quote

from pawgle.common.config import S3Settings, ServiceSettings

_KEY_ALPHABET = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_./")


def new_blob_key(prefix: str, extension: str) -> str:
    """A random, unguessable key such as `pets/3q2-....webp` (128 bits)."""
    return f"{prefix}/{secrets.token_urlsafe(16)}.{extension.lstrip('.')}"


def _check_key(key: str) -> str:
    if not key or key.startswith("/") or ".." in key or not set(key) <= _KEY_ALPHABET:
        raise ValueError(f"invalid blob key {key!r}")
    return key


class BlobStore(Protocol):
    def put(self, key: str, data: bytes, *, content_type: str) -> None: ...
    def get(self, key: str) -> bytes: ...
    def delete(self, key: str) -> None: ...
    def exists(self, key: str) -> bool: ...
    def url(self, key: str) -> str: ...
    def key_from_url(self, url: str) -> str | None: ...


class LocalBlobStore:
    """Blobs as files under one folder, served by the gateway under `<public_base_url>/media/`."""

    def __init__(self, root: Path, *, public_base_url: str) -> None:
        self.root = root
        self.root.mkdir(parents=True, exist_ok=True)
        self.base = public_base_url.rstrip("/") + "/media/"

    def _path(self, key: str) -> Path:
        return self.root / _check_key(key)

    def put(self, key: str, data: bytes, *, content_type: str) -> None:
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(path.suffix + ".part")
        tmp.write_bytes(data)
        tmp.replace(path)  # readers never see half a file

    def get(self, key: str) -> bytes:
        return self._path(key).read_bytes()

    def delete(self, key: str) -> None:
        self._path(key).unlink(missing_ok=True)

    def exists(self, key: str) -> bool:
        return self._path(key).is_file()

    def url(self, key: str) -> str:
        return self.base + quote(_check_key(key))

    def key_from_url(self, url: str) -> str | None:
        plain = url.split("?", 1)[0].split("#", 1)[0]
        if not plain.startswith(self.base):
            return None
        try:
            return _check_key(plain[len(self.base) :])
        except ValueError:
            return None


class S3BlobStore:
    """Blobs in an S3 bucket; GET URLs are path-style presigned URLs (what the web app's image hosts allow)."""

    def __init__(
        self,
        *,
        bucket: str,
        endpoint_url: str | None,
        access_key: str | None,
        secret_key: str | None,
        region: str = "auto",
        url_ttl_s: int = 3600 * 6,
    ) -> None:
        import boto3
        from botocore.config import Config

        self.bucket = bucket
        self.url_ttl_s = url_ttl_s
        self.client = boto3.client(
            "s3",
            endpoint_url=endpoint_url,
            aws_access_key_id=access_key,
            aws_secret_access_key=secret_key,
            region_name=region,
            config=Config(
                s3={"addressing_style": "path"},
                signature_version="s3v4",
                connect_timeout=5,
                read_timeout=30,
                retries={"max_attempts": 3, "mode": "standard"},
            ),
        )
        self._prefix = f"{self.client.meta.endpoint_url.rstrip('/')}/{bucket}/"

    def put(self, key: str, data: bytes, *, content_type: str) -> None:
        self.client.put_object(Bucket=self.bucket, Key=_check_key(key), Body=data, ContentType=content_type)

    def get(self, key: str) -> bytes:
        return self.client.get_object(Bucket=self.bucket, Key=_check_key(key))["Body"].read()

    def delete(self, key: str) -> None:
        self.client.delete_object(Bucket=self.bucket, Key=_check_key(key))

    def exists(self, key: str) -> bool:
        from botocore.exceptions import ClientError

        try:
            self.client.head_object(Bucket=self.bucket, Key=_check_key(key))
            return True
        except ClientError:
            return False

    def url(self, key: str) -> str:
        return str(
            self.client.generate_presigned_url(
                "get_object", Params={"Bucket": self.bucket, "Key": _check_key(key)}, ExpiresIn=self.url_ttl_s
            )
        )

    def key_from_url(self, url: str) -> str | None:
        plain = url.split("?", 1)[0]
        if not plain.startswith(self._prefix):
            return None
        try:
            return _check_key(plain[len(self._prefix) :])
        except ValueError:
            return None


def blob_store_for(settings: ServiceSettings) -> BlobStore:
    """The service's blob store: S3 when a bucket is configured, else the shared local media folder."""
    return _blob_store(settings.s3, data_dir=settings.data_dir, public_base_url=settings.public_base_url)


def blob_store_from_env(*, data_dir: Path, public_base_url: str) -> BlobStore:
    """Like `blob_store_for`, for callers without a settings object (S3 settings read from PAWGLE_S3_*)."""
    return _blob_store(S3Settings(), data_dir=data_dir, public_base_url=public_base_url)


def _blob_store(s3: S3Settings, *, data_dir: Path, public_base_url: str) -> BlobStore:
    if s3.bucket:
        return S3BlobStore(
            bucket=s3.bucket,
            endpoint_url=s3.endpoint_url,
            access_key=s3.access_key_id,
            secret_key=s3.secret_access_key.get_secret_value() if s3.secret_access_key else None,
            region=s3.region,
        )
    # Every service writes into one media folder, which the gateway serves under /media/.
    return LocalBlobStore(data_dir / "media", public_base_url=public_base_url)
