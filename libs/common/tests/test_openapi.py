"""Each service's OpenAPI tells the truth about errors: no 422, the shared shape, the real 400/401/404/429."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi import APIRouter, Depends
from fastapi.testclient import TestClient
from pydantic import BaseModel

from pawgle.common.app import create_service_app
from pawgle.common.auth import CurrentUserId
from pawgle.common.config import ServiceSettings
from pawgle.common.errors import Conflict
from pawgle.common.openapi import error_responses
from pawgle.common.throttle import Throttle


class Thing(BaseModel):
    name: str


def toy_router() -> APIRouter:
    router = APIRouter()

    @router.get("/things/")
    def list_things() -> list[str]:
        """Public, no input."""
        return []

    @router.post("/things/", status_code=201, dependencies=[Depends(Throttle("user"))], responses=error_responses(409))
    def add_thing(thing: Thing, user_id: CurrentUserId) -> dict[str, str]:
        """Signed in, throttled, can conflict."""
        raise Conflict("Exists.")

    @router.api_route("/things/{thing_id}/", methods=["PUT", "PATCH"])
    def edit_thing(thing_id: int, user_id: CurrentUserId) -> dict[str, int]:
        """One function, two methods."""
        return {"id": thing_id}

    return router


def openapi_of(tmp_path: Path) -> dict[str, Any]:
    settings = ServiceSettings(service_name="toy", environment="test", data_dir=tmp_path)
    app = create_service_app(settings, title="toy", routers=[toy_router()])
    return TestClient(app).get("/openapi.json").json()


def codes(doc: dict[str, Any], path: str, method: str) -> list[str]:
    return sorted(doc["paths"][path][method]["responses"])


def test_no_route_documents_a_422_and_every_error_has_the_shared_shape(tmp_path: Path) -> None:
    doc = openapi_of(tmp_path)
    for ops in doc["paths"].values():
        for operation in ops.values():
            assert "422" not in operation["responses"]
            for code, response in operation["responses"].items():
                if int(code) >= 400:
                    schema = response["content"]["application/json"]["schema"]
                    assert schema == {"$ref": "#/components/schemas/ErrorBody"}
    assert doc["components"]["schemas"]["ErrorBody"]["required"] == ["detail", "error", "message"]
    assert "HTTPValidationError" not in doc["components"]["schemas"]


def test_each_route_documents_the_errors_it_really_gives(tmp_path: Path) -> None:
    doc = openapi_of(tmp_path)
    assert codes(doc, "/things/", "get") == ["200"]
    assert codes(doc, "/things/", "post") == ["201", "400", "401", "409", "429"]
    assert codes(doc, "/things/{thing_id}/", "put") == ["200", "400", "401", "404"]
    post = doc["paths"]["/things/"]["post"]["responses"]
    assert "Retry-After" in post["429"]["headers"]
    assert "WWW-Authenticate" in post["401"]["headers"]


def test_operation_ids_are_unique(tmp_path: Path) -> None:
    doc = openapi_of(tmp_path)
    ids = [op["operationId"] for ops in doc["paths"].values() for op in ops.values()]
    assert len(ids) == len(set(ids))


def test_a_405_lists_every_method_the_path_serves(tmp_path: Path) -> None:
    settings = ServiceSettings(service_name="toy", environment="test", data_dir=tmp_path)
    app = create_service_app(settings, title="toy", routers=[toy_router()])
    response = TestClient(app).delete("/things/")
    assert response.status_code == 405
    assert response.headers["allow"] == "GET, POST"
    assert response.json()["detail"] == "Method not allowed."


def test_a_field_the_service_requires_is_required_in_the_schema_though_it_has_a_default() -> None:
    from pydantic import ConfigDict

    from pawgle.common.openapi import required_in_schema
    from pawgle.common.schemas import RequestModel

    class Login(RequestModel):
        model_config = ConfigDict(json_schema_extra=required_in_schema("email"))
        email: str = ""
        remember: bool = False

    schema = Login.model_json_schema()
    assert schema["required"] == ["email"]
    assert schema["properties"]["email"]["minLength"] == 1
    assert "default" not in schema["properties"]["email"]
    assert Login.model_validate({}).email == ""  # validation keeps the service's own 400 for a missing field
