"""Fetching a partner row's photo: only from the partner's configured hosts, with size and time limits.

The fetch runs before any database transaction; the bytes then go through the shared photo pipeline
(decode-verified, metadata stripped, re-encoded) like any upload.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from urllib.parse import urlsplit

import httpx

from pawgle.common.photos import PhotoPipeline, PhotoRejected, PhotoUpload, StoredPhoto


class PhotoFetchRefused(Exception):
    """A photo URL that was not fetched, or not usable; the message says why (shown to the partner)."""


def allowed_hosts(configured: str) -> set[str]:
    return {host.strip().lower() for host in configured.split(",") if host.strip()}


def check_url(url: str, hosts: set[str]) -> None:
    """Refuse anything but http(s) to one of the partner's hosts (host, or host:port as configured)."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise PhotoFetchRefused("photo_url must be an http(s) URL.")
    if parts.username or parts.password:
        raise PhotoFetchRefused("photo_url must not carry credentials.")
    host = parts.hostname.lower()
    with_port = f"{host}:{parts.port}" if parts.port else host
    if host not in hosts and with_port not in hosts:
        raise PhotoFetchRefused(f"photo_url host {with_port} is not one of your configured photo hosts.")


async def fetch(client: httpx.AsyncClient, url: str, *, max_bytes: int) -> bytes:
    """The body at `url`, refused past `max_bytes` (never buffers more) or on any non-200 answer."""
    try:
        async with client.stream("GET", url) as response:
            if response.status_code != 200:
                raise PhotoFetchRefused(f"photo_url answered HTTP {response.status_code}.")
            declared = response.headers.get("content-length")
            if declared and declared.isdigit() and int(declared) > max_bytes:
                raise PhotoFetchRefused(f"photo_url is larger than {max_bytes // (1024 * 1024)} MB.")
            chunks, size = [], 0
            async for chunk in response.aiter_bytes():
                size += len(chunk)
                if size > max_bytes:
                    raise PhotoFetchRefused(f"photo_url is larger than {max_bytes // (1024 * 1024)} MB.")
                chunks.append(chunk)
            return b"".join(chunks)
    except httpx.TimeoutException:
        raise PhotoFetchRefused("photo_url did not answer in time.") from None
    except httpx.HTTPError as exc:
        raise PhotoFetchRefused(f"photo_url could not be fetched ({type(exc).__name__}).") from None


async def fetch_and_store(
    urls: Sequence[str], *, hosts: set[str], photos: PhotoPipeline, timeout_s: float, concurrency: int, prefix: str
) -> list[StoredPhoto | str]:
    """Per URL: the stored photo, or why it was refused (in the same order)."""
    gate = asyncio.Semaphore(concurrency)
    # The overall deadline bounds a slow server that trickles bytes; redirects are not followed (a
    # configured host could otherwise send the fetch anywhere).
    timeout = httpx.Timeout(timeout_s, connect=min(timeout_s, 5.0))

    async with httpx.AsyncClient(timeout=timeout, follow_redirects=False) as client:

        async def one(url: str) -> StoredPhoto | str:
            async with gate:
                try:
                    check_url(url, hosts)
                    data = await asyncio.wait_for(fetch(client, url, max_bytes=photos.rules.max_bytes), timeout_s)
                    stored = await photos.accept(
                        [PhotoUpload(data)], prefix=prefix, limit=1, per="report", field="photo_url"
                    )
                    return stored[0]
                except TimeoutError:
                    return "photo_url did not answer in time."
                except PhotoFetchRefused as exc:
                    return str(exc)
                except PhotoRejected as exc:
                    return exc.detail

        return list(await asyncio.gather(*(one(url) for url in urls)))
