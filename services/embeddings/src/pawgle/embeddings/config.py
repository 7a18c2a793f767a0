"""Settings of the embeddings service (env prefix EMBEDDINGS_)."""

from __future__ import annotations

import math
import os
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

    # The model: "local" (EfficientNet-Lite0 with the identity head when shipped, onnxruntime) or "gradio"
    # (an ArcFace Space: gradio_space names it, e.g. "owner/space" or a URL).
    model: Literal["local", "gradio"] = "local"
    model_threads: int | None = Field(None, ge=1, le=64)
    gradio_space: str = ""
    gradio_token: SecretStr | None = None
    gradio_model_name: str = "arcface-space"
    gradio_model_version: str = "1"
    gradio_dimension: int = Field(512, ge=1, le=8192)
    gradio_timeout_s: float = Field(30.0, gt=0, le=300)

    # Batching and retries of the embedding worker (contract P2: failed after 3 attempts).
    batch_max_photos: int = Field(16, ge=1, le=256)
    batch_max_wait_s: float = Field(0.01, ge=0, le=5)
    jobs_per_step: int = Field(32, ge=1, le=500)
    # How long the worker waits after being woken, so jobs of events arriving together share model batches.
    collect_s: float = Field(0.05, ge=0, le=5)
    max_attempts: int = Field(3, ge=1, le=20)
    retry_base_s: float = Field(5.0, gt=0)
    retry_max_s: float = Field(300.0, gt=0)
    # Image search's similarity cut-off; unset: the model's calibrated one, else 0.3 (contract P5).
    search_min_similarity: float | None = Field(None, ge=-1, le=1)
    # How often Qdrant Edge folds new vectors into indexed segments.
    optimize_every_s: float = Field(300.0, gt=0)
    # How often a pod looks for subjects embedded by another model (after a switch; catchup.py).
    catch_up_every_s: float = Field(60.0, gt=0)

    def model_thread_count(self) -> int:
        """onnxruntime's intra-op threads: `model_threads`, else the cores this process may use."""
        return self.model_threads or usable_cores()

    def vector_folder(self) -> Path:
        """Where the embedded vector store keeps its files."""
        return self.vector_dir or self.service_dir / "vectors"


def usable_cores() -> int:
    """Cores this process may run on: its CPU affinity, capped by a cgroup v2 CPU quota (a pod's limit)."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    try:
        quota, period = Path("/sys/fs/cgroup/cpu.max").read_text().split()
        if quota != "max":
            cores = min(cores, max(1, math.ceil(int(quota) / int(period))))
    except (OSError, ValueError):
        pass
    return max(1, cores)
