"""The model port: what the embeddings service needs from any image model, and the errors it raises."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal, Protocol

import numpy as np
from PIL import Image

Species = Literal["dog", "cat", "other"]
ImageInput = bytes | Image.Image


@dataclass(frozen=True)
class ModelInfo:
    """Which model made a vector. Vectors of two different keys are never compared."""

    name: str
    version: str
    dimension: int
    # Similarities calibrated for this model (None when nobody calibrated it): the automatch and search cut-offs.
    automatch_min_similarity: float | None = None
    search_min_similarity: float | None = None

    @property
    def key(self) -> str:
        """`name-version`, the form used in payloads and collection names."""
        return f"{self.name}-{self.version}"


@dataclass(frozen=True)
class BreedTag:
    """A coarse breed guess from the ImageNet head; `probability` is within the species."""

    label: str
    probability: float


@dataclass(frozen=True)
class ImageEmbedding:
    """One photo's vector (float32, unit length) and the tags read off the same forward pass."""

    vector: np.ndarray
    species: Species
    breeds: tuple[BreedTag, ...] = ()
    # The part of the photo that was embedded, in the decoded photo's pixels (left, top, right, bottom),
    # or None when the whole photo was.
    crop_box: tuple[int, int, int, int] | None = None


class ModelError(Exception):
    """The model could not embed: no vector is produced (never a made-up one)."""


class ModelUnavailableError(ModelError):
    """The model could not be reached or timed out; retrying later may succeed."""


class InvalidImageError(ModelError):
    """An input is not a usable photo (the sender's fault); `index` is its position in the batch."""

    def __init__(self, message: str, *, index: int = 0) -> None:
        super().__init__(message)
        self.index = index


class ImageEmbedder(Protocol):
    """Embeds photos. Blocking and CPU-bound: call it from a thread (see `EmbeddingBatcher`)."""

    @property
    def info(self) -> ModelInfo:
        """Name, version and dimension of the vectors this embedder produces."""
        ...

    def embed(self, images: Sequence[ImageInput]) -> list[ImageEmbedding]:
        """One embedding per input, in order; raises `ModelError` (or a subclass) instead of guessing."""
        ...
