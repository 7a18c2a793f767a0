"""Settings: one class per service with its own env prefix, on top of the mesh-wide PAWGLE_* settings."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import AliasChoices, Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


def _mesh(name: str) -> AliasChoices:
    """Mesh-wide settings are read from PAWGLE_<NAME>, whatever the service's own prefix."""
    return AliasChoices(f"PAWGLE_{name}")


class S3Settings(BaseSettings):
    """Where photos and attachments go in production (any S3 API: R2, MinIO, AWS); unset bucket: a local folder."""

    model_config = SettingsConfigDict(env_prefix="PAWGLE_S3_", extra="ignore")

    bucket: str | None = None
    endpoint_url: str | None = None
    access_key_id: str | None = None
    secret_access_key: SecretStr | None = None
    region: str = "auto"


class ServiceSettings(BaseSettings):
    """Base settings of every service; subclasses set `service_name` and an env prefix (PETS_, AUTH_...)."""

    model_config = SettingsConfigDict(env_prefix="PAWGLE_", extra="ignore", populate_by_name=True)

    service_name: str = "service"

    environment: Literal["development", "test", "production"] = Field(
        "development", validation_alias=_mesh("ENVIRONMENT")
    )
    data_dir: Path = Field(Path(".data"), validation_alias=_mesh("DATA_DIR"))
    nats_url: str = Field("nats://127.0.0.1:4222", validation_alias=_mesh("NATS_URL"))
    stream_replicas: int = Field(1, ge=1, le=5, validation_alias=_mesh("STREAM_REPLICAS"))
    frontend_origin: str = Field("http://localhost:3000", validation_alias=_mesh("FRONTEND_ORIGIN"))
    public_base_url: str = Field("http://localhost:8000", validation_alias=_mesh("PUBLIC_BASE_URL"))
    jwks_url: str = Field("http://127.0.0.1:8000/api/auth/jwks/", validation_alias=_mesh("JWKS_URL"))
    jwt_issuer: str = Field("pawgle-auth", validation_alias=_mesh("JWT_ISSUER"))
    jwt_audience: str = Field("pawgle", validation_alias=_mesh("JWT_AUDIENCE"))
    otlp_endpoint: str | None = Field(None, validation_alias=_mesh("OTLP_ENDPOINT"))
    log_format: Literal["json", "text"] = Field("text", validation_alias=_mesh("LOG_FORMAT"))
    log_level: str = Field("INFO", validation_alias=_mesh("LOG_LEVEL"))
    auto_migrate: bool = Field(True, validation_alias=_mesh("AUTO_MIGRATE"))
    consumer_max_deliveries: int = Field(5, ge=1, validation_alias=_mesh("CONSUMER_MAX_DELIVERIES"))
    run_workers: bool = Field(True, validation_alias=_mesh("RUN_WORKERS"))
    # Freeze the heap built at startup out of the garbage collector's sight (see app._settle_the_heap): for a
    # process serving one app. Off where one process starts many apps in turn (the test suite).
    settle_heap: bool = Field(True, validation_alias=_mesh("SETTLE_HEAP"))
    # Shared by the gateway and the services: a request carrying it in X-Pawgle-Edge came through the gateway,
    # so its X-Pawgle-Client-Ip (the address the gateway decided) is believed. None: no header is believed.
    edge_secret: SecretStr | None = Field(None, validation_alias=_mesh("EDGE_SECRET"))

    # Photos and attachments (PAWGLE_S3_BUCKET, PAWGLE_S3_ENDPOINT_URL, ..._ACCESS_KEY_ID, ..._SECRET_ACCESS_KEY,
    # ..._REGION); no bucket means the shared local media folder.
    s3: S3Settings = Field(default_factory=S3Settings)

    # The service's own database; the default is a SQLite file per service under the data dir.
    database_url: str | None = None

    @model_validator(mode="after")
    def _fill_defaults(self) -> ServiceSettings:
        self.data_dir = self.data_dir.expanduser().resolve()
        if not self.database_url:
            self.database_url = f"sqlite:///{self.data_dir / self.service_name / 'db.sqlite3'}"
        if self.environment == "production" and self.log_format == "text":
            self.log_format = "json"
        return self

    @property
    def is_production(self) -> bool:
        return self.environment == "production"

    @property
    def service_dir(self) -> Path:
        """Folder for this service's embedded data (SQLite file, local blobs, vectors...)."""
        return self.data_dir / self.service_name

    @property
    def db_url(self) -> str:
        assert self.database_url is not None  # filled in by the validator
        return self.database_url
