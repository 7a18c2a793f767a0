"""The Kubernetes manifests: each service deployed, probed, limited, scaled and locked down on its own."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from pawgle.common.busauth import PUBLISHES, password_variable, user_permissions
from pawgle.gateway.ingress import ingress_paths
from pawgle.gateway.routes import ROUTE_TABLE, RouteTable

from .conftest import (
    DB_SERVICES,
    K8S,
    REPO,
    S3_SERVICES,
    SERVICES,
    Manifest,
    containers_of,
    env_of,
    load_yaml_documents,
)

# Env var names whose value is a credential: they must come from a Secret, never be written down.
SECRET_NAME = re.compile(r"PASSWORD|SECRET|TOKEN|API_KEY|ACCESS_KEY|PRIVATE|DATABASE_URL|SIGNING_KEY$")


def _deployment(by_kind: dict[tuple[str, str], Manifest], name: str) -> dict[str, Any]:
    return by_kind[("Deployment", name)].doc


def _pod_templates(manifests: list[Manifest]) -> list[tuple[Manifest, dict[str, Any]]]:
    return [(m, m.doc["spec"]["template"]) for m in manifests if m.kind in ("Deployment", "Job")]


def _quantity(value: str | int | float) -> float:
    """A Kubernetes CPU or memory quantity as a number (cores or bytes)."""
    text = str(value)
    units = {"m": 1e-3, "Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "k": 1e3, "M": 1e6, "G": 1e9}
    for suffix, factor in sorted(units.items(), key=lambda item: -len(item[0])):
        if text.endswith(suffix):
            return float(text[: -len(suffix)]) * factor
    return float(text)


def test_the_service_list_matches_the_repository() -> None:
    on_disk = {p.parent.name for p in (REPO / "services").glob("*/pyproject.toml")}
    assert on_disk == set(SERVICES), "a service was added or removed: deploy it (deploy/k8s, docker-compose.yml)"


@pytest.mark.parametrize("service", SERVICES)
def test_every_service_has_its_own_workload_objects(by_kind: dict[tuple[str, str], Manifest], service: str) -> None:
    for kind in ("ServiceAccount", "Deployment", "Service", "HorizontalPodAutoscaler", "PodDisruptionBudget"):
        assert (kind, service) in by_kind, f"{service} has no {kind}"
    deployment = _deployment(by_kind, service)
    pod_labels = deployment["spec"]["template"]["metadata"]["labels"]
    selector = deployment["spec"]["selector"]["matchLabels"]
    assert selector.items() <= pod_labels.items()
    assert by_kind[("Service", service)].doc["spec"]["selector"] == selector
    assert by_kind[("PodDisruptionBudget", service)].doc["spec"]["selector"]["matchLabels"] == selector
    assert deployment["spec"]["template"]["spec"]["serviceAccountName"] == service
    assert "replicas" not in deployment["spec"], "the HorizontalPodAutoscaler owns the replica count"

    hpa = by_kind[("HorizontalPodAutoscaler", service)].doc["spec"]
    assert hpa["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment", "name": service}
    assert 2 <= hpa["minReplicas"] < hpa["maxReplicas"]
    assert hpa["metrics"], "autoscaling needs a metric"
    pdb = by_kind[("PodDisruptionBudget", service)].doc["spec"]
    assert pdb.get("minAvailable", 0) < hpa["minReplicas"], "a PDB as large as the minimum would block every drain"


@pytest.mark.parametrize("service", SERVICES)
def test_every_service_listens_on_8080_behind_a_service_of_its_name(
    by_kind: dict[tuple[str, str], Manifest], service: str
) -> None:
    (container,) = _deployment(by_kind, service)["spec"]["template"]["spec"]["containers"]
    assert {"name": "http", "containerPort": 8080, "protocol": "TCP"} in container["ports"]
    (port,) = by_kind[("Service", service)].doc["spec"]["ports"]
    assert port["port"] == 8080
    assert port["targetPort"] == "http"
    assert port["name"] == "http"


@pytest.mark.parametrize("service", SERVICES)
def test_every_service_is_probed_for_liveness_and_readiness(
    by_kind: dict[tuple[str, str], Manifest], service: str
) -> None:
    (container,) = _deployment(by_kind, service)["spec"]["template"]["spec"]["containers"]
    # The gateway's /healthz aggregates every other service: a liveness probe there would restart
    # the gateway whenever anything behind it is down, so it probes its own /readyz.
    expected_liveness = "/readyz" if service == "gateway" else "/healthz"
    assert container["livenessProbe"]["httpGet"] == {"path": expected_liveness, "port": "http"}
    assert container["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "http"}
    assert container["startupProbe"]["httpGet"]["path"] == expected_liveness


def test_every_container_has_requests_and_limits(manifests: list[Manifest]) -> None:
    checked = 0
    for manifest, template in _pod_templates(manifests):
        for container in containers_of(template["spec"]):
            resources = container.get("resources", {})
            for resource in ("cpu", "memory"):
                request = resources.get("requests", {}).get(resource)
                limit = resources.get("limits", {}).get(resource)
                where = f"{manifest.path.name}: {manifest.name}/{container['name']} {resource}"
                assert request is not None, f"{where}: needs a request"
                assert limit is not None, f"{where}: needs a limit"
                assert _quantity(request) <= _quantity(limit), f"{where}: request above limit"
            checked += 1
    assert checked == len(SERVICES) + len(DB_SERVICES)


def test_every_pod_runs_non_root_read_only_and_unprivileged(manifests: list[Manifest]) -> None:
    templates = _pod_templates(manifests)
    assert len(templates) == len(SERVICES) + len(DB_SERVICES)
    for manifest, template in templates:
        spec = template["spec"]
        where = f"{manifest.kind}/{manifest.name}"
        pod = spec["securityContext"]
        assert pod["runAsNonRoot"] is True, where
        assert pod["runAsUser"] != 0, where
        assert pod["seccompProfile"] == {"type": "RuntimeDefault"}, where
        assert spec["automountServiceAccountToken"] is False, where
        assert not spec.get("hostNetwork"), where
        assert not spec.get("hostPID"), where
        empty_dirs = {v["name"] for v in spec["volumes"] if "emptyDir" in v}
        for container in containers_of(spec):
            security = container["securityContext"]
            assert security["allowPrivilegeEscalation"] is False, where
            assert security["readOnlyRootFilesystem"] is True, where
            assert security.get("privileged", False) is False, where
            assert security["capabilities"]["drop"] == ["ALL"], where
            assert not security["capabilities"].get("add"), where
            tmp = [m for m in container["volumeMounts"] if m["mountPath"] == "/tmp"]
            assert tmp, f"{where}: /tmp must be mounted (the root filesystem is read-only)"
            assert tmp[0]["name"] in empty_dirs, f"{where}: /tmp must be an emptyDir"


def test_no_manifest_carries_a_secret_value(manifests: list[Manifest]) -> None:
    assert not [m for m in manifests if m.kind == "Secret"], "Secrets are created out of band (README), never in git"
    for manifest in manifests:
        if manifest.kind == "ConfigMap":
            leaked = [key for key in manifest.doc.get("data", {}) if SECRET_NAME.search(key)]
            assert not leaked, f"{manifest.name} holds credentials {leaked}: use a Secret reference"
    for manifest, template in _pod_templates(manifests):
        for container in containers_of(template["spec"]):
            for name, entry in env_of(container).items():
                if SECRET_NAME.search(name) and not name.endswith("_FILE"):
                    assert "value" not in entry, f"{manifest.name}: {name} is written inline"
                    assert "secretKeyRef" in entry["valueFrom"], f"{manifest.name}: {name} must come from a Secret"
    text = "\n".join(p.read_text(encoding="utf-8") for p in K8S.rglob("*.yaml"))
    # A password comes in only as a reference to a variable set from a Secret: `nats://auth:$(NATS_PASSWORD)@...`.
    assert not re.search(r"://[^/\s:@]+:(?!\$\([A-Z_]+\)@)[^/\s@]+@", text), "a URL with a password in the manifests"


def test_deployments_never_migrate_and_read_the_mesh_settings(by_kind: dict[tuple[str, str], Manifest]) -> None:
    for service in SERVICES:
        (container,) = _deployment(by_kind, service)["spec"]["template"]["spec"]["containers"]
        assert env_of(container)["PAWGLE_AUTO_MIGRATE"]["value"] == "false"
        assert {"configMapRef": {"name": "pawgle-mesh"}} in container["envFrom"]


def test_the_mesh_settings_are_production_ones(by_kind: dict[tuple[str, str], Manifest]) -> None:
    data = by_kind[("ConfigMap", "pawgle-mesh")].doc["data"]
    assert data["PAWGLE_ENVIRONMENT"] == "production"
    assert data["PAWGLE_STREAM_REPLICAS"] == "3"
    assert data["PAWGLE_LOG_FORMAT"] == "json"
    assert data["PAWGLE_JWKS_URL"] == "http://auth:8080/api/auth/jwks/"
    assert data["PAWGLE_NATS_URL"].startswith("nats://")
    for key in ("PAWGLE_FRONTEND_ORIGIN", "PAWGLE_PUBLIC_BASE_URL"):
        assert data[key].startswith("https://"), f"{key}: production is served over HTTPS (Secure cookies)"
    for key in ("PAWGLE_JWT_ISSUER", "PAWGLE_JWT_AUDIENCE", "PAWGLE_OTLP_ENDPOINT", "PAWGLE_S3_BUCKET"):
        assert data.get(key), f"{key} is missing"
    assert all(isinstance(value, str) for value in data.values()), "ConfigMap values must be strings"


@pytest.mark.parametrize("service", DB_SERVICES)
def test_each_database_url_comes_from_the_services_own_secret(
    by_kind: dict[tuple[str, str], Manifest], service: str
) -> None:
    (container,) = _deployment(by_kind, service)["spec"]["template"]["spec"]["containers"]
    ref = env_of(container)[f"{service.upper()}_DATABASE_URL"]["valueFrom"]["secretKeyRef"]
    assert ref == {"name": f"pawgle-db-{service}", "key": "url"}


def test_service_specific_settings_are_wired(by_kind: dict[tuple[str, str], Manifest]) -> None:
    def env(service: str) -> dict[str, dict[str, Any]]:
        (container,) = _deployment(by_kind, service)["spec"]["template"]["spec"]["containers"]
        return env_of(container)

    for service in S3_SERVICES:
        for name in ("PAWGLE_S3_ACCESS_KEY_ID", "PAWGLE_S3_SECRET_ACCESS_KEY"):
            assert env(service)[name]["valueFrom"]["secretKeyRef"]["name"] == "pawgle-s3", service
    assert env("notifier")["NOTIFIER_RESEND_API_KEY"]["valueFrom"]["secretKeyRef"]["name"] == "pawgle-notifier"
    assert env("embeddings")["EMBEDDINGS_QDRANT_URL"]["value"].startswith("http://qdrant.")
    assert env("auth")["AUTH_REFRESH_SECRET"]["valueFrom"]["secretKeyRef"]["name"] == "pawgle-auth-keys"
    gateway = env("gateway")
    for upstream in DB_SERVICES:
        assert gateway[f"PAWGLE_{upstream.upper()}_URL"]["value"] == f"http://{upstream}:8080"


def test_auths_signing_key_file_is_inside_the_mounted_secret(by_kind: dict[tuple[str, str], Manifest]) -> None:
    for kind, name in (("Deployment", "auth"), ("Job", "auth-migrate")):
        spec = by_kind[(kind, name)].doc["spec"]["template"]["spec"]
        (container,) = spec["containers"]
        key_file = Path(env_of(container)["AUTH_SIGNING_KEY_FILE"]["value"])
        secret_volumes = {v["name"]: v["secret"]["secretName"] for v in spec["volumes"] if "secret" in v}
        mounts = [m for m in container["volumeMounts"] if m["name"] in secret_volumes]
        holders = [m for m in mounts if key_file.parent == Path(m["mountPath"])]
        assert holders, f"{name}: {key_file} is not in a mounted Secret"
        assert holders[0].get("readOnly") is True
        assert secret_volumes[holders[0]["name"]] == "pawgle-auth-keys"


def test_every_config_reference_resolves(manifests: list[Manifest], by_kind: dict[tuple[str, str], Manifest]) -> None:
    readme = (K8S / "README.md").read_text(encoding="utf-8")
    for manifest, template in _pod_templates(manifests):
        for container in containers_of(template["spec"]):
            for source in container.get("envFrom", []):
                assert ("ConfigMap", source["configMapRef"]["name"]) in by_kind
            for entry in container.get("env", []):
                ref = entry.get("valueFrom", {})
                if "configMapKeyRef" in ref:
                    config = by_kind[("ConfigMap", ref["configMapKeyRef"]["name"])].doc["data"]
                    assert ref["configMapKeyRef"]["key"] in config, f"{manifest.name}: {entry['name']}"
                if "secretKeyRef" in ref:
                    # The operator creates Secrets from the README: every referenced one must be documented there.
                    name = re.sub(r"^pawgle-db-[a-z]+$", "pawgle-db-<service>", ref["secretKeyRef"]["name"])
                    assert name in readme, f"{ref['secretKeyRef']['name']} is not in the README"
                    assert ref["secretKeyRef"]["key"] in readme, f"key {ref['secretKeyRef']['key']} not in the README"


@pytest.mark.parametrize("service", DB_SERVICES)
def test_each_database_service_has_a_migration_job(by_kind: dict[tuple[str, str], Manifest], service: str) -> None:
    job = by_kind[("Job", f"{service}-migrate")].doc
    spec = job["spec"]["template"]["spec"]
    (container,) = spec["containers"]
    (deployed,) = _deployment(by_kind, service)["spec"]["template"]["spec"]["containers"]
    assert container["command"] == ["pawgle-ops", service, "migrate"]
    assert container["image"] == deployed["image"]
    assert spec["restartPolicy"] == "Never"
    assert job["spec"]["backoffLimit"] >= 1
    # The command loads the service's settings: it needs the same database and secrets as the Deployment.
    # (The bus password and the edge secret are not needed to migrate a database.)
    secret_refs = {
        n: e["valueFrom"]
        for n, e in env_of(deployed).items()
        if "secretKeyRef" in e.get("valueFrom", {}) and n not in ("NATS_PASSWORD", "PAWGLE_EDGE_SECRET")
    }
    assert secret_refs.items() <= {n: e.get("valueFrom") for n, e in env_of(container).items()}.items()
    # Its pods must not join the service's Service or count towards its disruption budget.
    selector = _deployment(by_kind, service)["spec"]["selector"]["matchLabels"]
    assert not selector.items() <= job["spec"]["template"]["metadata"]["labels"].items()


def test_the_ingress_exposes_only_the_gateway_over_tls(manifests: list[Manifest]) -> None:
    (ingress,) = [m.doc for m in manifests if m.kind == "Ingress"]
    backends = [p["backend"]["service"] for rule in ingress["spec"]["rules"] for p in rule["http"]["paths"]]
    assert backends
    assert all(backend == {"name": "gateway", "port": {"name": "http"}} for backend in backends)
    hosts = {rule["host"] for rule in ingress["spec"]["rules"]}
    assert hosts <= {h for tls in ingress["spec"]["tls"] for h in tls["hosts"]}


def test_the_ingress_routes_exactly_the_route_table_and_media(manifests: list[Manifest]) -> None:
    (ingress,) = [m.doc for m in manifests if m.kind == "Ingress"]
    paths = sorted((p["path"], p["pathType"]) for rule in ingress["spec"]["rules"] for p in rule["http"]["paths"])
    assert paths == ingress_paths(), "regenerate the paths: python -m pawgle.gateway.ingress"
    table = RouteTable()
    for template, service in ROUTE_TABLE:
        assert table.resolve(template.replace("{id}", "5").replace("{animal_id}", "a").replace("/**", "/x/"))
        assert any(_ingress_matches(paths, template.split("{")[0].replace("**", "x")) for _ in [service])
    for internal in ("/healthz", "/readyz", "/metrics", "/api/auth/metrics", "/"):
        assert not _ingress_matches(paths, internal), f"{internal} must not be public"


def _ingress_matches(paths: list[tuple[str, str]], request_path: str) -> bool:
    for path, kind in paths:
        if kind == "Exact" and request_path == path:
            return True
        if kind == "Prefix":
            prefix = path.rstrip("/")
            if request_path.rstrip("/") == prefix or request_path.startswith(prefix + "/"):
                return True
    return False


def _kustomization(directory: Path) -> dict[str, Any]:
    (doc,) = load_yaml_documents(directory / "kustomization.yaml")
    return doc  # type: ignore[no-any-return]


def _listed_files(directory: Path) -> set[Path]:
    files: set[Path] = set()
    for resource in _kustomization(directory)["resources"]:
        target = (directory / resource).resolve()
        assert target.exists(), f"{directory / 'kustomization.yaml'} lists {resource}, which does not exist"
        files |= _listed_files(target) if target.is_dir() else {target}
    return files


def test_kustomizations_list_every_manifest_and_nothing_missing() -> None:
    listed = _listed_files(K8S) | _listed_files(K8S / "migrations")
    on_disk = {
        p.resolve()
        for p in K8S.rglob("*.yaml")
        if p.name != "kustomization.yaml" and "charts" not in p.relative_to(K8S).parts
    }
    assert on_disk == listed, f"not tied in: {sorted(map(str, on_disk - listed))}"


def test_both_kustomizations_pin_the_same_image_tags(manifests: list[Manifest]) -> None:
    main = {i["name"]: i["newTag"] for i in _kustomization(K8S)["images"]}
    migrations = {i["name"]: i["newTag"] for i in _kustomization(K8S / "migrations")["images"]}
    assert set(main) == {f"pawgle/{s}" for s in SERVICES}
    assert migrations == {name: tag for name, tag in main.items() if name != "pawgle/gateway"}
    used = {c["image"].split(":")[0] for _, t in _pod_templates(manifests) for c in containers_of(t["spec"])}
    assert used == set(main)


@pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl is not installed")
@pytest.mark.parametrize("directory", [K8S, K8S / "migrations"], ids=["services", "migrations"])
def test_kustomize_renders_into_the_pawgle_namespace(directory: Path) -> None:
    rendered = subprocess.run(
        ["kubectl", "kustomize", str(directory)], capture_output=True, text=True, timeout=60, check=False
    )
    assert rendered.returncode == 0, rendered.stderr
    docs = [d for d in yaml.safe_load_all(rendered.stdout) if d]
    namespaced = [d for d in docs if d["kind"] != "Namespace"]
    assert namespaced
    assert all(d["metadata"]["namespace"] == "pawgle" for d in namespaced)


def test_only_the_gateway_is_open_to_the_ingress_controller(manifests: list[Manifest]) -> None:
    policies = {m.name: m.doc["spec"] for m in manifests if m.kind == "NetworkPolicy"}
    denies = [p for p in policies.values() if p["podSelector"] == {} and not p.get("ingress")]
    assert denies, "no default-deny ingress policy"
    from_ingress = [
        p
        for p in policies.values()
        for rule in p.get("ingress", [])
        for peer in rule["from"]
        if "ingress" in str(peer.get("namespaceSelector", {}))
    ]
    assert [p["podSelector"]["matchLabels"]["app.kubernetes.io/name"] for p in from_ingress] == ["gateway"]


@pytest.mark.parametrize("service", SERVICES)
def test_shutdown_fits_in_the_grace_period(by_kind: dict[tuple[str, str], Manifest], service: str) -> None:
    spec = _deployment(by_kind, service)["spec"]["template"]["spec"]
    (container,) = spec["containers"]
    pre_stop = int(container["lifecycle"]["preStop"]["exec"]["command"][-1])
    dockerfile = (REPO / "Dockerfile").read_text(encoding="utf-8")
    drain = int(re.search(r"UVICORN_TIMEOUT_GRACEFUL_SHUTDOWN=(\d+)", dockerfile).group(1))
    # Past the grace period the kubelet kills the pod: requests in flight and the bus drain would be cut.
    assert pre_stop + drain < spec["terminationGracePeriodSeconds"]


def test_the_nats_chart_has_one_user_per_service_as_generated() -> None:
    (values,) = load_yaml_documents(K8S / "charts/nats-values.yaml")
    users = {user["user"]: user for user in values["config"]["merge"]["authorization"]["users"]}
    assert set(users) == set(PUBLISHES)
    for service, user in users.items():
        assert user["permissions"] == user_permissions(service), f"regenerate {service}'s permissions from busauth"
        variable = password_variable(service)
        assert user["password"] == f"<< ${variable} >>"
        assert values["container"]["env"][variable]["valueFrom"]["secretKeyRef"] == {
            "name": "pawgle-nats-users",
            "key": service,
        }


@pytest.mark.parametrize("service", DB_SERVICES)
def test_each_service_connects_as_its_own_bus_user(by_kind: dict[tuple[str, str], Manifest], service: str) -> None:
    (container,) = _deployment(by_kind, service)["spec"]["template"]["spec"]["containers"]
    env = env_of(container)
    names = list(env)
    assert names.index("NATS_PASSWORD") < names.index("PAWGLE_NATS_URL"), "$(NATS_PASSWORD) must be defined first"
    assert env["NATS_PASSWORD"]["valueFrom"]["secretKeyRef"] == {"name": "pawgle-nats-users", "key": service}
    assert env["PAWGLE_NATS_URL"]["value"] == f"nats://{service}:$(NATS_PASSWORD)@nats.nats.svc.cluster.local:4222"
    assert env["PAWGLE_EDGE_SECRET"]["valueFrom"]["secretKeyRef"] == {"name": "pawgle-edge", "key": "edge-secret"}
