"""Settings of the pets service (env prefix PETS_)."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from pawgle.common.config import ServiceSettings


class Settings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="PETS_", extra="ignore", populate_by_name=True)

    service_name: str = "pets"

    # A deleted pet stays restorable this long (the web app edits by delete + add, contract D6: >= 15 min),
    # then it is purged with its photos and pet.deleted is published.
    delete_grace_s: int = Field(30 * 60, ge=15 * 60)
    # Without existing_images, a re-add with the same name, type, breed and category within this window
    # restores the pet the owner just deleted (D6 fallback).
    restore_by_fields_s: int = Field(120, ge=0)
    purge_every_s: float = Field(60.0, gt=0)
    max_photos_per_pet: int = Field(10, ge=1, le=50)
    # P1 right after a first sign-in: how long the profile waits for the user.* event before answering
    # with the id alone (never someone else's data, never a 500).
    owner_wait_s: float = Field(1.5, ge=0, le=10)
    dashboard_limit: int = Field(500, ge=1, le=5000)

    throttle_enabled: bool = True
    throttle_bucket: str = "throttles"
    # Per-scope overrides, e.g. PETS_THROTTLE_RATES='{"pet_write": "60/min"}'.
    throttle_rates: dict[str, str] = Field(default_factory=dict)
    # Peers whose X-Pawgle-Client-Ip is believed when no edge secret is set (the gateway on loopback).
    trusted_proxies: list[str] = Field(default_factory=lambda: ["127.0.0.1/32", "::1/128"])
