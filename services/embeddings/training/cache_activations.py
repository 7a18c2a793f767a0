"""Cache the frozen backbone's activations at the input of block 14, for fine-tuning the last blocks.

Fine-tuning blocks 14-15 and the 1x1 head conv of EfficientNet-Lite0 needs, per photo, block 14's input
(192 x 7 x 7) and the pooled outputs of blocks 10 and 7 (the frozen parts of the descriptor), of the photo and
of its mirror image. They are computed once, by the shipped backbone's frozen blocks 0-13 exported to a
temporary ONNX graph (`FrozenFront`, under training/.cache/: onnxruntime runs it several times faster than
torch on this CPU), for the clean view and K augmented views of every photo (augment.py, seeded by photo
and view as in cache_features.py), and kept as float16 under training/.cache/ (git-ignored): 158 MB a view,
one file per view (resumable).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import onnxruntime as ort
import torch
from PIL import Image
from torch import nn

from pawgle.embeddings.model.preprocess import to_pixels

sys.path.insert(0, str(Path(__file__).parent))
from cache_features import CACHE, view_of  # noqa: E402
from export_backbone import PIXEL_MEAN, PIXEL_STD, load_network  # noqa: E402
from identity_data import DEFAULT_DATA, list_identity_photos  # noqa: E402

BATCH = 16  # photos per call; the graph runs each with its mirror image


class FrozenFront(nn.Module):
    """EfficientNet-Lite0's stem and blocks 0-13 as the shipped graph runs them (same normalisation, photo and
    mirror image in one batch): raw pixels in; block 14's input and pooled blocks 10 and 7 out."""

    def __init__(self, network: nn.Module) -> None:
        super().__init__()
        self.network = network

    def forward(self, pixels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        count = pixels.shape[0]
        net = self.network
        x = torch.cat([pixels, torch.flip(pixels, dims=[3])])
        x = net._swish(net._bn0(net._conv_stem((x - PIXEL_MEAN) / PIXEL_STD)))
        pooled = {}
        for index, block in enumerate(net._blocks[:14]):
            x = block(x, drop_connect_rate=None)
            if index in (10, 7):
                pooled[index] = x.mean(dim=(2, 3))
        means = torch.cat([pooled[10], pooled[7]], dim=1)
        return torch.stack([x[:count], x[count:]], dim=1), torch.stack([means[:count], means[count:]], dim=1)


def front_session(threads: int) -> ort.InferenceSession:
    """onnxruntime on the frozen front, exported once to training/.cache/."""
    graph = CACHE / "frozen_front.onnx"
    if not graph.exists():
        torch.onnx.export(
            FrozenFront(load_network()).eval(),
            (torch.rand(2, 3, 224, 224) * 255,),
            str(graph),
            input_names=["pixels"],
            output_names=["identity_map", "identity_pooled"],
            dynamic_axes={name: {0: "batch"} for name in ("pixels", "identity_map", "identity_pooled")},
            opset_version=17,
            dynamo=False,
        )
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return ort.InferenceSession(str(graph), sess_options=options, providers=["CPUExecutionProvider"])


def map_path(data_name: str, view: int) -> Path:
    """Block 14's input for one view of every photo: photo x (plain, mirrored) x 192 x 7 x 7, float16."""
    return CACHE / f"{data_name}-b13-view{view}.npy"


def pooled_path(data_name: str, view: int) -> Path:
    """Blocks 10 and 7, average pooled: photo x (plain, mirrored) x (112 + 80), float16."""
    return CACHE / f"{data_name}-b10b7-view{view}.npy"


def compute(data: Path, views: int, threads: int) -> None:
    """Write every missing view's files."""
    listing = list_identity_photos(data)
    CACHE.mkdir(exist_ok=True)
    session: ort.InferenceSession | None = None
    for view in range(views + 1):
        target = map_path(data.name, view)
        if target.exists():
            continue
        session = session or front_session(threads)
        count = len(listing.paths)
        maps = np.zeros((count, 2, 192, 7, 7), dtype=np.float16)
        pooled = np.zeros((count, 2, 192), dtype=np.float16)
        started = time.perf_counter()
        for start in range(0, count, BATCH):
            chunk = range(start, min(start + BATCH, count))
            photos = [view_of(Image.open(listing.paths[i]).convert("RGB"), i, view) for i in chunk]
            block_map, block_means = session.run(None, {"pixels": to_pixels(photos)})
            maps[chunk.start : chunk.stop] = block_map
            pooled[chunk.start : chunk.stop] = block_means
            if start % 800 == 0:
                print(f"view {view}: {start}/{count} photos, {time.perf_counter() - started:.0f} s", flush=True)  # noqa: T201
        np.save(pooled_path(data.name, view), pooled)
        np.save(target, maps)
        print(f"wrote {target.name} in {time.perf_counter() - started:.0f} s", flush=True)  # noqa: T201


def load(data: Path, views: int, threads: int = 2) -> tuple[list[str], list[np.ndarray], list[np.ndarray]]:
    """(identities, [block 13 maps per view], [pooled blocks 10 and 7 per view]), memory-mapped."""
    compute(data, views, threads)
    identities = [str(dog) for dog in list_identity_photos(data).identities]
    maps = [np.load(map_path(data.name, view), mmap_mode="r") for view in range(views + 1)]
    pooled = [np.load(pooled_path(data.name, view)) for view in range(views + 1)]
    return identities, maps, pooled


def main() -> None:
    """Command line: --data FOLDER --views K --threads T."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--views", type=int, default=4)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    compute(args.data.resolve(), args.views, args.threads)


if __name__ == "__main__":
    main()
