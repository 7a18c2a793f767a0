"""Settings of the reports service (env prefix REPORTS_)."""

from pydantic_settings import SettingsConfigDict

from pawgle.common.config import ServiceSettings


class Settings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="REPORTS_", extra="ignore", populate_by_name=True)

    service_name: str = "reports"
