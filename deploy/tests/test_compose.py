"""docker-compose.yml: every service and piece of infrastructure, healthy, locked down and configured."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from pawgle.common.busauth import PUBLISHES, authorization_block_from_env, password_variable

from .conftest import DB_SERVICES, DEPLOY, REPO, S3_SERVICES, SERVICES, load_yaml_documents

INFRA_WITH_HEALTHCHECKS = ("nats", "mysql", "qdrant", "minio", "prometheus", "grafana")
# Containers that cannot or need not report health: a scratch image, and the run-once jobs.
NO_HEALTHCHECK = {"nats-exporter", "minio-init", *(f"{s}-migrate" for s in DB_SERVICES)}
SECRET_NAME = re.compile(r"PASSWORD|SECRET|TOKEN|API_KEY|ACCESS_KEY|DATABASE_URL")
INTERPOLATION = re.compile(r"\$\{([A-Z0-9_]+)(:?[-?][^}]*)?\}")


def _env(compose: dict[str, Any], service: str) -> dict[str, str]:
    environment = compose["services"][service]["environment"]
    assert isinstance(environment, dict), f"{service}: environment as a mapping"
    return {k: str(v) for k, v in environment.items()}


def test_every_service_and_infrastructure_component_is_there(compose: dict[str, Any]) -> None:
    expected = {*SERVICES, *INFRA_WITH_HEALTHCHECKS, "nats-exporter", *(f"{s}-migrate" for s in DB_SERVICES)}
    assert expected <= set(compose["services"])


def test_every_long_running_container_has_a_healthcheck(compose: dict[str, Any]) -> None:
    for name, service in compose["services"].items():
        if name in NO_HEALTHCHECK:
            continue
        check = service.get("healthcheck")
        assert check, f"{name} has no healthcheck"
        assert check.get("test"), f"{name}: the healthcheck has no test"
        assert not check.get("disable"), f"{name}: the healthcheck is disabled"


@pytest.mark.parametrize("service", SERVICES)
def test_each_service_is_built_for_its_service_and_locked_down(compose: dict[str, Any], service: str) -> None:
    spec = compose["services"][service]
    # The one Dockerfile at the root, the default of the context; SERVICE picks what it installs and runs.
    assert spec["build"] == {"context": ".", "args": {"SERVICE": service}}
    assert (REPO / "Dockerfile").is_file()
    assert spec["user"] == "10001:10001"
    assert spec["read_only"] is True
    assert "/tmp" in spec["tmpfs"]
    assert spec["cap_drop"] == ["ALL"]
    assert "no-new-privileges:true" in spec["security_opt"]


@pytest.mark.parametrize("service", SERVICES)
def test_each_service_gets_the_mesh_settings(compose: dict[str, Any], service: str) -> None:
    env = _env(compose, service)
    assert env["PAWGLE_ENVIRONMENT"] == "production"
    # Its own bus user, password from .env (deploy/compose/nats.conf allows it its own events only).
    password = f"NATS_{service.upper()}_PASSWORD"
    if service != "gateway":
        assert env["PAWGLE_NATS_URL"] == f"nats://{service}:${{{password}:?set {password} in .env}}@nats:4222"
    assert env["PAWGLE_EDGE_SECRET"].startswith("${PAWGLE_EDGE_SECRET:?")
    assert env["PAWGLE_JWKS_URL"] == "http://auth:8080/api/auth/jwks/"
    assert env["PAWGLE_LOG_FORMAT"] == "json"
    assert env["PAWGLE_AUTO_MIGRATE"] == "false"
    for key in ("PAWGLE_FRONTEND_ORIGIN", "PAWGLE_PUBLIC_BASE_URL", "PAWGLE_JWT_ISSUER", "PAWGLE_JWT_AUDIENCE"):
        assert env[key], key
    assert int(env["PAWGLE_STREAM_REPLICAS"]) == 1, "one NATS server on one host"


@pytest.mark.parametrize("service", DB_SERVICES)
def test_each_database_service_migrates_first_into_its_own_database(compose: dict[str, Any], service: str) -> None:
    env = _env(compose, service)
    url = env[f"{service.upper()}_DATABASE_URL"]
    assert url.startswith("mysql+pymysql://")
    assert f"@mysql:3306/pawgle_{service}?" in url
    assert "${MYSQL_PASSWORD" in url, "the password comes from .env"
    init_script = (DEPLOY / "compose/mysql-init.sh").read_text(encoding="utf-8")
    assert re.search(rf"for service in [^;]*\b{service}\b", init_script), f"mysql-init.sh does not create {service}"

    migrate = compose["services"][f"{service}-migrate"]
    assert migrate["command"] == ["pawgle-ops", service, "migrate"]
    assert migrate["image"] == compose["services"][service]["image"]
    assert migrate["build"] == compose["services"][service]["build"], "one tag, built one way"
    assert migrate["environment"] == compose["services"][service]["environment"]
    assert migrate["restart"] == "no"
    assert migrate["depends_on"]["mysql"]["condition"] == "service_healthy"
    depends = compose["services"][service]["depends_on"]
    assert depends[f"{service}-migrate"]["condition"] == "service_completed_successfully"
    assert depends["nats"]["condition"] == "service_healthy"


def test_service_specific_settings_are_wired(compose: dict[str, Any]) -> None:
    for service in S3_SERVICES:
        env = _env(compose, service)
        for key in (
            "PAWGLE_S3_BUCKET",
            "PAWGLE_S3_ENDPOINT_URL",
            "PAWGLE_S3_ACCESS_KEY_ID",
            "PAWGLE_S3_SECRET_ACCESS_KEY",
        ):
            assert env[key], f"{service}: {key}"
    assert _env(compose, "embeddings")["EMBEDDINGS_QDRANT_URL"] == "http://qdrant:6333"
    assert "NOTIFIER_RESEND_API_KEY" in _env(compose, "notifier")
    gateway = _env(compose, "gateway")
    for upstream in DB_SERVICES:
        assert gateway[f"PAWGLE_{upstream.upper()}_URL"] == f"http://{upstream}:8080"
        assert compose["services"]["gateway"]["depends_on"][upstream]["condition"] == "service_healthy"
    assert "GATEWAY_CORS_ORIGINS" in gateway


def test_auths_signing_key_is_a_mounted_secret_file(compose: dict[str, Any]) -> None:
    key_file = _env(compose, "auth")["AUTH_SIGNING_KEY_FILE"]
    for name in ("auth", "auth-migrate"):
        targets = {s["target"]: s["source"] for s in compose["services"][name]["secrets"]}
        assert key_file in targets, f"{name} does not mount {key_file}"
        source = compose["secrets"][targets[key_file]]["file"]
        assert (REPO / source).parent.is_dir()
    ignored = (REPO / Path(source).parent / ".gitignore").read_text(encoding="utf-8").split()
    assert "*" in ignored, "the key folder must keep keys out of git"


def test_no_secret_is_written_into_the_compose_file(compose: dict[str, Any]) -> None:
    for name, service in compose["services"].items():
        environment = service.get("environment") or {}
        for key, value in environment.items():
            if SECRET_NAME.search(key) and value not in ("", None):
                assert "${" in str(value), f"{name}: {key} is written inline; read it from .env"


def test_every_required_variable_is_in_the_env_example() -> None:
    text = (REPO / "docker-compose.yml").read_text(encoding="utf-8")
    required = {m.group(1) for m in INTERPOLATION.finditer(text) if (m.group(2) or "").startswith(":?")}
    example = (DEPLOY / "compose/env.example").read_text(encoding="utf-8")
    documented = set(re.findall(r"^([A-Z0-9_]+)=", example, flags=re.MULTILINE))
    assert required, "no required variables found: the pattern is broken"
    assert required <= documented, f"missing from deploy/compose/env.example: {sorted(required - documented)}"


def test_every_bind_mount_exists(compose: dict[str, Any]) -> None:
    for name, service in compose["services"].items():
        for volume in service.get("volumes", []):
            source = volume.split(":", 1)[0]
            if source.startswith("./"):
                assert (REPO / source).exists(), f"{name}: {source} does not exist"


def test_prometheus_scrapes_every_service_and_the_nats_exporter(compose: dict[str, Any]) -> None:
    (config,) = load_yaml_documents(DEPLOY / "prometheus/prometheus.yml")
    targets = {
        target
        for job in config["scrape_configs"]
        for static in job.get("static_configs", [])
        for target in static["targets"]
    }
    assert {f"{s}:8080" for s in SERVICES if s != "gateway"} <= targets
    assert "gateway:9180" in targets, "the gateway's metrics are on its internal metrics port"
    assert "nats-exporter:7777" in targets
    hosts = {t.split(":")[0] for t in targets} - {"127.0.0.1", "localhost"}
    assert hosts <= set(compose["services"]), "Prometheus scrapes a host compose does not run"
    assert "/etc/prometheus/alerts.yml" in config["rule_files"]


def test_the_bus_has_one_user_per_service_as_generated(compose: dict[str, Any]) -> None:
    nats = compose["services"]["nats"]
    assert "/etc/nats/pawgle.conf" in nats["command"]
    assert "./deploy/compose/nats.conf:/etc/nats/pawgle.conf:ro" in nats["volumes"]
    assert (DEPLOY / "compose/nats.conf").read_text() == authorization_block_from_env(list(PUBLISHES)), (
        "regenerate deploy/compose/nats.conf from pawgle.common.busauth.authorization_block_from_env"
    )
    for service in PUBLISHES:
        assert nats["environment"][password_variable(service)] == f"${{{password_variable(service)}}}"
