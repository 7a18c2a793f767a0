"""Settings of the reports service (env prefix REPORTS_)."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from pawgle.common.config import ServiceSettings


class Settings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="REPORTS_", extra="ignore", populate_by_name=True)

    service_name: str = "reports"

    # How long a report stays on the maps unless its reporter renews it, and how long before that the
    # reporter is told (report.expiring).
    lost_ttl_days: int = Field(90, ge=1)
    found_ttl_days: int = Field(30, ge=1)
    expiring_notice_days: int = Field(3, ge=0)
    expiry_every_s: float = Field(300.0, gt=0)
    expiry_batch_size: int = Field(200, ge=1, le=5000)

    # Someone else's lost report (often a home) is shown at the centre of its grid cell: this many metres
    # a side (a few hundred), the same cell every time so repeated queries cannot average it away.
    privacy_cell_m: float = Field(500.0, ge=100, le=5000)

    # The lists are bare arrays capped at this many reports (newest first); `limit` may ask for fewer.
    list_cap: int = Field(1000, ge=1, le=10000)
    # Each process keeps the public rendering of the map lists while no report changed (any replica's
    # write invalidates it, see listcache.py), at most this long (below the photo URLs' lifetime), and of
    # at most this many single reports (bounding-box answers).
    list_cache_max_age_s: float = Field(60.0, ge=0, le=3600)
    list_cache_rows: int = Field(20_000, ge=0, le=1_000_000)
    max_description_chars: int = Field(2000, ge=1, le=20000)

    # Partner feeds: rows per request, and the photo fetch (only from the partner's hosts) limits.
    partner_max_rows: int = Field(10_000, ge=1, le=100_000)
    partner_photo_timeout_s: float = Field(10.0, gt=0, le=60)
    partner_photo_concurrency: int = Field(4, ge=1, le=32)

    throttle_enabled: bool = True
    throttle_bucket: str = "throttles"
    # Per-scope overrides, e.g. REPORTS_THROTTLE_RATES='{"report_pet": "60/min"}'.
    throttle_rates: dict[str, str] = Field(default_factory=dict)
    # Peers whose X-Pawgle-Client-Ip is believed when no edge secret is set (the gateway on loopback).
    trusted_proxies: list[str] = Field(default_factory=lambda: ["127.0.0.1/32", "::1/128"])
