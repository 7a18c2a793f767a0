"""Read-only serving of the local blob folder under /media/ (the embedded photo store, LocalBlobStore).

Only image files are served; keys are checked segment by segment and the resolved file must stay inside
the folder, so no traversal, no hidden files, no directory listing.
"""

from __future__ import annotations

import re
from pathlib import Path

from fastapi import APIRouter, Request
from fastapi.responses import FileResponse

from pawgle.common.errors import NotFound

router = APIRouter(include_in_schema=False)

IMAGE_TYPES = {
    "jpg": "image/jpeg",
    "jpeg": "image/jpeg",
    "png": "image/png",
    "webp": "image/webp",
    "gif": "image/gif",
    "avif": "image/avif",
}
_SEGMENT = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9._-]{0,199}")


def resolve_media_file(root: Path, key: str) -> Path | None:
    """The file behind a blob key, or None when the key is malformed, escapes the folder or is missing."""
    segments = key.split("/")
    if len(segments) > 8 or not all(_SEGMENT.fullmatch(segment) for segment in segments):
        return None
    if key.rsplit(".", 1)[-1].lower() not in IMAGE_TYPES:
        return None
    root = root.resolve()
    path = (root / key).resolve()
    if not path.is_relative_to(root) or not path.is_file():
        return None
    return path


@router.api_route("/media/{key:path}", methods=["GET", "HEAD"])
async def media(key: str, request: Request) -> FileResponse:
    """One stored photo, with its image content type and cache headers."""
    settings = request.app.state.settings
    path = resolve_media_file(settings.media_dir, key)
    if path is None:
        raise NotFound()
    return FileResponse(
        path,
        media_type=IMAGE_TYPES[path.suffix.lstrip(".").lower()],
        headers={
            "Cache-Control": f"public, max-age={settings.media_cache_max_age_s}",
            "X-Content-Type-Options": "nosniff",
            "Cross-Origin-Resource-Policy": "cross-origin",
            "Content-Security-Policy": "default-src 'none'; sandbox",
        },
    )
