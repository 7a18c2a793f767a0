"""The shared request path: JSON answers carry their charset on every path, metrics stay bounded."""

from __future__ import annotations

from fastapi import APIRouter, FastAPI
from fastapi.datastructures import Default
from fastapi.testclient import TestClient
from prometheus_client import REGISTRY

from pawgle.common.errors import JSONResponseUTF8, install_error_handlers
from pawgle.common.schemas import ResponseModel
from pawgle.common.telemetry import instrument_app


class Item(ResponseModel):
    name: str


def make_app() -> FastAPI:
    router = APIRouter()

    @router.get("/item/", response_model=Item)
    def item() -> Item:
        return Item(name="Zoë")

    @router.get("/plain/")
    def plain() -> dict[str, str]:
        return {"name": "Zoë"}

    app = FastAPI(default_response_class=Default(JSONResponseUTF8))
    install_error_handlers(app)
    instrument_app(app, service="request-path-test")
    app.include_router(router)
    return app


def test_every_json_answer_names_its_charset() -> None:
    with TestClient(make_app()) as client:
        for path in ("/item/", "/plain/", "/missing/"):
            response = client.get(path)
            assert response.headers["content-type"] == "application/json; charset=utf-8", path
        assert client.get("/item/").content == '{"name":"Zoë"}'.encode()


def test_a_made_up_method_is_counted_as_other() -> None:
    with TestClient(make_app()) as client:
        client.request("BREW", "/item/")
    labels = {"service": "request-path-test", "method": "OTHER", "route": "/item/", "status": "405"}
    assert REGISTRY.get_sample_value("pawgle_http_requests_total", labels) == 1
    assert REGISTRY.get_sample_value("pawgle_http_requests_total", {**labels, "method": "BREW"}) is None
