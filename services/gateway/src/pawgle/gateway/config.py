"""Settings of the gateway (env prefix GATEWAY_; upstream base URLs from PAWGLE_<SERVICE>_URL)."""

from __future__ import annotations

import ipaddress
from pathlib import Path
from typing import Any, Literal

from pydantic import AliasChoices, Field
from pydantic_settings import SettingsConfigDict

from pawgle.common.config import ServiceSettings

MB = 1024 * 1024


def _upstream(name: str, port: int) -> Any:
    """An upstream base URL read from PAWGLE_<NAME>_URL, as the launcher and the deployments set it."""
    return Field(f"http://127.0.0.1:{port}", validation_alias=AliasChoices(f"PAWGLE_{name}_URL", f"{name.lower()}_url"))


class Settings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="GATEWAY_", extra="ignore", populate_by_name=True)

    service_name: str = "gateway"

    auth_url: str = _upstream("AUTH", 8101)
    pets_url: str = _upstream("PETS", 8102)
    reports_url: str = _upstream("REPORTS", 8103)
    chat_url: str = _upstream("CHAT", 8104)
    embeddings_url: str = _upstream("EMBEDDINGS", 8105)
    matcher_url: str = _upstream("MATCHER", 8106)
    notifier_url: str = _upstream("NOTIFIER", 8107)

    # Origins allowed besides PAWGLE_FRONTEND_ORIGIN (comma-separated, e.g. a staging app or a mobile web view).
    cors_origins: str = ""
    cors_max_age_s: int = Field(600, ge=0)
    max_body_bytes: int = Field(25 * MB, ge=1)
    connect_timeout_s: float = Field(2.0, gt=0)
    read_timeout_s: float = Field(30.0, gt=0)
    write_timeout_s: float = Field(30.0, gt=0)
    pool_timeout_s: float = Field(5.0, gt=0)
    max_connections: int = Field(512, ge=1)
    max_keepalive_connections: int = Field(128, ge=1)
    # Below uvicorn's 5 s keep-alive, so the pool never reuses a connection a service is about to close.
    keepalive_expiry_s: float = Field(4.0, gt=0)
    health_timeout_s: float = Field(1.5, gt=0)
    media_cache_max_age_s: int = Field(86400, ge=0)
    # "caddy" (default): the Caddy proxy relays, this Python app only answers /healthz and /media/ beside it.
    # "python": this app relays everything itself (slower; kept for platforms without the caddy binary).
    engine: Literal["caddy", "python"] = "caddy"
    # Networks (comma-separated CIDRs) whose X-Forwarded-For is believed: the ingress or load balancer in
    # front of the gateway. Empty: the client address is the socket's peer, whatever a client claims.
    trusted_proxies: str = ""
    # Internal port of Caddy's Prometheus metrics (never routed publicly); 0: no metrics listener.
    metrics_port: int = Field(0, ge=0, lt=65536)

    @property
    def service_urls(self) -> dict[str, str]:
        """Base URL of every upstream service, by service name."""
        urls = {
            "auth": self.auth_url,
            "pets": self.pets_url,
            "reports": self.reports_url,
            "chat": self.chat_url,
            "embeddings": self.embeddings_url,
            "matcher": self.matcher_url,
            "notifier": self.notifier_url,
        }
        return {name: url.rstrip("/") for name, url in urls.items()}

    @property
    def trusted_proxy_networks(self) -> list[str]:
        """The trusted proxy networks as a list, validated."""
        networks = [part.strip() for part in self.trusted_proxies.split(",") if part.strip()]
        for network in networks:
            ipaddress.ip_network(network, strict=False)
        return networks

    @property
    def allowed_origins(self) -> frozenset[str]:
        """Exact origins that get credentialed CORS headers."""
        candidates = [self.frontend_origin, *self.cors_origins.split(",")]
        return frozenset(origin.strip().rstrip("/") for origin in candidates if origin.strip())

    @property
    def media_dir(self) -> Path:
        """The local blob folder every service writes into (LocalBlobStore), served under /media/."""
        return self.data_dir / "media"
