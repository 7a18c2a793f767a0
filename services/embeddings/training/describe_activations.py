"""Run the frozen last blocks (14, 15, head conv) over the cached block-14 inputs, with onnxruntime.

For the cheaper experiments on top of cache_activations.py: per view, the version 2 descriptor parts
(GeM of the last map, pooled blocks 15, 14; blocks 10 and 7 come from the cache), the last map GeM-pooled
in 2 x 2 cells (spatial pooling of the aligned faces) and block 15's output map (the input of the head
conv, for fine-tuning that conv alone). Torch runs these blocks about ten times slower than onnxruntime on
this CPU, so the frozen pass is exported once to a temporary ONNX file under training/.cache/.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import onnxruntime as ort
import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).parent))
from cache_activations import map_path  # noqa: E402
from cache_features import CACHE  # noqa: E402
from export_backbone import gem, load_network  # noqa: E402
from identity_data import DEFAULT_DATA  # noqa: E402

CELLS = (slice(0, 4), slice(3, 7))


class FrozenTail(nn.Module):
    """Blocks 14, 15 and the head conv, frozen: 2N x 192 x 7 x 7 in; GeM, b15 mean, b14 mean, 2x2 GeM
    cells of the last map and block 15's map out."""

    def __init__(self, network: nn.Module) -> None:
        super().__init__()
        self.network = network

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        net = self.network
        after14 = net._blocks[14](x, drop_connect_rate=None)
        after15 = net._blocks[15](after14, drop_connect_rate=None)
        last = net._swish(net._bn1(net._conv_head(after15)))
        # 2 x 2 cells of the 7 x 7 map, overlapping on the middle row and column (rows and columns 0-3, 3-6)
        cells = torch.stack([gem(last[:, :, rows, cols]) for rows in CELLS for cols in CELLS], dim=1)
        parts = (gem(last), after15.mean(dim=(2, 3)), after14.mean(dim=(2, 3)))
        return torch.cat(parts, dim=1), cells, after15


def tail_path(data_name: str, view: int, what: str) -> Path:
    """`desc` (N x 2 x 1792), `cells` (N x 2 x 4 x 1280) or `b15` (N x 2 x 320 x 7 x 7), float16."""
    return CACHE / f"{data_name}-{what}-view{view}.npy"


def compute(data: Path, views: int, threads: int) -> None:
    """Write every missing view's tail outputs."""
    graph = CACHE / "frozen_tail.onnx"
    if not graph.exists():
        torch.onnx.export(
            FrozenTail(load_network()).eval(),
            (torch.rand(4, 192, 7, 7),),
            str(graph),
            input_names=["x"],
            output_names=["desc", "cells", "b15"],
            dynamic_axes={name: {0: "batch"} for name in ("x", "desc", "cells", "b15")},
            opset_version=17,
            dynamo=False,
        )
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    session = ort.InferenceSession(str(graph), sess_options=options, providers=["CPUExecutionProvider"])
    for view in range(views + 1):
        if tail_path(data.name, view, "b15").exists() or not map_path(data.name, view).exists():
            continue
        maps = np.load(map_path(data.name, view), mmap_mode="r")
        count = len(maps)
        out = {
            "desc": np.zeros((count, 2, 1792), np.float16),
            "cells": np.zeros((count, 2, 4, 1280), np.float16),
            "b15": np.zeros((count, 2, 320, 7, 7), np.float16),
        }
        started = time.perf_counter()
        for start in range(0, count, 32):
            chunk = np.asarray(maps[start : start + 32], np.float32)
            n = len(chunk)
            results = session.run(None, {"x": chunk.reshape(n * 2, 192, 7, 7)})
            for name, value in zip(("desc", "cells", "b15"), results, strict=True):
                out[name][start : start + n] = value.reshape(n, 2, *value.shape[1:])
        for name, value in out.items():
            np.save(tail_path(data.name, view, name), value)
        print(f"view {view}: {time.perf_counter() - started:.0f} s", flush=True)  # noqa: T201


def main() -> None:
    """Command line: --views K --threads T."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--views", type=int, default=4)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    compute(args.data.resolve(), args.views, args.threads)


if __name__ == "__main__":
    main()
