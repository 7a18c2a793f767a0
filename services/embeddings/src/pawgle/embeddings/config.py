"""Settings of the embeddings service (env prefix EMBEDDINGS_)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr
from pydantic_settings import SettingsConfigDict

from pawgle.common.config import ServiceSettings


class Settings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="EMBEDDINGS_", extra="ignore", populate_by_name=True)

    service_name: str = "embeddings"

    # Vector store: a Qdrant server when a URL is set (production: every replica shares it), else the
    # embedded engine in `vector_dir` (default service_dir / "vectors"): Qdrant Edge, measured faster than
    # qdrant-client's local mode (services/embeddings/README.md, "Vector store").
    qdrant_url: str | None = None
    qdrant_api_key: SecretStr | None = None
    qdrant_timeout_s: float = Field(10.0, gt=0, le=120)
    embedded_vector_store: Literal["edge", "local"] = "edge"
    vector_dir: Path | None = None
    collection_prefix: str = Field("pawgle", pattern=r"^[A-Za-z0-9_-]{1,40}$")

    def vector_folder(self) -> Path:
        """Where the embedded vector store keeps its files."""
        return self.vector_dir or self.service_dir / "vectors"
