"""The image model behind the embeddings service: a port, a local ONNX adapter and a Gradio Space adapter."""

from pawgle.embeddings.model.batching import EmbeddingBatcher
from pawgle.embeddings.model.gradio_embedder import GradioImageEmbedder
from pawgle.embeddings.model.onnx_embedder import OnnxImageEmbedder, load_local_embedder
from pawgle.embeddings.model.port import (
    BreedTag,
    ImageEmbedder,
    ImageEmbedding,
    InvalidImageError,
    ModelError,
    ModelInfo,
    ModelUnavailableError,
)

__all__ = [
    "BreedTag",
    "EmbeddingBatcher",
    "GradioImageEmbedder",
    "ImageEmbedder",
    "ImageEmbedding",
    "InvalidImageError",
    "ModelError",
    "ModelInfo",
    "ModelUnavailableError",
    "OnnxImageEmbedder",
    "load_local_embedder",
]
