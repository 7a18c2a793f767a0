"""Dashboards and alerts ask only for metrics and labels the code exports (libs/common telemetry.py)."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import httpx
import pytest

from .conftest import DEPLOY, REPO, SERVICES, Manifest, Metric, env_of, load_yaml_documents, parse_metrics

DASHBOARDS = sorted((DEPLOY / "grafana/dashboards").glob("*.json"))
PROMQL_KEYWORDS = {
    "by",
    "without",
    "on",
    "ignoring",
    "group_left",
    "group_right",
    "and",
    "or",
    "unless",
    "bool",
    "offset",
}
# Prometheus' own series, and the labels its scrape configuration attaches (pawgle_service by relabelling).
SCRAPE_SERIES = {"up": ("job", "instance", "pawgle_service", "pod")}
# What Caddy (the gateway) exports on GATEWAY_METRICS_PORT, read from Caddy 2.11 and checked against a real
# Caddy run below (test_caddy_exports_the_metrics_the_dashboards_read).
CADDY_METRICS = {
    m.name: m
    for m in (
        Metric("caddy_http_request_duration_seconds", "Histogram", ("server", "handler", "method", "code")),
        Metric("caddy_http_response_duration_seconds", "Histogram", ("server", "handler", "method", "code")),
        Metric("caddy_http_request_size_bytes", "Histogram", ("server", "handler", "method", "code")),
        Metric("caddy_http_response_size_bytes", "Histogram", ("server", "handler", "method", "code")),
        Metric("caddy_http_requests_total", "Counter", ("server", "handler")),
        Metric("caddy_http_requests_in_flight", "Gauge", ("server", "handler")),
        Metric("caddy_reverse_proxy_upstreams_healthy", "Gauge", ("upstream",)),
        Metric("caddy_config_last_reload_successful", "Gauge", ()),
    )
}


def promql_selectors(expr: str) -> tuple[set[str], set[str]]:
    """The metric names and label names a PromQL expression refers to (a small tokenizer, enough for ours)."""
    labels: set[str] = set()
    text = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)
    for clause in re.findall(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\(([^)]*)\)", text):
        labels |= {label.strip() for label in clause.split(",") if label.strip()}
    text = re.sub(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", text)
    for matchers in re.findall(r"\{([^}]*)\}", text):
        labels |= set(re.findall(r"([a-zA-Z_][a-zA-Z0-9_]*)\s*(?:=~|!~|!=|=)", matchers))
    text = re.sub(r"\{[^}]*\}", " ", text)
    text = re.sub(r"\[[^\]]*\]", " ", text)
    text = re.sub(r"\$\w+", " ", text)
    names = set()
    for match in re.finditer(r"(?<![\w.$])([a-zA-Z_:][a-zA-Z0-9_:]*)(?![\w:])(?!\s*\()", text):
        if match.group(1) not in PROMQL_KEYWORDS:
            names.add(match.group(1))
    return names, labels


def _known_series(metrics: dict[str, Metric]) -> dict[str, tuple[str, ...]]:
    """Every series name Prometheus can hold, with the labels it carries."""
    series: dict[str, tuple[str, ...]] = dict(SCRAPE_SERIES)
    for metric in [*metrics.values(), *CADDY_METRICS.values()]:
        extra = ("le",) if metric.kind == "Histogram" else ()
        for name in metric.series_names():
            series[name] = metric.labels + (extra if name.endswith("_bucket") else ())
    return series


def assert_expr_matches_the_code(expr: str, metrics: dict[str, Metric], where: str) -> set[str]:
    names, labels = promql_selectors(expr)
    series = _known_series(metrics)
    unknown = names - set(series)
    assert names, f"{where}: no metric in {expr!r}"
    assert not unknown, f"{where}: {sorted(unknown)} exported neither by telemetry.py nor by Caddy"
    allowed_labels = {label for name in names for label in series[name]} | {"job", "instance"}
    assert labels <= allowed_labels, f"{where}: labels {sorted(labels - allowed_labels)} do not exist on {names}"
    return names


def _dashboard_targets(dashboard: dict[str, Any]) -> list[tuple[str, str]]:
    found = []
    for panel in dashboard["panels"]:
        for inner in [panel, *panel.get("panels", [])]:
            found.extend((inner["title"], t["expr"]) for t in inner.get("targets", []))
    return found


def test_the_metric_parser_reads_telemetry_py(metrics: dict[str, Metric]) -> None:
    assert metrics["pawgle_http_requests_total"] == Metric(
        "pawgle_http_requests_total", "Counter", ("service", "method", "route", "status")
    )
    assert metrics["pawgle_event_handle_duration_seconds"].kind == "Histogram"
    assert parse_metrics('X = Gauge("a_b", "doc", labelnames=["c"])') == {"a_b": Metric("a_b", "Gauge", ("c",))}


def test_the_promql_reader_finds_names_and_labels() -> None:
    names, labels = promql_selectors(
        'histogram_quantile(0.95, sum by (service, le) (rate(x_bucket{service=~"$service", a!="b"}[$__rate_interval])))'
        " / on (service) y_total offset 5m"
    )
    assert names == {"x_bucket", "y_total"}
    assert labels == {"service", "le", "a"}


@pytest.mark.parametrize("path", DASHBOARDS, ids=lambda p: p.name)
def test_dashboards_ask_only_for_exported_metrics_and_labels(path: Path, metrics: dict[str, Metric]) -> None:
    dashboard = json.loads(path.read_text(encoding="utf-8"))
    targets = _dashboard_targets(dashboard)
    assert targets
    for title, expr in targets:
        assert_expr_matches_the_code(expr, metrics, f"{path.name} / {title}")
    for variable in dashboard.get("templating", {}).get("list", []):
        query = variable.get("definition") or ""
        match = re.fullmatch(r"label_values\((\w+),\s*(\w+)\)", query)
        assert match, f"{path.name}: variable {variable['name']} has an unexpected query {query!r}"
        assert match.group(2) in _known_series(metrics)[match.group(1)]


def test_the_mesh_overview_shows_every_exported_metric(
    metrics: dict[str, Metric], own_dashboard_metrics: dict[str, dict[str, Metric]]
) -> None:
    dashboard = json.loads((DEPLOY / "grafana/dashboards/mesh-overview.json").read_text(encoding="utf-8"))
    assert dashboard["title"] == "Mesh overview"
    used = set()
    for _title, expr in _dashboard_targets(dashboard):
        used |= promql_selectors(expr)[0]
    elsewhere = {name for own in own_dashboard_metrics.values() for name in own}
    for metric in metrics.values():
        if metric.name not in elsewhere:
            assert metric.series_names() & used, f"{metric.name} has no panel on the Mesh overview"


def test_a_services_own_dashboard_shows_each_of_its_metrics(
    own_dashboard_metrics: dict[str, dict[str, Metric]],
) -> None:
    for service, own in own_dashboard_metrics.items():
        dashboard = json.loads((DEPLOY / f"grafana/dashboards/{service}.json").read_text(encoding="utf-8"))
        used = set()
        for _title, expr in _dashboard_targets(dashboard):
            used |= promql_selectors(expr)[0]
        for metric in own.values():
            assert metric.series_names() & used, f"{metric.name} has no panel on the {service} dashboard"
    panel_ids = [p["id"] for p in dashboard["panels"]]
    assert len(panel_ids) == len(set(panel_ids))
    assert all(p["gridPos"]["x"] + p["gridPos"]["w"] <= 24 for p in dashboard["panels"])


def test_dashboards_use_the_provisioned_datasource() -> None:
    (datasources,) = load_yaml_documents(DEPLOY / "grafana/provisioning/datasources/prometheus.yml")
    uids = {source["uid"] for source in datasources["datasources"]}
    for path in DASHBOARDS:
        text = path.read_text(encoding="utf-8")
        used = set(re.findall(r'"uid":\s*"([^"]+)"', text)) - {json.loads(text)["uid"]}
        assert used <= uids, f"{path.name} refers to datasources {used - uids}"


def test_grafana_loads_dashboards_from_where_compose_mounts_them(compose: dict[str, Any]) -> None:
    (providers,) = load_yaml_documents(DEPLOY / "grafana/provisioning/dashboards/pawgle.yml")
    (provider,) = providers["providers"]
    mounts = dict(volume.split(":")[:2] for volume in compose["services"]["grafana"]["volumes"])
    assert mounts["./deploy/grafana/dashboards"] == provider["options"]["path"]
    assert mounts["./deploy/grafana/provisioning"] == "/etc/grafana/provisioning"


def _alert_rules() -> list[dict[str, Any]]:
    (config,) = load_yaml_documents(DEPLOY / "prometheus/alerts.yml")
    return [rule for group in config["groups"] for rule in group["rules"]]


def test_alerts_ask_only_for_exported_metrics_and_are_documented(metrics: dict[str, Metric]) -> None:
    rules = _alert_rules()
    assert len({r["alert"] for r in rules}) == len(rules), "alert names must be unique"
    for rule in rules:
        assert_expr_matches_the_code(rule["expr"], metrics, rule["alert"])
        assert rule["labels"]["severity"] in ("warning", "critical")
        assert rule["annotations"]["summary"], rule["alert"]
        assert rule["annotations"]["description"], rule["alert"]
    readme = (DEPLOY / "README.md").read_text(encoding="utf-8")
    missing = [r["alert"] for r in rules if r["alert"] not in readme]
    assert not missing, f"alerts without a runbook entry in deploy/README.md: {missing}"


def test_the_alerts_cover_what_an_operator_must_hear_about(metrics: dict[str, Metric]) -> None:
    exprs = [rule["expr"] for rule in _alert_rules()]

    def watched(name: str, fragment: str = "") -> bool:
        return any(name in promql_selectors(e)[0] and fragment in e for e in exprs)

    assert watched("pawgle_dead_lettered_total"), "dead letters rising"
    assert watched("pawgle_outbox_backlog"), "outbox backlog growing"
    assert watched("pawgle_consumer_pending"), "consumer lag"
    assert watched("pawgle_http_requests_total", 'status=~"5.."'), "5xx ratio"
    assert watched("up", 'job="pawgle"'), "service down"
    assert watched("up", 'job="pawgle-gateway"'), "gateway down (its own scrape job on a cluster)"
    assert watched("caddy_http_request_duration_seconds_count", 'code=~"5.."'), "gateway 5xx ratio"
    assert watched("caddy_http_request_duration_seconds_bucket"), "gateway latency"


def test_the_gateway_row_shows_caddys_request_metrics() -> None:
    dashboard = json.loads((DEPLOY / "grafana/dashboards/mesh-overview.json").read_text(encoding="utf-8"))
    used = set()
    for _title, expr in _dashboard_targets(dashboard):
        names = promql_selectors(expr)[0]
        used |= names
        if any(name.startswith("caddy_http_") for name in names):
            # Caddy counts a request once per handler: without this filter every request counts 4-6 times.
            assert 'handler="rewrite"' in expr, expr
            assert 'server="gateway"' in expr, expr
    wanted = {
        "caddy_http_request_duration_seconds_count",
        "caddy_http_request_duration_seconds_bucket",
        "caddy_http_requests_in_flight",
        "caddy_reverse_proxy_upstreams_healthy",
    }
    assert wanted <= used, sorted(wanted - used)


def _scraped(text: str) -> dict[str, set[str]]:
    """Series name to the label names its samples carry, from a Prometheus text exposition."""
    found: dict[str, set[str]] = {}
    for line in text.splitlines():
        match = re.match(r"([a-zA-Z_:][\w:]*)(?:\{([^}]*)\})?\s", line)
        if match and not line.startswith("#"):
            labels = set(re.findall(r'(\w+)="', match.group(2) or ""))
            found.setdefault(match.group(1), set()).update(labels)
    return found


def _sample_total(text: str, name: str, **labels: str) -> float:
    total = 0.0
    for line in text.splitlines():
        if line.startswith(name + "{") and all(f'{k}="{v}"' in line for k, v in labels.items()):
            total += float(line.rsplit(" ", 1)[1])
    return total


def test_caddy_exports_the_metrics_the_dashboards_read(tmp_path: Path) -> None:
    from pawgle.common.natsserver import free_port
    from pawgle.gateway.config import Settings
    from pawgle.gateway.edge import caddy_process
    from pawgle.gateway.routes import SERVICES as ROUTED

    closed = f"http://127.0.0.1:{free_port()}"
    port, metrics_port = free_port(), free_port()
    settings = Settings(
        environment="test", data_dir=tmp_path, metrics_port=metrics_port, **{f"{s}_url": closed for s in ROUTED}
    )
    with caddy_process(settings, host="127.0.0.1", port=port, sidecar_url=closed, config_dir=tmp_path / "caddy"):
        paths = ["/healthz", "/api/auth/token/", "//api/pets/x/", "/nowhere"]
        for path in paths:
            httpx.get(f"http://127.0.0.1:{port}{path}", timeout=10)
        httpx.options(f"http://127.0.0.1:{port}/api/auth/token/", timeout=10)
        text = httpx.get(f"http://127.0.0.1:{metrics_port}/metrics", timeout=10).text
    scraped = _scraped(text)
    for metric in CADDY_METRICS.values():
        for name in metric.series_names():
            assert name in scraped, f"Caddy does not export {name}"
            extra = {"le"} if name.endswith("_bucket") else set()
            assert scraped[name] == set(metric.labels) | extra, f"{name}: Caddy labels are {sorted(scraped[name])}"
    # handler="rewrite" counts each request exactly once, whatever route answered it (the dashboards rely on it).
    rewrite = {"server": "gateway", "handler": "rewrite"}
    assert _sample_total(text, "caddy_http_requests_total", **rewrite) == len(paths) + 1
    assert _sample_total(text, "caddy_http_request_duration_seconds_count", **rewrite) == len(paths) + 1


def test_the_cluster_scrape_config_keeps_the_mesh_and_names_the_service() -> None:
    (config,) = load_yaml_documents(DEPLOY / "prometheus/prometheus-k8s.yml")
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    assert {"pawgle", "nats"} <= set(jobs)
    relabels = jobs["pawgle"]["relabel_configs"]
    assert any(r.get("target_label") == "pawgle_service" for r in relabels)
    keep = [r for r in relabels if r.get("action") == "keep"]
    assert any(r["regex"] == "pawgle" for r in keep)
    gateway = jobs["pawgle-gateway"]["relabel_configs"]
    assert {"role": "pod", "namespaces": {"names": ["pawgle"]}} in jobs["pawgle-gateway"]["kubernetes_sd_configs"]
    kept = {(r["source_labels"][0], r["regex"]) for r in gateway if r.get("action") == "keep"}
    assert ("__meta_kubernetes_pod_container_port_name", "metrics") in kept
    assert ("__meta_kubernetes_pod_label_app_kubernetes_io_name", "gateway") in kept
    assert any(r.get("target_label") == "pawgle_service" for r in gateway)
    services_yaml = (REPO / "deploy/k8s/services").glob("*.yaml")
    part_of = [p for p in services_yaml if "app.kubernetes.io/part-of: pawgle" in p.read_text(encoding="utf-8")]
    assert len(part_of) == len(SERVICES)


def test_prometheus_scrapes_the_gateways_metrics_port(
    by_kind: dict[tuple[str, str], Manifest], compose: dict[str, Any]
) -> None:
    pod = by_kind[("Deployment", "gateway")].doc["spec"]["template"]
    (container,) = (c for c in pod["spec"]["containers"] if c["name"] == "gateway")
    port = env_of(container)["GATEWAY_METRICS_PORT"]["value"]
    ports = {p["name"]: str(p["containerPort"]) for p in container["ports"]}
    assert ports["metrics"] == port  # the name the pawgle-gateway job keeps
    assert pod["metadata"]["annotations"]["prometheus.io/port"] == port
    assert str(compose["services"]["gateway"]["environment"]["GATEWAY_METRICS_PORT"]) == port
    (config,) = load_yaml_documents(DEPLOY / "prometheus/prometheus.yml")
    (job,) = (j for j in config["scrape_configs"] if j["job_name"] == "pawgle")
    targets = {t for group in job["static_configs"] for t in group["targets"]}
    assert f"gateway:{port}" in targets
