"""Where vectors live: the port and its adapters (Qdrant server, Qdrant Edge, qdrant-client local mode)."""

from __future__ import annotations

from pawgle.embeddings.config import Settings
from pawgle.embeddings.vectors.port import VectorStore


def open_vector_store(settings: Settings) -> VectorStore:
    """The configured store: the Qdrant server when EMBEDDINGS_QDRANT_URL is set, else the embedded engine."""
    from pawgle.embeddings.vectors.qdrant_store import QdrantClientStore

    if settings.qdrant_url:
        api_key = settings.qdrant_api_key.get_secret_value() if settings.qdrant_api_key else None
        return QdrantClientStore(url=settings.qdrant_url, api_key=api_key, timeout_s=settings.qdrant_timeout_s)
    if settings.embedded_vector_store == "local":
        return QdrantClientStore(path=settings.vector_folder() / "local")
    from pawgle.embeddings.vectors.edge_store import EdgeStore

    return EdgeStore(settings.vector_folder() / "edge")
