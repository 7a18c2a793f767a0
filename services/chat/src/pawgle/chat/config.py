"""Settings of the chat service (env prefix CHAT_)."""

from pydantic_settings import SettingsConfigDict

from pawgle.common.config import ServiceSettings


class Settings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="CHAT_", extra="ignore", populate_by_name=True)

    service_name: str = "chat"
