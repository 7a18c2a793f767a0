"""Settings of the chat service (env prefix CHAT_)."""

from pydantic_settings import SettingsConfigDict

from pawgle.common.config import ServiceSettings


class Settings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="CHAT_", extra="ignore", populate_by_name=True)

    service_name: str = "chat"
    # The public origin; the gateway serves the shared local media folder under /media/ (unused with S3/R2).
    public_base_url: str = "http://localhost:8000"
    # Contact-owner (L7) sends per user per hour (contract scope contact_owner, D9).
    contact_owner_per_hour: int = 10
