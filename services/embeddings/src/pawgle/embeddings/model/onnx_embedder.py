"""The local adapter: EfficientNet-Lite0 (and optionally the identity head) run by onnxruntime, no torch."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnxruntime as ort
from PIL import Image

from pawgle.embeddings.model.crop import animal_box, box_in_photo
from pawgle.embeddings.model.imagenet import softmax, species_and_breeds
from pawgle.embeddings.model.port import ImageEmbedding, ImageInput, ModelError, ModelInfo
from pawgle.embeddings.model.preprocess import decode_image, l2_normalise, to_pixels

FILES = Path(__file__).parent / "files"
BACKBONE_FILE = FILES / "efficientnet_lite0.onnx"
IDENTITY_HEAD_FILE = FILES / "identity_head.onnx"
GENERIC_MODEL_NAME = "efficientnet-lite0-imagenet"
GENERIC_MODEL_VERSION = "1"
# onnxruntime's cost per call is small but not nothing; bigger batches than this buy no more throughput
# on a CPU and only hold memory.
MAX_BATCH = 32


def _metadata(model_file: Path) -> dict[str, object]:
    record = model_file.with_suffix(".json")
    if not record.exists():
        raise ModelError(f"{record} is missing: it records the model file's sha256 and settings")
    return dict(json.loads(record.read_text()))


def _session(model_file: Path, threads: int | None) -> ort.InferenceSession:
    """An onnxruntime session on a file whose sha256 matches its record (a truncated copy fails loudly)."""
    if not model_file.exists():
        raise ModelError(f"model file {model_file} is missing (services/embeddings/README.md says how to build it)")
    expected = _metadata(model_file).get("sha256")
    actual = hashlib.sha256(model_file.read_bytes()).hexdigest()
    if expected != actual:
        raise ModelError(f"model file {model_file} has sha256 {actual}, its record says {expected}")
    options = ort.SessionOptions()
    options.inter_op_num_threads = 1
    # onnxruntime's worker threads spin while waiting for work by default; on a small shared CPU that burns
    # the cores other processes (and the event loop) need, for no gain at these batch sizes.
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    if threads:
        options.intra_op_num_threads = threads
    try:
        return ort.InferenceSession(str(model_file), sess_options=options, providers=["CPUExecutionProvider"])
    except Exception as exc:  # onnxruntime raises its own untyped errors for a broken graph
        raise ModelError(f"onnxruntime could not load {model_file}: {exc}") from exc


@dataclass(frozen=True)
class BackboneOutput:
    """What one pass of EfficientNet-Lite0 gives for a batch."""

    features: np.ndarray  # N x 1280 pooled features, not normalised
    logits: np.ndarray  # N x 1000 ImageNet logits
    animal_map: np.ndarray  # N x 7 x 7 dog-or-cat activation map
    identity_features: np.ndarray  # N x 2 x 3264: the identity head's descriptors of the photo and its mirror


class OnnxBackbone:
    """EfficientNet-Lite0 behind onnxruntime: pixels in, pooled features, logits, the animal map and the
    identity descriptors (of each photo and its mirror image, one pass of the graph) out."""

    def __init__(self, model_file: Path = BACKBONE_FILE, *, threads: int | None = None) -> None:
        self.model_file = model_file
        self.session = _session(model_file, threads)

    def run(self, pixels: np.ndarray) -> BackboneOutput:
        """One forward pass per chunk of at most MAX_BATCH photos."""
        parts: list[list[np.ndarray]] = [[], [], [], []]
        for start in range(0, len(pixels), MAX_BATCH):
            try:
                outputs = self.session.run(None, {"pixels": pixels[start : start + MAX_BATCH]})
            except Exception as exc:  # onnxruntime's errors carry no useful type
                raise ModelError(f"EfficientNet-Lite0 failed on a batch of {len(pixels)}: {exc}") from exc
            for part, output in zip(parts, outputs, strict=True):
                part.append(np.asarray(output))
        return BackboneOutput(*(np.concatenate(part) for part in parts))


class OnnxIdentityHead:
    """The trained head from the backbone's identity descriptors to identity vectors (a second, small ONNX
    graph: it averages the photo's and its mirror image's descriptors and projects them)."""

    def __init__(self, model_file: Path = IDENTITY_HEAD_FILE, *, threads: int | None = None) -> None:
        self.metadata = _metadata(model_file) if model_file.exists() else {}
        self.session = _session(model_file, threads)

    def run(self, features: np.ndarray) -> np.ndarray:
        """Identity vectors (not yet normalised) for `BackboneOutput.identity_features` (N x 2 x 3264)."""
        try:
            return np.asarray(self.session.run(None, {"features": features.astype(np.float32)})[0])
        except Exception as exc:
            raise ModelError(f"the identity head failed: {exc}") from exc


class OnnxImageEmbedder:
    """EfficientNet-Lite0 features, optionally through the identity head, with the animal cropped first."""

    def __init__(
        self,
        *,
        backbone: OnnxBackbone | None = None,
        identity_head: OnnxIdentityHead | None = None,
        crop_animal: bool = True,
    ) -> None:
        self.backbone = backbone or OnnxBackbone()
        self.identity_head = identity_head
        self.crop_animal = crop_animal
        if identity_head is None:
            self._info = ModelInfo(name=GENERIC_MODEL_NAME, version=GENERIC_MODEL_VERSION, dimension=1280)
        else:
            meta = identity_head.metadata
            thresholds = dict(meta.get("thresholds", {}))  # type: ignore[call-overload]
            self._info = ModelInfo(
                name=str(meta["name"]),
                version=str(meta["version"]),
                dimension=int(meta["dimension"]),  # type: ignore[call-overload]
                automatch_min_similarity=thresholds.get("automatch_min_similarity"),
                search_min_similarity=thresholds.get("search_min_similarity"),
            )

    @property
    def info(self) -> ModelInfo:
        """Name, version and dimension of this embedder's vectors."""
        return self._info

    def embed(self, images: Sequence[ImageInput]) -> list[ImageEmbedding]:
        """Decode, find the animal, embed; one result per input in order."""
        if not images:
            return []
        photos = [decode_image(image, index=index) for index, image in enumerate(images)]
        whole = self.backbone.run(to_pixels(photos))
        features = whole.features.copy()
        identity_features = whole.identity_features.copy()
        probabilities = softmax(whole.logits)
        boxes: list[tuple[int, int, int, int] | None] = [None] * len(photos)
        if self.crop_animal:
            crops: list[Image.Image] = []
            cropped_at: list[int] = []
            for index, photo in enumerate(photos):
                _, _, p_animal = species_and_breeds(probabilities[index])
                box = animal_box(whole.animal_map[index], p_animal)
                in_photo = box_in_photo(box, photo.width, photo.height) if box is not None else None
                if in_photo is not None:
                    boxes[index] = in_photo
                    crops.append(photo.crop(in_photo))
                    cropped_at.append(index)
            if crops:
                again = self.backbone.run(to_pixels(crops))
                features[cropped_at] = again.features
                identity_features[cropped_at] = again.identity_features
                # Tags come from whichever pass is surer there is a dog or cat: usually the crop, but a
                # tight crop of a close-up can lose what made the whole photo a clear cat.
                for index, crop_probabilities in zip(cropped_at, softmax(again.logits), strict=True):
                    if species_and_breeds(crop_probabilities)[2] > species_and_breeds(probabilities[index])[2]:
                        probabilities[index] = crop_probabilities
        vectors = l2_normalise(self.identity_head.run(identity_features) if self.identity_head else features)
        results = []
        for index in range(len(photos)):
            species, breeds, _ = species_and_breeds(probabilities[index])
            results.append(ImageEmbedding(vector=vectors[index], species=species, breeds=breeds, crop_box=boxes[index]))
        return results


def load_local_embedder(
    *, identity: bool = True, crop_animal: bool = True, threads: int | None = None
) -> OnnxImageEmbedder:
    """The configured local model: the identity model when its head is shipped and wanted, else generic."""
    backbone = OnnxBackbone(threads=threads)
    head = OnnxIdentityHead(threads=threads) if identity and IDENTITY_HEAD_FILE.exists() else None
    return OnnxImageEmbedder(backbone=backbone, identity_head=head, crop_animal=crop_animal)
