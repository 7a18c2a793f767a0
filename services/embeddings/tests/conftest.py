"""Fixtures of the model tests: the real ONNX model, loaded once per session, and the shipped photos."""

from __future__ import annotations

from pathlib import Path

import pytest

from pawgle.embeddings.model.onnx_embedder import OnnxBackbone, OnnxIdentityHead, OnnxImageEmbedder

DATA = Path(__file__).parent / "data"
PHOTOS = DATA / "photos"


def photo_bytes(name: str) -> bytes:
    """A shipped test photo's bytes (see tests/data/SOURCES.md)."""
    return (PHOTOS / name).read_bytes()


@pytest.fixture(scope="session")
def backbone() -> OnnxBackbone:
    return OnnxBackbone()


@pytest.fixture(scope="session")
def generic_embedder(backbone: OnnxBackbone) -> OnnxImageEmbedder:
    return OnnxImageEmbedder(backbone=backbone)


@pytest.fixture(scope="session")
def identity_embedder(backbone: OnnxBackbone) -> OnnxImageEmbedder:
    return OnnxImageEmbedder(backbone=backbone, identity_head=OnnxIdentityHead())


from .service_fixtures import embedder, embeddings, embeddings_settings_factory  # noqa: E402, F401
