"""The production adapter: an ArcFace embedding served by a Gradio app (a Hugging Face Space).

It speaks the original's wire protocol (its Space's `app.py`): `/extract_features_api` takes one image and
returns a JSON string `{"success": true, "features": [...], "feature_length": n, "message": ...}` or
`{"success": false, "error": ..., "features": null}`; `/classify_image` returns the text
`Prediction: Dog\\nConfidence: 0.9812` (Cat or Dog). `services/embeddings/space/app.py` serves the same two
endpoints, so anyone can deploy their own Space. Unlike the original client, a failed call raises: a made-up
vector is never returned.
"""

from __future__ import annotations

import json
import math
import os
import tempfile
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from pawgle.embeddings.model.port import (
    ImageEmbedding,
    ImageInput,
    ModelError,
    ModelInfo,
    ModelUnavailableError,
    Species,
)
from pawgle.embeddings.model.preprocess import decode_image

FEATURES_ENDPOINT = "/extract_features_api"
CLASSIFY_ENDPOINT = "/classify_image"


def _parse_species(text: object) -> Species:
    """`Prediction: Dog` / `Prediction: Cat` to a species tag; anything else is a model error."""
    if not isinstance(text, str) or not text.startswith("Prediction:"):
        raise ModelError(f"the Space's {CLASSIFY_ENDPOINT} answered {str(text)[:200]!r}, not 'Prediction: ...'")
    label = text.removeprefix("Prediction:").split("\n", 1)[0].strip().lower()
    if label not in ("dog", "cat"):
        raise ModelError(f"the Space's {CLASSIFY_ENDPOINT} predicted {label!r}, expected Dog or Cat")
    return "dog" if label == "dog" else "cat"


def _parse_features(answer: object, dimension: int | None) -> np.ndarray:
    """The unit vector inside the Space's JSON answer; a failure answer or a malformed vector raises."""
    try:
        body = json.loads(answer) if isinstance(answer, str) else answer
    except json.JSONDecodeError as exc:
        raise ModelError(f"the Space answered something that is not JSON: {str(answer)[:200]!r}") from exc
    if not isinstance(body, dict):
        raise ModelError(f"the Space answered {type(body).__name__}, expected a JSON object")
    if not body.get("success"):
        raise ModelError(f"the Space could not embed the photo: {body.get('error') or 'no reason given'}")
    features = body.get("features")
    if not isinstance(features, list) or not features or not all(isinstance(x, int | float) for x in features):
        raise ModelError("the Space reported success but sent no list of numbers as features")
    vector = np.asarray(features, dtype=np.float32)
    if dimension is not None and vector.shape[0] != dimension:
        raise ModelError(f"the Space sent {vector.shape[0]} features, this model version has {dimension}")
    norm = float(np.linalg.norm(vector))
    if not math.isfinite(norm) or norm <= 1e-12:
        raise ModelError("the Space sent a zero or non-finite vector")
    return vector / norm


class GradioImageEmbedder:
    """Calls a Gradio Space once per photo (the Space takes one image per call), with a timeout per call."""

    def __init__(
        self,
        space: str,
        *,
        model_name: str,
        model_version: str,
        dimension: int,
        token: str | None = None,
        timeout: float = 30.0,
        classify: bool = True,
    ) -> None:
        self.space = space
        self.token = token
        self.timeout = timeout
        self.classify = classify
        self._info = ModelInfo(name=model_name, version=model_version, dimension=dimension)
        self._client: Any = None
        self._lock = threading.Lock()

    @property
    def info(self) -> ModelInfo:
        """Name, version and dimension the operator configured for this Space."""
        return self._info

    def _connect(self) -> Any:
        # Imported here: gradio_client is only needed when this adapter is configured.
        from gradio_client import Client

        with self._lock:
            if self._client is None:
                try:
                    self._client = Client(
                        self.space,
                        token=self.token,
                        verbose=False,
                        analytics_enabled=False,
                        download_files=False,
                        httpx_kwargs={"timeout": self.timeout},
                    )
                except Exception as exc:  # httpx, huggingface_hub and gradio each raise their own
                    raise ModelUnavailableError(f"the Space {self.space} could not be reached: {exc}") from exc
            return self._client

    def _call(self, endpoint: str, photo_file: Path) -> object:
        from gradio_client import handle_file

        client = self._connect()
        try:
            return client.submit(handle_file(str(photo_file)), api_name=endpoint).result(timeout=self.timeout)
        except TimeoutError as exc:
            raise ModelUnavailableError(f"the Space {self.space} took more than {self.timeout} s") from exc
        except Exception as exc:  # the call failed on the Space or on the way
            with self._lock:
                self._client = None  # reconnect next time: the Space may have restarted with a new config
            raise ModelUnavailableError(f"the Space {self.space} failed on {endpoint}: {exc}") from exc

    def embed(self, images: Sequence[ImageInput]) -> list[ImageEmbedding]:
        """One call (two with `classify`) per photo; the photo goes as a JPEG file."""
        photos = [decode_image(image, index=index) for index, image in enumerate(images)]
        results = []
        with tempfile.TemporaryDirectory(prefix="pawgle-space-") as folder:
            for index, photo in enumerate(photos):
                photo_file = Path(folder) / f"photo-{index}.jpg"
                photo.save(photo_file, format="JPEG", quality=92)
                vector = _parse_features(self._call(FEATURES_ENDPOINT, photo_file), self._info.dimension)
                species = _parse_species(self._call(CLASSIFY_ENDPOINT, photo_file)) if self.classify else "other"
                results.append(ImageEmbedding(vector=vector, species=species))
                os.unlink(photo_file)
        return results
