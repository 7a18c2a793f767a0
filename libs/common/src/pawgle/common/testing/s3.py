"""A local server speaking the S3 API (moto), so that boto3 itself is what the blob tests run."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from pawgle.common.blobs import S3BlobStore
from pawgle.common.natsserver import free_port


@contextlib.contextmanager
def moto_s3_server() -> Iterator[str]:
    """Run moto's S3 server on a free loopback port; yields its endpoint URL."""
    from moto.server import ThreadedMotoServer  # a test dependency only

    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.stop()


def empty_bucket_store(endpoint_url: str, bucket: str) -> S3BlobStore:
    """An S3 blob store on `bucket` (created if missing), emptied so a test counts only its own objects."""
    store = S3BlobStore(
        bucket=bucket, endpoint_url=endpoint_url, access_key="test", secret_key="test", region="us-east-1"
    )
    with contextlib.suppress(store.client.exceptions.BucketAlreadyOwnedByYou):
        store.client.create_bucket(Bucket=bucket)
    for item in store.client.list_objects_v2(Bucket=bucket).get("Contents", []):
        store.client.delete_object(Bucket=bucket, Key=item["Key"])
    return store
