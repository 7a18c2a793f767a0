"""A Gradio app (deployable as a Hugging Face Space) serving PawGle's image model over the original's API.

Endpoints, the same as the original Space's so `GradioImageEmbedder` works against either:
- `/extract_features_api` (one image) -> JSON string `{"success", "message", "features", "feature_length"}`,
  or `{"success": false, "error", "features": null}`;
- `/classify_image` (one image) -> `Prediction: Dog\\nConfidence: 0.9812` (Dog or Cat).

The model is the local ONNX one (`pawgle.embeddings.model`, onnxruntime only). Settings from the
environment: PAWGLE_SPACE_MODEL = identity (default) or generic; PAWGLE_SPACE_MODEL_DIR to load the ONNX
files from another folder; GRADIO_SERVER_NAME / GRADIO_SERVER_PORT as usual for Gradio.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

import gradio as gr
from PIL import Image

from pawgle.embeddings.model.imagenet import CAT_CLASSES, DOG_CLASSES, softmax
from pawgle.embeddings.model.onnx_embedder import (
    BACKBONE_FILE,
    IDENTITY_HEAD_FILE,
    OnnxBackbone,
    OnnxIdentityHead,
    OnnxImageEmbedder,
)
from pawgle.embeddings.model.port import ModelError
from pawgle.embeddings.model.preprocess import decode_image, to_pixels

logger = logging.getLogger("pawgle.space")


def load_embedder() -> tuple[OnnxImageEmbedder | None, str]:
    """The configured embedder, or None and the reason (the app still starts and reports it per call)."""
    folder = Path(os.environ.get("PAWGLE_SPACE_MODEL_DIR", str(BACKBONE_FILE.parent)))
    try:
        backbone = OnnxBackbone(folder / BACKBONE_FILE.name)
        head = None
        if os.environ.get("PAWGLE_SPACE_MODEL", "identity") == "identity":
            head = OnnxIdentityHead(folder / IDENTITY_HEAD_FILE.name)
        return OnnxImageEmbedder(backbone=backbone, identity_head=head), "loaded"
    except ModelError as exc:
        logger.error("model not loaded: %s", exc)
        return None, f"Model not loaded: {exc}"


EMBEDDER, STATUS = load_embedder()


def extract_features_api(image: Image.Image | None) -> str:
    """The photo's unit vector as the original Space's JSON answer."""
    if image is None:
        return json.dumps({"success": False, "error": "No image provided", "features": None})
    if EMBEDDER is None:
        return json.dumps({"success": False, "error": STATUS, "features": None})
    try:
        embedding = EMBEDDER.embed([image])[0]
    except ModelError as exc:
        return json.dumps({"success": False, "error": str(exc), "features": None})
    features = [float(x) for x in embedding.vector]
    return json.dumps(
        {
            "success": True,
            "message": f"Features extracted successfully ({EMBEDDER.info.key})",
            "features": features,
            "feature_length": len(features),
        }
    )


def classify_image(image: Image.Image | None) -> str:
    """`Prediction: Dog|Cat` and its confidence, as the original Space answers."""
    if image is None:
        return "Please upload an image"
    if EMBEDDER is None:
        return STATUS
    try:
        output = EMBEDDER.backbone.run(to_pixels([decode_image(image)]))
    except ModelError as exc:
        return f"Error during prediction: {exc}"
    probabilities = softmax(output.logits)[0]
    p_dog = float(probabilities[DOG_CLASSES.start : DOG_CLASSES.stop].sum())
    p_cat = float(probabilities[CAT_CLASSES.start : CAT_CLASSES.stop].sum())
    label, confidence = ("Dog", p_dog) if p_dog >= p_cat else ("Cat", p_cat)
    return f"Prediction: {label}\nConfidence: {confidence:.4f}"


with gr.Blocks(title="PawGle image model") as demo:
    gr.Markdown(f"# PawGle image model\n\nStatus: {STATUS}")
    with gr.Tab("Feature Extraction"):
        features_input = gr.Image(type="pil", label="Photo")
        features_output = gr.Textbox(label="Features (JSON)", lines=8)
        gr.Button("Extract features").click(
            extract_features_api, inputs=features_input, outputs=features_output, api_name="extract_features_api"
        )
    with gr.Tab("Image Classification"):
        classify_input = gr.Image(type="pil", label="Photo")
        classify_output = gr.Textbox(label="Prediction", lines=2)
        gr.Button("Classify").click(
            classify_image, inputs=classify_input, outputs=classify_output, api_name="classify_image"
        )


if __name__ == "__main__":
    demo.launch(server_name=os.environ.get("GRADIO_SERVER_NAME", "0.0.0.0"), show_error=True)
