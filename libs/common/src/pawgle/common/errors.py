"""One error model: every error response is JSON carrying `detail`, `error` and `message` (contract 0.6)."""

from __future__ import annotations

import logging
from typing import Any

import orjson
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.routing import iter_route_contexts
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match

log = logging.getLogger(__name__)


class JSONResponseUTF8(JSONResponse):
    """JSON with its charset spelled out, as the contract (0.2) asks of every response."""

    media_type = "application/json; charset=utf-8"

    def render(self, content: Any) -> bytes:
        # orjson: the same compact UTF-8 JSON as Starlette's json.dumps (non-ASCII kept, no spaces), in a
        # fraction of the CPU; a 25-pet profile spent a tenth of its time in the stdlib encoder. What orjson
        # refuses (integers beyond 64 bits, non-string keys) goes through the stdlib encoder as before.
        try:
            return orjson.dumps(content)
        except TypeError:
            return super().render(content)


class AppError(Exception):
    """An error a caller can act on; carries its HTTP status and a human message.

    `commit_session`: most errors undo the request's writes, but some are a decision that must be kept (a
    failed login records the attempt, a reused refresh token revokes its family). Such a class sets it to
    True; the request's session dependency (`pawgle.common.db`) then commits before the error is answered.
    """

    status_code = 400
    commit_session = False

    def __init__(
        self, detail: str, *, status_code: int | None = None, headers: dict[str, str] | None = None, **extra: Any
    ) -> None:
        super().__init__(detail)
        self.detail = detail
        if status_code is not None:
            self.status_code = status_code
        self.headers = headers
        self.extra = extra


class BadRequest(AppError):
    status_code = 400


class Unauthorized(AppError):
    status_code = 401

    def __init__(
        self, detail: str = "Authentication credentials were not provided or are invalid.", **extra: Any
    ) -> None:
        super().__init__(detail, headers={"WWW-Authenticate": 'Bearer realm="api"'}, **extra)


class Forbidden(AppError):
    status_code = 403


class NotFound(AppError):
    status_code = 404

    def __init__(self, detail: str = "Not found.", **extra: Any) -> None:
        super().__init__(detail, **extra)


class Conflict(AppError):
    status_code = 409


class TooManyRequests(AppError):
    status_code = 429

    def __init__(self, retry_after_s: int, **extra: Any) -> None:
        retry_after_s = max(int(retry_after_s), 1)
        super().__init__(
            f"Request was throttled. Expected available in {retry_after_s} seconds.",
            headers={"Retry-After": str(retry_after_s)},
            **extra,
        )


class ServiceUnavailable(AppError):
    status_code = 503


def error_body(detail: str, *, error: str | None = None, **extra: Any) -> dict[str, Any]:
    """The universal error body: a superset every frontend caller can read."""
    body: dict[str, Any] = {"detail": detail, "error": error or detail, "message": detail}
    body.update(extra)
    return body


def error_response(
    status_code: int, detail: str, *, headers: dict[str, str] | None = None, **extra: Any
) -> JSONResponse:
    return JSONResponseUTF8(error_body(detail, **extra), status_code=status_code, headers=headers)


def _describe_validation(exc: RequestValidationError) -> tuple[str, dict[str, list[str]]]:
    fields: dict[str, list[str]] = {}
    for err in exc.errors():
        loc = [str(part) for part in err.get("loc", ()) if part not in ("body", "query", "path", "header", "form")]
        name = ".".join(loc) or "non_field_errors"
        msg = str(err.get("msg", "Invalid value.")).removeprefix("Value error, ")
        fields.setdefault(name, []).append(msg)
    summary = "; ".join(f"{name}: {msgs[0]}" for name, msgs in fields.items())
    return f"Invalid request. {summary}".strip(), fields


def allowed_methods(request: Request) -> str:
    """Every method some route serves at this path (Starlette's 405 names only the first route's)."""
    methods: set[str] = set()
    for route in iter_route_contexts(request.app.routes):
        match, _ = route.matches(request.scope)
        if match != Match.NONE:
            methods.update(route.methods or ())
    return ", ".join(sorted(methods))


def install_error_handlers(app: FastAPI) -> None:
    """Make every error JSON; 500s say nothing about internals (the log has the traceback)."""

    @app.exception_handler(AppError)
    async def _app_error(_request: Request, exc: AppError) -> JSONResponse:
        return error_response(exc.status_code, exc.detail, headers=exc.headers, **exc.extra)

    @app.exception_handler(RequestValidationError)
    async def _validation(_request: Request, exc: RequestValidationError) -> JSONResponse:
        detail, fields = _describe_validation(exc)
        body = error_body(detail)
        body.update({k: v for k, v in fields.items() if k not in body})
        return JSONResponseUTF8(body, status_code=400)

    @app.exception_handler(StarletteHTTPException)
    async def _http(_request: Request, exc: StarletteHTTPException) -> JSONResponse:
        detail = exc.detail if isinstance(exc.detail, str) else "Request failed."
        if exc.status_code == 404 and detail == "Not Found":
            detail = "Not found."
        headers = getattr(exc, "headers", None)
        if exc.status_code == 405:
            detail = "Method not allowed."
            headers = {**(headers or {}), "Allow": allowed_methods(_request)}
        return error_response(exc.status_code, detail, headers=headers)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        # The server closes the connection after an unhandled error: say so, or the gateway would reuse
        # the dead keep-alive connection for another user's request (and answer it 502).
        return error_response(500, "An unexpected error occurred.", headers={"Connection": "close"})
