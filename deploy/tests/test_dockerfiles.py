"""Each service's Dockerfile: multi-stage, non-root, installs libs/common and that one service, runs it on 8080."""

from __future__ import annotations

import ast
import json
import re
import tomllib

import pytest

from .conftest import REPO, SERVICES


def _instructions(service: str) -> list[tuple[str, str]]:
    """The Dockerfile's instructions as (KEYWORD, arguments), continuation lines joined, comments dropped."""
    text = (REPO / "services" / service / "Dockerfile").read_text(encoding="utf-8")
    joined = re.sub(r"\\\n", " ", text)
    result = []
    for line in joined.splitlines():
        stripped = line.strip()
        if stripped and not stripped.startswith("#"):
            keyword, _, rest = stripped.partition(" ")
            result.append((keyword.upper(), rest.strip()))
    return result


@pytest.mark.parametrize("service", SERVICES)
def test_the_image_is_multi_stage_on_python_311_slim(service: str) -> None:
    steps = _instructions(service)
    base = [args for keyword, args in steps if keyword == "ARG" and args.startswith("PYTHON_IMAGE=")]
    assert base == ["PYTHON_IMAGE=python:3.11-slim"]
    stages = [args for keyword, args in steps if keyword == "FROM"]
    assert len(stages) >= 2
    assert all(stage.startswith("${PYTHON_IMAGE}") for stage in stages)


@pytest.mark.parametrize("service", SERVICES)
def test_the_image_installs_libs_common_and_only_its_own_service(service: str) -> None:
    steps = _instructions(service)
    copied = {args.split()[0] for keyword, args in steps if keyword == "COPY" and not args.startswith("--from")}
    assert copied == {"libs/common", f"services/{service}"}
    installs = [args for keyword, args in steps if keyword == "RUN" and "pip install" in args]
    assert any(f"/src/libs/common /src/services/{service}" in args for args in installs)
    assert not any(re.search(r"(-r|--requirement)\s|https?://", args) for args in installs), "no lock file with URLs"
    project = tomllib.loads((REPO / "services" / service / "pyproject.toml").read_text(encoding="utf-8"))
    assert project["project"]["name"] == f"pawgle-{service}"
    assert any(re.match(r"pawgle-common\b", dep) for dep in project["project"]["dependencies"])


@pytest.mark.parametrize("service", SERVICES)
def test_the_image_runs_as_a_non_root_user(service: str) -> None:
    users = [args for keyword, args in _instructions(service) if keyword == "USER"]
    assert users, "no USER instruction: the container would run as root"
    user = users[-1].split(":")[0]
    assert user not in ("root", "0")
    assert user == "10001", "the uid Kubernetes' runAsUser and compose's user expect"


@pytest.mark.parametrize("service", SERVICES)
def test_the_image_serves_the_service_factory_on_8080_with_a_healthcheck(service: str) -> None:
    steps = _instructions(service)
    (cmd,) = [json.loads(args) for keyword, args in steps if keyword == "CMD"]
    assert cmd == ["uvicorn", f"pawgle.{service}.main:create_app", "--factory", "--host", "0.0.0.0", "--port", "8080"]
    assert ("EXPOSE", "8080") in steps
    (healthcheck,) = [args for keyword, args in steps if keyword == "HEALTHCHECK"]
    probe = "/readyz" if service == "gateway" else "/healthz"
    assert f"http://127.0.0.1:8080{probe}" in healthcheck


@pytest.mark.parametrize("service", SERVICES)
def test_the_factory_the_image_runs_exists(service: str) -> None:
    main = REPO / "services" / service / "src" / "pawgle" / service / "main.py"
    assert main.is_file(), f"{main} is missing: the image's CMD would fail"
    tree = ast.parse(main.read_text(encoding="utf-8"))
    assert any(isinstance(n, ast.FunctionDef) and n.name == "create_app" for n in tree.body)


def test_pawgle_ops_is_installed_with_libs_common() -> None:
    project = tomllib.loads((REPO / "libs/common/pyproject.toml").read_text(encoding="utf-8"))
    assert project["project"]["scripts"]["pawgle-ops"] == "pawgle.common.ops:main"


def test_the_build_context_leaves_local_state_out() -> None:
    lines = (REPO / ".dockerignore").read_text(encoding="utf-8").splitlines()
    ignored = {line.strip() for line in lines if line.strip() and not line.startswith("#")}
    for pattern in (".venv", ".data", ".git", "**/__pycache__", "**/.pytest_cache", "**/.ruff_cache", "**/.mypy_cache"):
        assert pattern in ignored, f".dockerignore lacks {pattern}"
    assert not {"libs", "libs/common", "services", "*"} & ignored
