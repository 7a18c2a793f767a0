"""The Gradio adapter against a real local Gradio server running the shipped Space app (space/app.py)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest

from pawgle.common.natsserver import free_port
from pawgle.embeddings.model.gradio_embedder import GradioImageEmbedder
from pawgle.embeddings.model.onnx_embedder import OnnxImageEmbedder
from pawgle.embeddings.model.port import InvalidImageError, ModelError, ModelUnavailableError

from .conftest import photo_bytes

SPACE_APP = Path(__file__).parents[1] / "space" / "app.py"
STARTUP_SECONDS = 120


def start_space(tmp_path: Path, **env: str) -> tuple[subprocess.Popen[bytes], str]:
    """Run space/app.py on a free port; return the process and its URL once it answers."""
    port = free_port()
    log = (tmp_path / f"space-{port}.log").open("wb")
    process = subprocess.Popen(
        [sys.executable, str(SPACE_APP)],
        env={
            **os.environ,
            "GRADIO_SERVER_NAME": "127.0.0.1",
            "GRADIO_SERVER_PORT": str(port),
            "GRADIO_ANALYTICS_ENABLED": "False",
            **env,
        },
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}/"
    deadline = time.monotonic() + STARTUP_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the Space app exited: {(tmp_path / f'space-{port}.log').read_text()[-2000:]}")
        try:
            if httpx.get(url, timeout=1).status_code == 200:
                return process, url
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    process.kill()
    raise RuntimeError("the Space app did not start in time")


def stop(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()


@pytest.fixture(scope="module")
def space_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    process, url = start_space(tmp_path_factory.mktemp("space"))
    yield url
    stop(process)


def space_embedder(url: str, dimension: int, **overrides: object) -> GradioImageEmbedder:
    settings: dict[str, object] = {"timeout": 30.0, **overrides}
    return GradioImageEmbedder(url, model_name="pawgle-space", model_version="test", dimension=dimension, **settings)


def test_the_gradio_adapter_round_trips_through_a_local_space(
    space_url: str, identity_embedder: OnnxImageEmbedder
) -> None:
    photos = [photo_bytes("dog_afhq_flickr_000054.jpg"), photo_bytes("cat_chelsea.jpg")]
    remote = space_embedder(space_url, identity_embedder.info.dimension).embed(photos)
    local = identity_embedder.embed(photos)
    assert [r.species for r in remote] == ["dog", "cat"]
    for far, near in zip(remote, local, strict=True):
        assert far.vector.dtype == np.float32
        assert abs(float(np.linalg.norm(far.vector)) - 1) < 1e-5
        # The adapter sends the photo as a JPEG, so the Space sees a re-encoded copy: close, not identical.
        assert float(far.vector @ near.vector) > 0.97


def test_a_space_answering_with_another_dimension_is_a_model_error(space_url: str) -> None:
    with pytest.raises(ModelError, match="features, this model version has 512"):
        space_embedder(space_url, 512, classify=False).embed([photo_bytes("cat_chelsea.jpg")])


def test_a_space_whose_model_failed_to_load_raises_instead_of_inventing_a_vector(tmp_path: Path) -> None:
    process, url = start_space(tmp_path, PAWGLE_SPACE_MODEL_DIR=str(tmp_path / "no-model-here"))
    try:
        with pytest.raises(ModelError, match="Model not loaded") as raised:
            space_embedder(url, 384).embed([photo_bytes("cat_chelsea.jpg")])
        assert not isinstance(raised.value, ModelUnavailableError)
    finally:
        stop(process)


def test_an_unreachable_space_is_model_unavailable() -> None:
    embedder = space_embedder(f"http://127.0.0.1:{free_port()}/", 384, timeout=3.0)
    with pytest.raises(ModelUnavailableError, match="could not be reached"):
        embedder.embed([photo_bytes("cat_chelsea.jpg")])


def test_a_bad_photo_fails_before_any_call_to_the_space() -> None:
    embedder = space_embedder(f"http://127.0.0.1:{free_port()}/", 384)
    with pytest.raises(InvalidImageError):
        embedder.embed([b"not an image"])
