"""The gateway's route table checks itself against the real service apps (both directions)."""

from __future__ import annotations

import importlib
import re
import warnings
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi import FastAPI
from starlette.routing import Match

from pawgle.gateway.routes import PLANNED, ROUTE_TABLE, SERVICES, RouteTable

from .test_routes import sample_path

# The service's own operational routes: never public, never in the table.
INTERNAL = {"/healthz", "/readyz", "/metrics", "/openapi.json", "/docs", "/docs/oauth2-redirect", "/redoc"}


@pytest.fixture(scope="module")
def apps(tmp_path_factory: pytest.TempPathFactory) -> dict[str, FastAPI]:
    """Every service's real app, built (not started) on a scratch data folder."""
    data_dir: Path = tmp_path_factory.mktemp("route-owners")
    built = {}
    for service in SERVICES:
        config = importlib.import_module(f"pawgle.{service}.config")
        main = importlib.import_module(f"pawgle.{service}.main")
        built[service] = main.create_app(config.Settings(run_workers=False, data_dir=data_dir, environment="test"))
    return built


def _paths(routes: list[object], prefix: str = "") -> Iterator[str]:
    """Every HTTP and WebSocket route path of an app, included routers walked through."""
    for route in routes:
        included = getattr(route, "original_router", None)
        if included is not None:
            context = getattr(route, "include_context", None)
            yield from _paths(included.routes, prefix + (getattr(context, "prefix", "") or ""))
        elif hasattr(route, "path"):
            yield prefix + route.path  # type: ignore[attr-defined]


def _concrete(path: str) -> str:
    """A request path for a FastAPI route template: `{x:int}` -> 17, `{x:path}` -> a/b, `{x}` -> seg."""
    path = re.sub(r"\{[a-z_]+:path\}", "a/b", path)
    path = re.sub(r"\{[a-z_]+:int\}", "17", path)
    return re.sub(r"\{[a-z_]+\}", "17", path)


def _serves(app: FastAPI, path: str) -> bool:
    """Whether one of the app's routes matches `path` (any method)."""
    for kind in ("http", "websocket"):
        scope = {"type": kind, "path": path, "method": "GET", "root_path": "", "headers": [], "query_string": b""}
        if any(route.matches(scope)[0] != Match.NONE for route in app.router.routes):
            return True
    return False


def test_every_route_of_every_service_is_owned_by_that_service_in_the_table(apps: dict[str, FastAPI]) -> None:
    table = RouteTable()
    wrong = []
    for service, app in apps.items():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            paths = set(_paths(app.routes))
        for path in sorted(paths - INTERNAL):
            route = table.resolve(_concrete(path))
            if route is None or route.service != service:
                wrong.append(f"{service} serves {path}, the table says {route.service if route else 'nobody'}")
    assert not wrong, "\n".join(wrong)


def test_no_table_entry_points_at_a_service_that_lacks_it(apps: dict[str, FastAPI]) -> None:
    missing = []
    for template, service in ROUTE_TABLE:
        path = sample_path(template)
        if template.endswith("/**"):
            prefix = template.removesuffix("**")
            served = any(p.startswith(prefix) for p in _paths(apps[service].routes))
        else:
            served = _serves(apps[service], path)
        if served and template in PLANNED:
            missing.append(f"{template} is served by {service} now: remove it from PLANNED")
        elif not served and template not in PLANNED:
            missing.append(f"{template} -> {service}, which has no such route (mark it PLANNED if it is to come)")
    assert not missing, "\n".join(missing)


def test_planned_entries_are_rows_of_the_table() -> None:
    assert PLANNED <= {template for template, _ in ROUTE_TABLE}
