"""Small raw-ASGI helpers shared by the gateway's middleware and proxy."""

from __future__ import annotations

import json
from typing import Any

from starlette.types import Scope, Send

from pawgle.common.errors import error_body

JSON_MEDIA_TYPE = "application/json; charset=utf-8"  # contract 0.2: the charset spelled out on every answer
JSON_CONTENT_TYPE = (b"content-type", JSON_MEDIA_TYPE.encode())


def header_value(scope: Scope, name: bytes) -> bytes | None:
    """The first value of request header `name` (lower-case bytes), or None."""
    for key, value in scope["headers"]:
        if key == name:
            return value
    return None


async def send_json_error(
    send: Send, status: int, detail: str, *, headers: list[tuple[bytes, bytes]] | None = None, **extra: Any
) -> None:
    """Answer with the mesh's universal JSON error body (contract 0.6)."""
    body = json.dumps(error_body(detail, **extra), ensure_ascii=False, separators=(",", ":")).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [JSON_CONTENT_TYPE, (b"content-length", str(len(body)).encode()), *(headers or [])],
        }
    )
    await send({"type": "http.response.body", "body": body, "more_body": False})
