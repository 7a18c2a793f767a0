"""Settings of the chat service (env prefix CHAT_)."""

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from pawgle.common.config import ServiceSettings


class Settings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="CHAT_", extra="ignore", populate_by_name=True)

    service_name: str = "chat"
    # Signs the short-lived stream tickets; set the same value on every chat process (random when unset,
    # which is only right for a single process).
    stream_ticket_secret: str | None = None
    # Throttles (contact-owner is scope contact_owner, 10/hour per user; overrides may only raise it).
    throttle_enabled: bool = True
    throttle_bucket: str = "throttles"
    throttle_rates: dict[str, str] = Field(default_factory=dict)
