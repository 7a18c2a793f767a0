"""Settings of the matcher service (env prefix MATCHER_)."""

from pydantic_settings import SettingsConfigDict

from pawgle.common.config import ServiceSettings


class Settings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="MATCHER_", extra="ignore", populate_by_name=True)

    service_name: str = "matcher"
