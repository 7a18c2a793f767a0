"""The read lane: hot GET routes answered in plain ASGI, ahead of FastAPI's routing and dependency solving.

A small authenticated read (the caller's alert areas, notifications, profile, the map) is a few hundred
microseconds of work in the database and JSON, and FastAPI's machinery around it (matching every route,
solving the dependency tree in an exit stack, a hop to a worker thread and back, response classes)
cost several times that. A route marked with `@fast_read` is still an ordinary FastAPI route (its OpenAPI,
its errors, its tests); the lane only answers it *faster*, running the very same endpoint function with
the same dependencies, on the one path where nothing can go differently:

- GET, the exact path, no body;
- the caller's access token already verified once by the full stack (the verifier's cache, which checks
  lifetime and key on every hit) and not revoked since (checked on every request, as the full stack does);
- query parameters that FastAPI's own validation accepts.

Everything else (no token where one is needed, a token seen for the first time, a revoked account, a bad
parameter, an endpoint raising, a response that is not a `Response`) falls back to the full stack,
which gives the answer it always gave: the lane never writes an error of its own. The endpoint runs on
the event loop when its session reads SQLite (a read transaction there is microseconds of shared memory,
cheaper than any thread hop), else in a worker thread, as FastAPI would run it.

Supported dependencies, checked when the app is built (an unsupported route is a startup error, never a
silent slow path): `SessionDep`, `CurrentUserId`, `OptionalUserId`, `Request`, query parameters, and
sub-dependencies that are plain functions of the request (`request.app.state.x` lookups).
"""

from __future__ import annotations

import dataclasses
import functools
import inspect
import sqlite3
from collections import OrderedDict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, TypeVar, overload
from urllib.parse import parse_qsl

from fastapi import FastAPI
from fastapi.dependencies.models import Dependant
from fastapi.dependencies.utils import request_params_to_args
from fastapi.routing import APIRoute
from prometheus_client import Counter
from sqlalchemy.engine import Engine
from sqlmodel import Session
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from pawgle.common.auth import AccessTokenVerifier, current_user_id, optional_user_id
from pawgle.common.db import get_session, read_only

F = TypeVar("F", bound=Callable[..., Any])

# Kept answers per process: the hot pages of a few thousand active users, at most 32 MB of bodies.
CACHE_MAX_BYTES = 32 * 1024 * 1024
CACHE_MAX_BODY = 1024 * 1024  # the map's default list of 1,000 reports is ~0.5 MB

_MARK = "__pawgle_fast_read__"

READ_LANE = Counter(
    "pawgle_read_lane_total",
    "GET requests to read-lane routes, by how they were answered: ran (the lane ran the endpoint), kept (an "
    "answer kept while the database did not change), full (handed to the full stack: a first token, an error)",
    ["service", "route", "outcome"],
)


@overload
def fast_read(endpoint: F, /) -> F: ...
@overload
def fast_read(*, cached: bool = False) -> Callable[[F], F]: ...
def fast_read(endpoint: F | None = None, /, *, cached: bool = False) -> F | Callable[[F], F]:
    """Mark a GET endpoint for the read lane (put it under the `@router.get(...)` decorator).

    `cached=True` when the answer is a function of the database, the caller and the query string alone
    (no clock, no other service): the lane then keeps the last answer per (path, caller, query) and serves
    it again while the database has not changed (see `_Freshness`).
    """

    def mark(function: F) -> F:
        setattr(function, _MARK, {"cached": cached})
        return function

    return mark(endpoint) if endpoint is not None else mark


class _Fallback(Exception):
    """This request is the full stack's to answer."""


@dataclass
class _Plan:
    """How to call one marked endpoint without FastAPI: where each argument comes from."""

    path: str
    route: APIRoute
    endpoint: Callable[..., Any]
    is_async: bool
    cached: bool
    session_args: list[str] = field(default_factory=list)
    user_arg: str | None = None
    user_required: bool = False
    request_args: list[str] = field(default_factory=list)
    state_args: list[tuple[str, Callable[[Request], Any], bool]] = field(default_factory=list)
    query: Dependant | None = None


def _plan(path: str, route: APIRoute) -> _Plan:
    endpoint = inspect.unwrap(route.endpoint)  # SessionRoute wraps sync endpoints; the lane calls the original
    where = f"read lane: GET {path}"
    dependant = route.dependant
    if dependant.path_params or dependant.header_params or dependant.cookie_params or dependant.body_params:
        raise TypeError(f"{where}: only query parameters and the dependencies listed in pawgle.common.fastpath")
    plan = _Plan(
        path=path,
        route=route,
        endpoint=endpoint,
        is_async=inspect.iscoroutinefunction(endpoint),
        cached=bool(getattr(route.endpoint, _MARK)["cached"]),
    )
    if dependant.request_param_name:
        plan.request_args.append(dependant.request_param_name)
    for sub in dependant.dependencies:
        if sub.name is None:
            raise TypeError(f"{where}: route-level dependencies are not supported")
        if sub.call is get_session:
            plan.session_args.append(sub.name)
        elif sub.call in (current_user_id, optional_user_id):
            plan.user_arg, plan.user_required = sub.name, sub.call is current_user_id
        elif _is_request_lookup(sub):
            plan.state_args.append((sub.name, sub.call, inspect.iscoroutinefunction(sub.call)))  # type: ignore[arg-type]
        else:
            raise TypeError(f"{where}: dependency {sub.call!r} is not supported")
    if dependant.query_params:
        plan.query = dependant
    return plan


def _is_request_lookup(sub: Dependant) -> bool:
    """A function (or coroutine) of the request alone (`request.app.state.blobs`), no further dependencies."""
    call = sub.call
    return (
        call is not None
        and inspect.isfunction(call)
        and not inspect.isgeneratorfunction(call)
        and not inspect.isasyncgenfunction(call)
        and sub.request_param_name is not None
        and not (sub.dependencies or sub.query_params or sub.header_params or sub.cookie_params or sub.body_params)
    )


class ReadLane:
    """Plain-ASGI middleware answering the marked routes (see the module docstring); the rest passes on."""

    def __init__(self, app: ASGIApp, *, fastapi_app: FastAPI, plans: dict[str, _Plan]) -> None:
        self.app = app
        self.fastapi_app = fastapi_app
        self.plans = plans
        service = fastapi_app.state.settings.service_name
        self._outcomes = {
            (path, outcome): READ_LANE.labels(service, path, outcome)
            for path in plans
            for outcome in ("ran", "kept", "full")
        }
        self._freshness: _Freshness | None | bool = False  # False: not opened yet; None: no cache here
        self._answers: OrderedDict[tuple[str, int | None, bytes], _Answer] = OrderedDict()
        self._kept_bytes = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        # Dependency overrides (tests) are FastAPI's business: with any in place, the full stack answers.
        if scope["type"] == "http" and scope["method"] == "GET" and not self.fastapi_app.dependency_overrides:
            plan = self.plans.get(scope["path"])
            if plan is not None:
                try:
                    answer = await self._answer(plan, scope)
                except _Fallback:
                    pass
                except Exception:  # noqa: BLE001 - whatever it was, the full stack answers it as it always did
                    pass
                else:
                    self._outcomes[plan.path, "ran" if answer.fresh else "kept"].inc()
                    scope["route"] = plan.route  # the metrics' route label, as the router would set it
                    await send({"type": "http.response.start", "status": answer.status, "headers": answer.headers})
                    await send({"type": "http.response.body", "body": answer.body})
                    return
                self._outcomes[plan.path, "full"].inc()
        await self.app(scope, receive, send)

    async def _answer(self, plan: _Plan, scope: Scope) -> _Answer:
        caller = self._caller(scope, required=plan.user_required) if plan.user_arg is not None else None
        freshness = self.freshness() if plan.cached else None
        if freshness is None:
            return _Answer.of(await self._run(plan, scope, caller), version=None)
        key = (scope["path"], caller, scope.get("query_string") or b"")
        version = freshness.version()  # read before the query: a commit in between makes the answer stale
        kept = self._answers.get(key)
        if kept is not None and kept.version == version:
            self._answers.move_to_end(key)
            return kept.again
        answer = _Answer.of(await self._run(plan, scope, caller), version=version)
        if answer.status == 200 and len(answer.body) <= CACHE_MAX_BODY:
            self._keep(key, answer)
        return answer

    def _keep(self, key: tuple[str, int | None, bytes], answer: _Answer) -> None:
        old = self._answers.pop(key, None)
        if old is not None:
            self._kept_bytes -= len(old.body)
        self._answers[key] = answer
        self._kept_bytes += len(answer.body)
        while self._kept_bytes > CACHE_MAX_BYTES:
            _, dropped = self._answers.popitem(last=False)
            self._kept_bytes -= len(dropped.body)

    def freshness(self) -> _Freshness | None:
        if self._freshness is False:
            self._freshness = _Freshness.open(self.fastapi_app.state.engine)
        return self._freshness  # type: ignore[return-value]

    async def _run(self, plan: _Plan, scope: Scope, caller: int | None) -> Response:
        values: dict[str, Any] = {}
        if plan.user_arg is not None:
            values[plan.user_arg] = caller
        request: Request | None = None
        if plan.request_args or plan.state_args:
            request = Request(scope)
            for name in plan.request_args:
                values[name] = request
            for name, lookup, is_async in plan.state_args:
                values[name] = await lookup(request) if is_async else lookup(request)
        if plan.query is not None:
            raw = scope.get("query_string") or b""
            received = dict(parse_qsl(raw.decode("latin-1"), keep_blank_values=True)) if raw else {}
            params, errors = request_params_to_args(plan.query.query_params, received)
            if errors:
                raise _Fallback
            values.update(params)
        engine = self.fastapi_app.state.engine
        sessions = []
        for name in plan.session_args:
            session = values[name] = Session(read_only(engine), expire_on_commit=False)
            sessions.append(session)
        # On SQLite a read transaction ends by releasing its snapshot (microseconds: on the loop); anything
        # else (a MySQL round trip) runs in a worker thread, endpoint and rollback together.
        inline = engine.dialect.name == "sqlite"
        if plan.is_async:
            try:
                response = await plan.endpoint(**values)
            finally:
                if inline:
                    _close(sessions)
                else:
                    await run_in_threadpool(_close, sessions)
        elif inline:
            try:
                response = plan.endpoint(**values)
            finally:
                _close(sessions)
        else:
            response = await run_in_threadpool(_call_then_close, plan.endpoint, values, sessions)
        if not isinstance(response, Response):
            raise _Fallback
        return response

    def _caller(self, scope: Scope, *, required: bool) -> int | None:
        token = None
        for name, value in scope["headers"]:
            if name == b"authorization":
                scheme, _, rest = value.decode("latin-1").partition(" ")
                rest = rest.strip()
                if scheme.lower() == "bearer" and rest and rest not in ("null", "undefined"):
                    token = rest
                break
        if token is None:
            if required:
                raise _Fallback  # the full stack's 401
            return None
        verifier: AccessTokenVerifier = self.fastapi_app.state.token_verifier
        claims = verifier.verified_before(token)
        if claims is None:
            raise _Fallback  # first sight of this token, expired, revoked or its key withdrawn: the full check
        return claims.user_id


@dataclass(frozen=True)
class _Answer:
    status: int
    headers: list[tuple[bytes, bytes]]
    body: bytes
    version: int | None
    fresh: bool = True  # made for this request (not a kept one)

    @classmethod
    def of(cls, response: Response, *, version: int | None) -> _Answer:
        if not isinstance(response.body, bytes):
            raise _Fallback  # a streamed response: the full stack's to send
        return cls(response.status_code, list(response.raw_headers), response.body, version)

    @functools.cached_property
    def again(self) -> _Answer:
        return dataclasses.replace(self, fresh=False)


class _Freshness:
    """Whether the service's database changed since a moment: SQLite's `PRAGMA data_version`.

    Read on a connection of its own that never writes: its value changes whenever any other connection,
    in this process or another (the service's other workers, its consumers), committed. About 3 us a read.
    Only for a SQLite file: an in-memory database is another database on another connection, and MySQL
    has no such counter (its answers are never kept).
    """

    def __init__(self, connection: sqlite3.Connection) -> None:
        self._connection = connection

    @classmethod
    def open(cls, engine: Engine) -> _Freshness | None:
        database = engine.url.database
        if (
            engine.dialect.name != "sqlite"
            or not database
            or database == ":memory:"
            or "mode=memory" in str(engine.url)
        ):
            return None
        return cls(sqlite3.connect(database, check_same_thread=False, isolation_level=None, timeout=30))

    def version(self) -> int:
        return int(self._connection.execute("PRAGMA data_version").fetchone()[0])


def _close(sessions: list[Session]) -> None:
    for session in sessions:
        session.close()


def _call_then_close(endpoint: Callable[..., Any], values: dict[str, Any], sessions: list[Session]) -> Any:
    try:
        return endpoint(**values)
    finally:
        _close(sessions)


def _api_routes(routes: list[Any], *, prefix: str) -> Iterator[tuple[str, APIRoute]]:
    """Every APIRoute with the path it answers, included routers walked (FastAPI keeps them nested)."""
    for route in routes:
        if isinstance(route, APIRoute):
            yield prefix + route.path, route
        elif hasattr(route, "original_router") and hasattr(route, "include_context"):
            context = route.include_context
            if context.dependencies and any(
                getattr(r.endpoint, _MARK, None) for r in route.original_router.routes if isinstance(r, APIRoute)
            ):
                raise TypeError("read lane: a router included with dependencies cannot have read-lane routes")
            yield from _api_routes(route.original_router.routes, prefix=prefix + context.prefix)


def install_read_lane(app: FastAPI) -> None:
    """Put the read lane in front of the app's marked routes; call it after the routers are included.

    The plans are made here, so a marked route the lane cannot run fails the app's construction. Install
    it before the telemetry middleware, which then wraps it: lane answers are counted and traced too.
    """
    plans: dict[str, _Plan] = {}
    for path, route in _api_routes(app.router.routes, prefix=""):
        if getattr(route.endpoint, _MARK, None):
            if "GET" not in (route.methods or ()) or "{" in path:
                raise TypeError(f"read lane: {path} must be a GET route with an exact path")
            plans[path] = _plan(path, route)
    if plans:
        app.add_middleware(ReadLane, fastapi_app=app, plans=plans)
