"""An OpenAPI document that tells the truth about errors, for every service built by create_service_app.

FastAPI documents a 422 on every route with parameters, but this mesh answers validation errors with a
400 (see errors.py), and it documents none of the 401, 404 or 429 answers a route really gives. Here the
generated document is corrected once, for every service:

- no 422 anywhere; every error response uses the shared error shape (`ErrorBody`);
- 400 on every route that takes parameters or a body (they can be invalid);
- 401 on every route that needs an access token (the `CurrentUserId` dependency);
- 404 on every route with a path parameter (an unknown id, or one that is not the caller's);
- 429 with `Retry-After` on every throttled route (a `Throttle` or `default_throttle` dependency);
- other answers a route gives (403, 409, ...) are declared on the route: `responses=error_responses(403)`;
- operation ids made unique (one function serving PUT and PATCH would otherwise repeat its id).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterator
from typing import Any

from fastapi import FastAPI
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute, RouteContext, iter_route_contexts
from pydantic import BaseModel, ConfigDict, Field

from pawgle.common.auth import caller_claims, current_user_id
from pawgle.common.throttle import Throttle, default_throttle

ERROR_DESCRIPTIONS: dict[int, str] = {
    400: "Invalid request: `detail` says what to fix; invalid fields are named as extra keys.",
    401: "Missing, invalid or expired access token, or the account is inactive or deleted.",
    403: "Not allowed.",
    404: "Not found (or not yours).",
    409: "Conflicts with the current state.",
    413: "The request body is too large.",
    429: "Throttled: retry after the number of seconds in `Retry-After`.",
    503: "A dependency is unavailable; retry later.",
}

ERROR_HEADERS: dict[int, dict[str, Any]] = {
    401: {"WWW-Authenticate": {"description": "The Bearer challenge.", "schema": {"type": "string"}}},
    429: {"Retry-After": {"description": "Seconds until the next allowed request.", "schema": {"type": "integer"}}},
}

ERROR_SCHEMA_REF = {"$ref": "#/components/schemas/ErrorBody"}


class ErrorBody(BaseModel):
    """The shared error shape: `detail`, `error` and `message` carry the same human message."""

    model_config = ConfigDict(extra="allow", title="ErrorBody")

    detail: str = Field(description="What went wrong and what to fix.")
    error: str = Field(description="The same message (older clients read this key).")
    message: str = Field(description="The same message (older clients read this key).")


def error_response(status_code: int, description: str | None = None) -> dict[str, Any]:
    """The OpenAPI response object of one error status, in the shared error shape."""
    response: dict[str, Any] = {
        "description": description or ERROR_DESCRIPTIONS.get(status_code, "Error."),
        "content": {"application/json": {"schema": ERROR_SCHEMA_REF}},
    }
    if status_code in ERROR_HEADERS:
        response["headers"] = ERROR_HEADERS[status_code]
    return response


def error_responses(*status_codes: int) -> dict[int | str, dict[str, Any]]:
    """For a route's `responses=`: the error answers it gives beyond those documented automatically."""
    return {code: error_response(code) for code in status_codes}


def required_in_schema(*names: str) -> Callable[[dict[str, Any]], None]:
    """For a request model's `json_schema_extra`: these fields are required and non-empty in its schema.

    Some bodies keep a default of "" so that a missing field gets the service's own 400 message (the
    contract's wording) rather than a generic one; the service still refuses them missing or empty, and
    the schema says so: `model_config = ConfigDict(json_schema_extra=required_in_schema("email"))`.
    """

    def mark_required(schema: dict[str, Any]) -> None:
        required: list[str] = schema.setdefault("required", [])
        for name in names:
            if name not in required:
                required.append(name)
            field = schema["properties"][name]
            field.pop("default", None)
            field.setdefault("minLength", 1)

    return mark_required


def _calls(dependant: Dependant) -> Iterator[Callable[..., Any]]:
    for dependency in dependant.dependencies:
        if dependency.call is not None:
            yield dependency.call
        yield from _calls(dependency)


def _has_input(route: APIRoute | RouteContext) -> bool:
    dependant = route.dependant

    def params(d: Dependant) -> bool:
        if d.path_params or d.query_params or d.header_params or d.cookie_params or d.body_params:
            return True
        return any(params(sub) for sub in d.dependencies)

    return params(dependant)


def automatic_error_codes(route: APIRoute | RouteContext) -> set[int]:
    """The error statuses a route gives by construction: validation, token, unknown id, throttle."""
    calls = list(_calls(route.dependant))
    codes: set[int] = set()
    if _has_input(route):
        codes.add(400)
    if any(call in (current_user_id, caller_claims) for call in calls):
        codes.add(401)
    if route.dependant.path_params:
        codes.add(404)
    if any(isinstance(call, Throttle) or call is default_throttle for call in calls):
        codes.add(429)
    return codes


def _api_routes(app: FastAPI) -> Iterator[RouteContext]:
    """Every documented API route with its effective path and dependencies (routers included)."""
    for context in iter_route_contexts(app.routes):
        if isinstance(context.original_route, APIRoute) and context.include_in_schema:
            yield context


def _document_errors(schema: dict[str, Any], routes: list[RouteContext]) -> None:
    schema.setdefault("components", {}).setdefault("schemas", {})["ErrorBody"] = ErrorBody.model_json_schema()
    for route in routes:
        for method in route.methods or ():
            operation = schema["paths"].get(route.path_format, {}).get(method.lower())
            if operation is None:
                continue
            responses: dict[str, Any] = operation.setdefault("responses", {})
            responses.pop("422", None)
            for status in automatic_error_codes(route):
                responses.setdefault(str(status), error_response(status))
            for key, response in responses.items():
                if key.isdigit() and int(key) >= 400:
                    # A route's own declaration keeps its description; the body is always the shared shape.
                    response["content"] = {"application/json": {"schema": ERROR_SCHEMA_REF}}
                    if int(key) in ERROR_HEADERS:
                        response.setdefault("headers", ERROR_HEADERS[int(key)])
    schemas = schema["components"]["schemas"]
    for unused in ("HTTPValidationError", "ValidationError"):
        schemas.pop(unused, None)


def _unique_operation_ids(schema: dict[str, Any]) -> None:
    seen: set[str] = set()
    for ops in schema["paths"].values():
        for method, operation in ops.items():
            op_id = operation.get("operationId")
            if op_id is None:
                continue
            if op_id in seen:
                # FastAPI's id ends with the route's first method: name this one after its own method.
                op_id = f"{op_id.rsplit('_', 1)[0]}_{method}"
                while op_id in seen:
                    op_id += "_"
                operation["operationId"] = op_id
            seen.add(op_id)


def install_openapi(app: FastAPI) -> None:
    """Serve the corrected document at /openapi.json (built once, on first request)."""
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            with warnings.catch_warnings():
                # One function serving two methods repeats its operation id; fixed just below.
                warnings.filterwarnings("ignore", message="Duplicate Operation ID")
                schema = generate()
            _document_errors(schema, list(_api_routes(app)))
            _unique_operation_ids(schema)
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
