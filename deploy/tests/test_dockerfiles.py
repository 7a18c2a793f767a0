"""The one Dockerfile, built for each SERVICE: multi-stage, non-root, installs libs/common and that service only,
serves it on 8080 with a healthcheck, and refuses a missing or unknown SERVICE."""

from __future__ import annotations

import ast
import json
import os
import re
import subprocess
import sys
import threading
import tomllib
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from pawgle.common import serve

from .conftest import REPO, SERVICES

DOCKERFILE = REPO / "Dockerfile"


def _instructions() -> list[tuple[str, str]]:
    """The Dockerfile's instructions as (KEYWORD, arguments), continuation lines joined, comments dropped."""
    text = DOCKERFILE.read_text(encoding="utf-8")
    joined = re.sub(r"\\\n", " ", text)
    result = []
    for line in joined.splitlines():
        stripped = line.strip()
        if stripped and not stripped.startswith("#"):
            keyword, _, rest = stripped.partition(" ")
            result.append((keyword.upper(), rest.strip()))
    return result


def _built_for(service: str) -> list[tuple[str, str]]:
    """The instructions as `docker build --build-arg SERVICE=<service>` sees them once the arg is expanded."""
    return [(k, re.sub(r"\$\{SERVICE\}|\$SERVICE\b", service, args)) for k, args in _instructions()]


def _runtime_stage(service: str) -> list[tuple[str, str]]:
    steps = _built_for(service)
    last_from = max(i for i, (keyword, _) in enumerate(steps) if keyword == "FROM")
    return steps[last_from:]


def _image_env(service: str) -> dict[str, str]:
    env: dict[str, str] = {}
    for keyword, args in _runtime_stage(service):
        if keyword == "ENV":
            env.update(pair.split("=", 1) for pair in args.split())  # type: ignore[misc]
    return env


def test_the_per_service_dockerfiles_are_gone() -> None:
    leftovers = sorted(str(p.relative_to(REPO)) for p in (REPO / "services").glob("*/Dockerfile"))
    assert not leftovers, f"one Dockerfile at the root builds every service: {leftovers}"


def test_service_is_a_required_build_arg_in_every_stage_that_uses_it() -> None:
    steps = _instructions()
    assert not [args for keyword, args in steps if keyword == "ARG" and args.startswith("SERVICE=")], "no default"
    stage: list[tuple[str, str]] = []
    for keyword, args in [*steps, ("FROM", "end")]:
        if keyword == "FROM":
            uses = [i for i, (_, a) in enumerate(stage) if "${SERVICE}" in a or "$SERVICE" in a]
            if uses:
                assert ("ARG", "SERVICE") in stage[: uses[0]], "an ARG is only visible in the stage that declares it"
            stage = []
        stage.append((keyword, args))


@pytest.fixture(scope="module")
def service_check() -> str:
    """The RUN step that validates SERVICE: docker runs it with the build arg in its environment."""
    (check,) = [args for keyword, args in _instructions() if keyword == "RUN" and 'case "${SERVICE}"' in args]
    return check


@pytest.mark.parametrize(
    ("value", "message"),
    [("", "SERVICE is required: docker build --build-arg SERVICE="), ("kennel", "SERVICE=kennel is not a PawGle")],
)
def test_the_build_fails_with_a_clear_message_without_a_known_service(
    service_check: str, value: str, message: str
) -> None:
    result = subprocess.run(["sh", "-c", service_check], env={"SERVICE": value}, capture_output=True, text=True)
    assert result.returncode != 0
    assert message in result.stderr
    assert all(s in result.stderr for s in SERVICES), "the message lists the names to choose from"


@pytest.mark.parametrize("service", SERVICES)
def test_the_build_accepts_every_service(service_check: str, service: str) -> None:
    result = subprocess.run(["sh", "-c", service_check], env={"SERVICE": service}, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    steps = _instructions()
    check_at = steps.index(("RUN", service_check))
    assert not [k for k, _ in steps[:check_at] if k in ("COPY", "RUN")], "the check runs before anything else"


def test_the_image_is_multi_stage_on_python_311_slim() -> None:
    steps = _instructions()
    base = [args for keyword, args in steps if keyword == "ARG" and args.startswith("PYTHON_IMAGE=")]
    assert base == ["PYTHON_IMAGE=python:3.11-slim"]
    stages = [args for keyword, args in steps if keyword == "FROM"]
    assert len(stages) >= 2
    assert all(stage.startswith("${PYTHON_IMAGE}") for stage in stages)


@pytest.mark.parametrize("service", SERVICES)
def test_the_image_installs_libs_common_and_only_its_own_service(service: str) -> None:
    steps = _built_for(service)
    copied = {args.split()[0] for keyword, args in steps if keyword == "COPY" and not args.startswith("--from")}
    assert copied == {"libs/common", f"services/{service}"}
    installs = [args for keyword, args in steps if keyword == "RUN" and "pip install" in args]
    assert len(installs) == 1
    assert installs[0].endswith(f"pip install /src/libs/common /src/services/{service}"), "both in one pip call"
    assert "--mount=type=cache,target=/root/.cache/pip" in installs[0]
    assert not any(re.search(r"(-r|--requirement)\s|https?://", args) for args in installs), "no lock file with URLs"
    project = tomllib.loads((REPO / "services" / service / "pyproject.toml").read_text(encoding="utf-8"))
    assert project["project"]["name"] == f"pawgle-{service}"
    assert any(re.match(r"pawgle-common\b", dep) for dep in project["project"]["dependencies"])


@pytest.mark.parametrize("service", SERVICES)
def test_the_image_is_labelled_with_its_service(service: str) -> None:
    (labels,) = [args for keyword, args in _runtime_stage(service) if keyword == "LABEL"]
    assert f'org.opencontainers.image.title="pawgle-{service}"' in labels
    assert f'org.opencontainers.image.description="PawGle mesh: the {service} service"' in labels


@pytest.mark.parametrize("service", SERVICES)
def test_the_image_runs_as_a_non_root_user(service: str) -> None:
    steps = _runtime_stage(service)
    users = [args for keyword, args in steps if keyword == "USER"]
    assert users, "no USER instruction: the container would run as root"
    user = users[-1].split(":")[0]
    assert user not in ("root", "0")
    assert user == "10001", "the uid Kubernetes' runAsUser and compose's user expect"
    (setup,) = [args for keyword, args in steps if keyword == "RUN" and "useradd" in args]
    assert "--uid 10001 --gid 10001" in setup
    assert "chown 10001:10001 /var/lib/pawgle" in setup
    assert ("WORKDIR", "/var/lib/pawgle") in steps
    assert _image_env(service)["PAWGLE_DATA_DIR"] == "/var/lib/pawgle"


@pytest.mark.parametrize("service", SERVICES)
def test_the_image_serves_its_service_on_8080(service: str) -> None:
    steps = _runtime_stage(service)
    (cmd,) = [json.loads(args) for keyword, args in steps if keyword == "CMD"]
    assert cmd == ["pawgle-serve"], "exec form: no shell to expand anything, the service comes from the env"
    env = _image_env(service)
    assert env["PAWGLE_SERVICE"] == service
    assert (env["PAWGLE_HOST"], env["PAWGLE_LISTEN_PORT"]) == ("0.0.0.0", "8080")
    assert env["UVICORN_ACCESS_LOG"] == "false"
    assert ("EXPOSE", "8080") in steps


def test_pawgle_serve_knows_every_service_and_is_installed_with_libs_common() -> None:
    project = tomllib.loads((REPO / "libs/common/pyproject.toml").read_text(encoding="utf-8"))
    assert project["project"]["scripts"]["pawgle-serve"] == "pawgle.common.serve:main"
    assert set(serve.SERVICES) == set(SERVICES)


class _Probe(BaseHTTPRequestHandler):
    status = 200
    paths: list[str] = []

    def do_GET(self) -> None:
        type(self).paths.append(self.path)
        self.send_response(type(self).status)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - the base class's name
        """Quiet."""


@pytest.fixture
def probe_server() -> Iterator[tuple[int, type[_Probe]]]:
    """A local HTTP server standing in for the service: records the paths asked, answers `status`."""
    handler = type("Probe", (_Probe,), {"paths": [], "status": 200})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_address[1], handler
    server.shutdown()
    server.server_close()


def _run_healthcheck(service: str, port: int) -> subprocess.CompletedProcess[str]:
    (healthcheck,) = [args for keyword, args in _runtime_stage(service) if keyword == "HEALTHCHECK"]
    options, _, command = healthcheck.partition(" CMD ")
    assert "--timeout=5s" in options
    assert "--start-period=60s" in options
    argv = json.loads(command)
    assert argv[0] == "python", "the image's interpreter; curl and wget are not in python:3.11-slim"
    env = {**{k: v for k, v in _image_env(service).items() if k.startswith("PAWGLE_")}, "PAWGLE_LISTEN_PORT": str(port)}
    return subprocess.run(
        [sys.executable, *argv[1:]], env={**env, "PATH": os.environ["PATH"]}, capture_output=True, text=True, timeout=30
    )


@pytest.mark.parametrize("service", SERVICES)
def test_the_healthcheck_asks_the_liveness_endpoint_of_the_service(
    service: str, probe_server: tuple[int, type[_Probe]]
) -> None:
    port, handler = probe_server
    result = _run_healthcheck(service, port)
    assert result.returncode == 0, result.stderr
    # The gateway's /healthz asks every service behind it; its own liveness is /readyz (Dockerfile comment).
    assert handler.paths == ["/readyz" if service == "gateway" else "/healthz"]


def test_the_healthcheck_fails_when_the_service_does_not_answer_200(probe_server: tuple[int, type[_Probe]]) -> None:
    port, handler = probe_server
    handler.status = 503
    assert _run_healthcheck("pets", port).returncode != 0


@pytest.mark.parametrize("service", SERVICES)
def test_the_factory_the_image_runs_exists(service: str) -> None:
    main = REPO / "services" / service / "src" / "pawgle" / service / "main.py"
    assert main.is_file(), f"{main} is missing: pawgle-serve in the image would fail"
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
