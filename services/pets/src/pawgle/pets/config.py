"""Settings of the pets service (env prefix PETS_)."""

from pydantic_settings import SettingsConfigDict

from pawgle.common.config import ServiceSettings


class Settings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="PETS_", extra="ignore", populate_by_name=True)

    service_name: str = "pets"
