"""The real EfficientNet-Lite0 ONNX model on real photos: preprocessing, vectors, tags, thresholds, failures."""

from __future__ import annotations

import io
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageOps

from pawgle.embeddings.model.onnx_embedder import BACKBONE_FILE, OnnxBackbone, OnnxImageEmbedder
from pawgle.embeddings.model.port import InvalidImageError, ModelError
from pawgle.embeddings.model.preprocess import decode_image, to_pixels

from .conftest import DATA, photo_bytes

REFERENCE = DATA / "reference_dog_afhq_features.npy"
DOG = "dog_afhq_flickr_000054.jpg"
CATS = ("cat_chelsea.jpg", "cat_afhq_flickr_000076.jpg")


def recropped_rescaled_mirrored(photo: bytes) -> bytes:
    """The same photo as another upload would give it: cropped off-centre, smaller, mirrored, re-encoded."""
    image = Image.open(io.BytesIO(photo)).convert("RGB")
    width, height = image.size
    image = image.crop((int(width * 0.08), int(height * 0.04), int(width * 0.97), int(height * 0.93)))
    image = ImageOps.mirror(image.resize((int(image.width * 0.7), int(image.height * 0.7))))
    out = io.BytesIO()
    image.save(out, format="JPEG", quality=80)
    return out.getvalue()


def test_features_equal_the_committed_reference_vector(backbone: OnnxBackbone) -> None:
    features = backbone.run(to_pixels([decode_image(photo_bytes(DOG))])).features[0]
    reference = np.load(REFERENCE)
    cosine = float(features @ reference / (np.linalg.norm(features) * np.linalg.norm(reference)))
    assert cosine > 1 - 1e-6


def test_onnx_features_equal_torch_features(backbone: OnnxBackbone) -> None:
    torch = pytest.importorskip("torch")
    pytest.importorskip("efficientnet_lite_pytorch")
    import sys

    sys.path.insert(0, str(Path(__file__).parents[1] / "training"))
    from export_backbone import BackboneForExport, load_network

    pixels = to_pixels([decode_image(photo_bytes(name)) for name in (DOG, *CATS)])
    with torch.no_grad():
        expected = BackboneForExport(load_network()).eval()(torch.from_numpy(pixels))[0].numpy()
    actual = backbone.run(pixels).features
    cosines = np.sum(expected * actual, axis=1) / (np.linalg.norm(expected, axis=1) * np.linalg.norm(actual, axis=1))
    assert np.all(cosines > 1 - 1e-6)


def test_the_graph_describes_each_photo_and_its_mirror_image(backbone: OnnxBackbone) -> None:
    pixels = to_pixels([decode_image(photo_bytes(DOG))])
    mirrored = np.ascontiguousarray(pixels[:, :, :, ::-1])
    plain, flipped = backbone.run(pixels), backbone.run(mirrored)
    assert plain.identity_features.shape == (1, 2, 3264)
    # The photo's mirror half is the mirrored photo's own half, and the first part is the generic features.
    np.testing.assert_allclose(plain.identity_features[0, 1], flipped.identity_features[0, 0], rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(plain.identity_features[0, 0, :1280], plain.features[0], rtol=1e-5, atol=1e-5)
    assert not np.allclose(plain.identity_features[0, 0], plain.identity_features[0, 1], atol=1e-3)


@pytest.mark.parametrize("model", ["generic", "identity"])
def test_vectors_are_unit_length_float32_of_the_model_dimension(model: str, request: pytest.FixtureRequest) -> None:
    embedder: OnnxImageEmbedder = request.getfixturevalue(f"{model}_embedder")
    results = embedder.embed([photo_bytes(DOG), photo_bytes(CATS[0])])
    for result in results:
        assert result.vector.dtype == np.float32
        assert result.vector.shape == (embedder.info.dimension,)
        assert abs(float(np.linalg.norm(result.vector)) - 1) < 1e-5


def test_species_and_breed_tags_come_from_the_imagenet_head(generic_embedder: OnnxImageEmbedder) -> None:
    dog, chelsea, afhq_cat, cup = generic_embedder.embed([photo_bytes(n) for n in (DOG, *CATS, "coffee_cup.jpg")])
    assert (dog.species, chelsea.species, afhq_cat.species, cup.species) == ("dog", "cat", "cat", "other")
    assert "terrier" in dog.breeds[0].label.lower()
    assert cup.breeds == ()


def test_a_recropped_rescaled_mirrored_copy_scores_above_the_automatch_threshold(
    identity_embedder: OnnxImageEmbedder,
) -> None:
    threshold = identity_embedder.info.automatch_min_similarity
    assert threshold is not None
    for name in (DOG, *CATS):
        original, copy = identity_embedder.embed([photo_bytes(name), recropped_rescaled_mirrored(photo_bytes(name))])
        assert float(original.vector @ copy.vector) >= threshold, name


def test_a_dog_and_a_cat_score_below_the_search_threshold(identity_embedder: OnnxImageEmbedder) -> None:
    threshold = identity_embedder.info.search_min_similarity
    assert threshold is not None
    dog, *cats = identity_embedder.embed([photo_bytes(n) for n in (DOG, *CATS)])
    for cat in cats:
        assert float(dog.vector @ cat.vector) < threshold


def test_the_identity_model_has_its_own_name_and_version(
    generic_embedder: OnnxImageEmbedder, identity_embedder: OnnxImageEmbedder
) -> None:
    assert generic_embedder.info.key == "efficientnet-lite0-imagenet-1"
    assert identity_embedder.info.key != generic_embedder.info.key
    assert 256 <= identity_embedder.info.dimension <= 512


def test_the_animal_is_cropped_out_of_a_wide_photo(generic_embedder: OnnxImageEmbedder) -> None:
    # The cat in the bottom-left corner of a plain scene three times as wide and twice as high.
    cat = Image.open(io.BytesIO(photo_bytes("cat_afhq_flickr_000076.jpg"))).convert("RGB")
    canvas = Image.new("RGB", (cat.width * 3, cat.height * 2), (200, 200, 190))
    canvas.paste(cat, (0, cat.height))
    out = io.BytesIO()
    canvas.save(out, format="JPEG")
    (result,) = generic_embedder.embed([out.getvalue()])
    assert result.crop_box is not None
    left, top, right, _ = result.crop_box
    assert left < cat.width * 0.3
    assert right < cat.width * 1.6
    assert top > cat.height * 0.5
    assert result.species == "cat"


def test_an_undecodable_photo_is_an_invalid_image_error_naming_its_position(
    generic_embedder: OnnxImageEmbedder,
) -> None:
    with pytest.raises(InvalidImageError, match="could not be decoded") as raised:
        generic_embedder.embed([photo_bytes(DOG), b"this is not a jpeg"])
    assert raised.value.index == 1


def test_a_truncated_model_file_is_a_model_error_not_a_vector(tmp_path: Path) -> None:
    broken = tmp_path / BACKBONE_FILE.name
    broken.write_bytes(BACKBONE_FILE.read_bytes()[:1_000_000])
    shutil.copy(BACKBONE_FILE.with_suffix(".json"), broken.with_suffix(".json"))
    with pytest.raises(ModelError, match="sha256"):
        OnnxBackbone(broken)


def test_a_corrupt_graph_is_a_model_error_not_a_vector(tmp_path: Path) -> None:
    import hashlib
    import json

    broken = tmp_path / BACKBONE_FILE.name
    broken.write_bytes(b"\x08\x07garbage that is no onnx graph")
    record = json.loads(BACKBONE_FILE.with_suffix(".json").read_text())
    record["sha256"] = hashlib.sha256(broken.read_bytes()).hexdigest()
    broken.with_suffix(".json").write_text(json.dumps(record))
    with pytest.raises(ModelError, match="onnxruntime could not load"):
        OnnxBackbone(broken)


def test_a_model_that_fails_at_run_time_raises_model_error(backbone: OnnxBackbone) -> None:
    wrong_shape = np.zeros((1, 3, 100, 100), dtype=np.float32)
    with pytest.raises(ModelError, match="EfficientNet-Lite0 failed"):
        backbone.run(wrong_shape)
