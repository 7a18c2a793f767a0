"""The Caddy configuration generated from the route table: valid for the pinned binary, one route per owner."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

from pydantic import SecretStr

from pawgle.gateway.caddy import caddy_binary, caddy_config, greater_than_pattern, service_path_patterns
from pawgle.gateway.config import Settings
from pawgle.gateway.routes import ROUTE_TABLE, RouteTable

from .test_routes import CONTRACT_PATHS


def test_the_pinned_caddy_is_the_one_that_runs() -> None:
    version = subprocess.run([caddy_binary(), "version"], capture_output=True, text=True, check=True).stdout
    assert version.startswith("v2.11.7")


def test_the_generated_configuration_is_valid_for_caddy(tmp_path: Path) -> None:
    settings = Settings(
        environment="test",
        data_dir=tmp_path,
        trusted_proxies="10.0.0.0/8",
        edge_secret=SecretStr("s3cret"),
    )
    config = caddy_config(
        settings, listen="127.0.0.1:18080", sidecar_url="http://127.0.0.1:18081", metrics_listen="127.0.0.1:19180"
    )
    path = tmp_path / "caddy.json"
    path.write_text(json.dumps(config))
    checked = subprocess.run(
        [caddy_binary(), "validate", "--config", str(path)], capture_output=True, text=True, check=False
    )
    assert checked.returncode == 0, checked.stderr


def test_each_owner_gets_one_pattern_that_agrees_with_the_table() -> None:
    patterns = {service: re.compile(pattern) for service, pattern in service_path_patterns().items()}
    assert set(patterns) == {service for _, service in ROUTE_TABLE}
    table = RouteTable()
    for path, owner in CONTRACT_PATHS:
        owners = [service for service, pattern in patterns.items() if pattern.match(path)]
        assert owners == [owner], path
        assert table.resolve(path) is not None
    for stray in ("/api/auth/pets/0/edit/", "/api/auth/alerts", "/api/auth/alertsx/", "/metrics", "/healthz"):
        owners = [service for service, pattern in patterns.items() if pattern.match(stray)]
        assert owners == ([] if stray != "/api/auth/alerts" else ["notifier"]), stray


def test_the_declared_body_limit_pattern_matches_exactly_the_numbers_above_it() -> None:
    for limit in (1, 9, 10, 999, 1000, 26_214_400):
        pattern = re.compile(greater_than_pattern(limit))
        for number in [*range(0, 1200), limit - 1, limit, limit + 1, limit * 10]:
            assert bool(pattern.match(str(number))) is (number > limit), (limit, number)
