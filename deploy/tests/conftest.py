"""Shared loaders for the deployment tests: the repository's services, manifests, compose file and metrics."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
DEPLOY = REPO / "deploy"
K8S = DEPLOY / "k8s"
TELEMETRY = REPO / "libs/common/src/pawgle/common/telemetry.py"
# Metrics defined beside what they count (the photo pipeline's stored and rejected uploads).
OTHER_METRICS = (
    REPO / "libs/common/src/pawgle/common/photos/pipeline.py",
    REPO / "libs/common/src/pawgle/common/fastpath.py",
    REPO / "services/embeddings/src/pawgle/embeddings/metrics.py",
    REPO / "services/reports/src/pawgle/reports/metrics.py",
    REPO / "services/chat/src/pawgle/chat/metrics.py",
    REPO / "services/matcher/src/pawgle/matcher/metrics.py",
)

SERVICES = ("auth", "pets", "reports", "chat", "embeddings", "matcher", "notifier", "gateway")
# Every service but the gateway owns a database and migrates it.
DB_SERVICES = tuple(s for s in SERVICES if s != "gateway")
# The services that store photos or attachments.
S3_SERVICES = ("pets", "reports", "chat", "embeddings")


@dataclass(frozen=True)
class Metric:
    name: str
    kind: str
    labels: tuple[str, ...]

    def series_names(self) -> set[str]:
        """The names Prometheus stores for this metric (histograms expose _bucket, _sum and _count)."""
        if self.kind == "Histogram":
            return {f"{self.name}_bucket", f"{self.name}_sum", f"{self.name}_count"}
        if self.kind == "Counter" and not self.name.endswith("_total"):
            return {f"{self.name}_total"}
        return {self.name}


def load_yaml_documents(path: Path) -> list[Any]:
    with path.open(encoding="utf-8") as handle:
        return [doc for doc in yaml.safe_load_all(handle) if doc is not None]


def parse_metrics(source: str) -> dict[str, Metric]:
    """Every prometheus_client metric a module declares, read from its syntax tree (no import needed)."""
    metrics: dict[str, Metric] = {}
    for node in ast.walk(ast.parse(source)):
        if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Name)):
            continue
        if node.func.id not in ("Counter", "Gauge", "Histogram", "Summary") or not node.args:
            continue
        name = node.args[0]
        if not (isinstance(name, ast.Constant) and isinstance(name.value, str)):
            continue
        label_node = node.args[2] if len(node.args) > 2 else None
        for keyword in node.keywords:
            if keyword.arg == "labelnames":
                label_node = keyword.value
        labels: tuple[str, ...] = ()
        if isinstance(label_node, ast.List | ast.Tuple):
            labels = tuple(e.value for e in label_node.elts if isinstance(e, ast.Constant))
        metrics[name.value] = Metric(name.value, node.func.id, labels)
    return metrics


@pytest.fixture(scope="session")
def metrics() -> dict[str, Metric]:
    found = parse_metrics(TELEMETRY.read_text(encoding="utf-8"))
    for source in OTHER_METRICS:
        found.update(parse_metrics(source.read_text(encoding="utf-8")))
    assert found, f"no metrics found in {TELEMETRY}"
    return found


@dataclass(frozen=True)
class Manifest:
    path: Path
    doc: dict[str, Any]

    @property
    def kind(self) -> str:
        return str(self.doc["kind"])

    @property
    def name(self) -> str:
        return str(self.doc["metadata"]["name"])


def _k8s_manifests() -> list[Manifest]:
    manifests: list[Manifest] = []
    for path in sorted(K8S.rglob("*.yaml")):
        if path.name == "kustomization.yaml" or "charts" in path.relative_to(K8S).parts:
            continue
        manifests.extend(Manifest(path, doc) for doc in load_yaml_documents(path))
    return manifests


@pytest.fixture(scope="session")
def manifests() -> list[Manifest]:
    return _k8s_manifests()


@pytest.fixture(scope="session")
def by_kind(manifests: list[Manifest]) -> dict[tuple[str, str], Manifest]:
    index: dict[tuple[str, str], Manifest] = {}
    for manifest in manifests:
        key = (manifest.kind, manifest.name)
        assert key not in index, f"{manifest.kind}/{manifest.name} is defined twice ({manifest.path})"
        index[key] = manifest
    return index


@pytest.fixture(scope="session")
def compose() -> dict[str, Any]:
    (doc,) = load_yaml_documents(REPO / "docker-compose.yml")
    return doc  # type: ignore[no-any-return]


def containers_of(pod_spec: dict[str, Any]) -> Iterator[dict[str, Any]]:
    yield from pod_spec.get("initContainers", [])
    yield from pod_spec["containers"]


def env_of(container: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """A container's env entries by name."""
    return {entry["name"]: entry for entry in container.get("env", [])}
