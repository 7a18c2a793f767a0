"""The env the deployments give each service is what its real Settings class reads and accepts in production."""

from __future__ import annotations

import importlib
import re
from pathlib import Path
from typing import Any

import pytest

from .conftest import DB_SERVICES, SERVICES, Manifest, env_of

PREFIXES = {service: f"{service.upper()}_" for service in SERVICES}


def _fake_secret(key: str, service: str, data_dir: Path) -> str:
    """A stand-in for each Secret key the manifests reference (the real ones never leave the cluster)."""
    values = {
        "url": f"sqlite:///{data_dir / f'{service}.sqlite3'}",
        "refresh-secret": "r" * 48,
        "access-key-id": "test-access-key",
        "secret-access-key": "s" * 40,
        "resend-api-key": "re_test_key",
        "forward-secret": "f" * 32,
        "edge-secret": "e" * 64,
        "stream-ticket-secret": "t" * 48,
        "api-key": "q" * 64,  # pawgle-qdrant
        service: "bus-password",  # pawgle-nats-users: one key per service
    }
    return values[key]


def _k8s_env(by_kind: dict[tuple[str, str], Manifest], kind: str, name: str, service: str, data_dir: Path):
    (container,) = by_kind[(kind, name)].doc["spec"]["template"]["spec"]["containers"]
    env: dict[str, str] = {}
    for source in container.get("envFrom", []):
        env.update(by_kind[("ConfigMap", source["configMapRef"]["name"])].doc["data"])
    for var, entry in env_of(container).items():
        if "value" in entry:
            env[var] = entry["value"]
            continue
        ref = entry["valueFrom"]
        if "configMapKeyRef" in ref:
            env[var] = by_kind[("ConfigMap", ref["configMapKeyRef"]["name"])].doc["data"][ref["configMapKeyRef"]["key"]]
        else:
            env[var] = _fake_secret(ref["secretKeyRef"]["key"], service, data_dir)
    return env


def _compose_env(compose: dict[str, Any], service: str, data_dir: Path) -> dict[str, str]:
    """The container's env with .env's variables filled in as an operator would."""

    def fill(match: re.Match[str]) -> str:
        return "x" * 40 if match.group(1) in ("AUTH_REFRESH_SECRET", "NOTIFIER_FORWARD_SECRET") else "pw"

    env = {
        k: re.sub(r"\$\{([A-Z0-9_]+)[^}]*\}", fill, str(v))
        for k, v in compose["services"][service]["environment"].items()
    }
    if service in DB_SERVICES:
        # The MySQL host only exists inside compose; the settings only need a URL they can parse.
        env[f"{service.upper()}_DATABASE_URL"] = f"sqlite:///{data_dir / f'{service}.sqlite3'}"
    return env


def _settings(monkeypatch: pytest.MonkeyPatch, service: str, env: dict[str, str]) -> Any:
    import os

    for var in list(os.environ):
        if var.startswith(("PAWGLE_", *PREFIXES.values())) and not var.startswith("PAWGLE_TEST_"):
            monkeypatch.delenv(var)
    for var, value in env.items():
        monkeypatch.setenv(var, value)
    config = importlib.import_module(f"pawgle.{service}.config")
    return config.Settings()


def _assert_every_variable_is_read(service: str, env: dict[str, str], settings: Any) -> None:
    """A misspelt variable is silently ignored by the settings: catch it here."""
    from pawgle.common.config import S3Settings, ServiceSettings

    mesh_fields = {name.upper() for name in ServiceSettings.model_fields}
    # The blob store's settings: ServiceSettings.s3 (env prefix PAWGLE_S3_).
    read_by_blobs = {f"PAWGLE_S3_{name.upper()}" for name in S3Settings.model_fields}
    upstreams = {f"PAWGLE_{s.upper()}_URL" for s in SERVICES if s != "gateway"}
    own_fields = {name.upper() for name in type(settings).model_fields}
    for var in env:
        if var.startswith(PREFIXES[service]):
            assert var.removeprefix(PREFIXES[service]) in own_fields, f"{service}: {var} is not a setting"
        elif var.startswith("PAWGLE_"):
            known = var.removeprefix("PAWGLE_") in mesh_fields or var in read_by_blobs or var in upstreams
            assert known, f"{service}: {var} is read by nobody"


def _assert_production_settings(service: str, settings: Any, env: dict[str, str]) -> None:
    assert settings.is_production
    assert settings.auto_migrate is False
    assert settings.log_format == "json"
    assert settings.jwks_url == "http://auth:8080/api/auth/jwks/"
    assert settings.stream_replicas == int(env["PAWGLE_STREAM_REPLICAS"])
    if service in DB_SERVICES:
        assert settings.db_url == env[f"{service.upper()}_DATABASE_URL"]
    if service == "gateway":
        assert settings.service_urls == {s: f"http://{s}:8080" for s in DB_SERVICES}
    if service == "auth":
        assert settings.signing_key_file == Path("/var/run/secrets/pawgle/auth/signing-key.pem")
        assert settings.secure_cookies
    if service == "embeddings":
        assert settings.qdrant_url == env["EMBEDDINGS_QDRANT_URL"]
        assert settings.qdrant_api_key is not None


@pytest.mark.parametrize("service", SERVICES)
def test_the_cluster_env_is_read_and_accepted_by_the_service(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, by_kind: dict[tuple[str, str], Manifest], service: str
) -> None:
    env = _k8s_env(by_kind, "Deployment", service, service, tmp_path)
    settings = _settings(monkeypatch, service, env)
    _assert_every_variable_is_read(service, env, settings)
    _assert_production_settings(service, settings, env)


@pytest.mark.parametrize("service", DB_SERVICES)
def test_the_migration_job_env_is_accepted_by_the_service(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, by_kind: dict[tuple[str, str], Manifest], service: str
) -> None:
    env = _k8s_env(by_kind, "Job", f"{service}-migrate", service, tmp_path)
    settings = _settings(monkeypatch, service, env)
    _assert_every_variable_is_read(service, env, settings)
    assert settings.db_url == env[f"{service.upper()}_DATABASE_URL"]


@pytest.mark.parametrize("service", SERVICES)
def test_the_compose_env_is_read_and_accepted_by_the_service(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, compose: dict[str, Any], service: str
) -> None:
    env = _compose_env(compose, service, tmp_path)
    settings = _settings(monkeypatch, service, env)
    _assert_every_variable_is_read(service, env, settings)
    _assert_production_settings(service, settings, env)


def test_a_misspelt_variable_is_caught(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, compose: dict[str, Any]
) -> None:
    env = {**_compose_env(compose, "pets", tmp_path), "PETS_DATABSE_URL": "sqlite://"}
    settings = _settings(monkeypatch, "pets", env)
    with pytest.raises(AssertionError, match="PETS_DATABSE_URL"):
        _assert_every_variable_is_read("pets", env, settings)
