"""Settings of the embeddings service (env prefix EMBEDDINGS_)."""

from pydantic_settings import SettingsConfigDict

from pawgle.common.config import ServiceSettings


class Settings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="EMBEDDINGS_", extra="ignore", populate_by_name=True)

    service_name: str = "embeddings"
