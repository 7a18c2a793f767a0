"""Settings of the notifier service (env prefix NOTIFIER_)."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, model_validator
from pydantic_settings import SettingsConfigDict

from pawgle.common.config import ServiceSettings


class Settings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="NOTIFIER_", extra="ignore", populate_by_name=True)

    service_name: str = "notifier"

    # E-mail: Resend when an API key is set, else the local outbox folder (service_dir / "outbox-mail").
    resend_api_key: str | None = None
    # Resend's base URL; empty means the SDK's own default (its RESEND_API_URL env var, else api.resend.com).
    resend_api_url: str | None = None
    resend_timeout_s: int = Field(10, ge=1, le=60)
    mail_from: str = "PawGle <no-reply@pawgle.app>"

    # The background sender: how often it looks for due e-mails, how it backs off, when it gives up.
    mail_poll_interval_s: float = Field(1.0, gt=0)
    mail_batch_size: int = Field(50, ge=1, le=500)
    mail_retry_base_s: float = Field(2.0, gt=0)
    mail_retry_max_s: float = Field(600.0, gt=0)
    mail_max_attempts: int = Field(10, ge=1)
    # A claimed batch is leased this long and renewed while it is sent (every third of it), so a sender
    # that dies frees its mail within seconds. Longer than one Resend call (resend_timeout_s).
    mail_lease_s: float = Field(30.0, gt=0)

    # A chat paging e-mail goes at most once per conversation and recipient in this window.
    chat_page_interval_s: int = Field(15 * 60, ge=0)

    # X1 inbound replies: the shared secret of the frontend's forwarding route (empty: route always 401),
    # and the domain of per-party reply addresses reply+<token>@<domain> (empty: no reply addresses).
    forward_secret: str = ""
    reply_domain: str = ""
    reply_token_ttl_days: int = Field(30, ge=1)

    @model_validator(mode="after")
    def _refuse_unsafe_production(self) -> Settings:
        if self.is_production and self.forward_secret and len(self.forward_secret) < 24:
            raise ValueError("NOTIFIER_FORWARD_SECRET must be at least 24 characters in production")
        return self

    @property
    def mail_outbox_dir(self) -> Path:
        """Where the local adapter writes one .eml file per message for an operator to read."""
        return self.service_dir / "outbox-mail"
