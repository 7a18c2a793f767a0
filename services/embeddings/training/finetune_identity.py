"""Experiment: fine-tune the head conv of EfficientNet-Lite0 (the 1x1 conv after block 15) with the head.

Blocks 0-13 are cached once (cache_activations.py) and blocks 14 and 15 run frozen over that cache once
(describe_activations.py); this trains, on the training dogs only, a copy of the head conv together with
version 2's descriptor and projection (GeM of the last map + pooled blocks 15, 14, 10, 7, projection to 384)
with a CosFace margin loss, one cached view and one side (photo or mirror image) of each photo per epoch.
The projection starts from the closed-form LDA of the frozen descriptors, so epoch 0 is version 2's start.
The held-out dogs are scored after every epoch (photo and mirror averaged, as served): learning curves in
training/runs/ (git-ignored). `IdentityTail` also holds trainable blocks 14 and 15 (`describe`), for
fine-tuning them too on a machine with the CPU time for it (README, "Identity model").

`python services/embeddings/training/finetune_identity.py --views 1 --epochs 5 --curves training/runs/x`
"""

from __future__ import annotations

import argparse
import copy
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

from pawgle.embeddings.model.retrieval import retrieval_scores

sys.path.insert(0, str(Path(__file__).parent))
from cache_activations import pooled_path  # noqa: E402
from describe_activations import tail_path  # noqa: E402
from export_backbone import GEM_POWER, gem, load_network  # noqa: E402
from identity_data import DEFAULT_DATA, list_identity_photos, split_identities  # noqa: E402
from train_identity import CosFaceLoss, lda_projection, score_row, unit, write_curves  # noqa: E402

RUNS = Path(__file__).parent / "runs"  # experiments, git-ignored
PART_WIDTHS = {"last_gem": 1280, "b15_mean": 320, "b14_mean": 192, "b10_mean": 112, "b7_mean": 80}


class IdentityTail(nn.Module):
    """Blocks 14 and 15 and the head conv of EfficientNet-Lite0 (trainable copies), the version 2 descriptor
    (each part normalised, joined, normalised, photo and mirror averaged) and a linear projection.

    Inputs: `identity_map` N x 2 x 192 x 7 x 7 (block 13's output of the photo and its mirror image) and
    `identity_pooled` N x 2 x 192 (blocks 10 and 7, average pooled). Output: N x D unit vectors."""

    def __init__(self, network: nn.Module, dimension: int, drop_connect: float) -> None:
        super().__init__()
        self.block14 = copy.deepcopy(network._blocks[14])
        self.block15 = copy.deepcopy(network._blocks[15])
        self.conv_head = copy.deepcopy(network._conv_head)
        self.bn_head = copy.deepcopy(network._bn1)
        self.swish = copy.deepcopy(network._swish)
        self.drop_connect = drop_connect
        self.projection = nn.Linear(sum(PART_WIDTHS.values()), dimension)

    def train(self, mode: bool = True) -> IdentityTail:
        # Batch norm keeps ImageNet's statistics: batches of a few hundred face crops would only add noise.
        super().train(mode)
        for module in self.modules():
            if isinstance(module, nn.BatchNorm2d):
                module.eval()
        return self

    def describe(self, identity_map: torch.Tensor, identity_pooled: torch.Tensor) -> torch.Tensor:
        """N x 1984 unit descriptors (photo and mirror averaged)."""
        count = identity_map.shape[0]
        x = identity_map.reshape(count * 2, 192, 7, 7)
        rate = self.drop_connect if self.training else None
        after14 = self.block14(x, drop_connect_rate=rate)
        after15 = self.block15(after14, drop_connect_rate=rate)
        pooled = identity_pooled.reshape(count * 2, 192)
        described = self.describe_from_block15(after15, after14.mean(dim=(2, 3)), pooled)
        return nn.functional.normalize(described.reshape(count, 2, -1).mean(dim=1), dim=1, eps=1e-12)

    def describe_from_block15(
        self, after15: torch.Tensor, b14_mean: torch.Tensor, pooled: torch.Tensor
    ) -> torch.Tensor:
        """One image's unit descriptor from block 15's output map (what fine-tuning the head conv alone needs)."""
        last = self.swish(self.bn_head(self.conv_head(after15)))
        parts = [gem(last, GEM_POWER), after15.mean(dim=(2, 3)), b14_mean, pooled[:, :112], pooled[:, 112:]]
        joined = torch.cat([nn.functional.normalize(part, dim=1, eps=1e-12) for part in parts], dim=1)
        return nn.functional.normalize(joined, dim=1, eps=1e-12)

    def forward(self, identity_map: torch.Tensor, identity_pooled: torch.Tensor) -> torch.Tensor:
        embedding = self.projection(self.describe(identity_map, identity_pooled))
        return nn.functional.normalize(embedding, dim=1, eps=1e-12)

    def tail_parameters(self) -> list[nn.Parameter]:
        """The backbone blocks' weights (a lower learning rate than the projection's)."""
        return [p for name, p in self.named_parameters() if not name.startswith("projection")]


class BlockViews:
    """The cached frozen outputs of one view (describe_activations.py): block 15's map, block 14's mean,
    blocks 10 and 7 pooled; photo x (plain, mirrored) x ..., float16."""

    def __init__(self, data_name: str, view: int) -> None:
        self.b15 = np.load(tail_path(data_name, view, "b15"), mmap_mode="r")
        self.b14_mean = np.ascontiguousarray(np.load(tail_path(data_name, view, "desc"))[..., 1600:1792])
        self.pooled = np.load(pooled_path(data_name, view))

    def tensors(self, rows: np.ndarray, sides: np.ndarray) -> tuple[torch.Tensor, ...]:
        """float32 tensors of these photos, each on the given side (0 the photo, 1 its mirror image)."""
        return tuple(
            torch.from_numpy(np.asarray(array[rows, sides], dtype=np.float32))
            for array in (self.b15, self.b14_mean, self.pooled)
        )


def embed_rows(tail: IdentityTail, view: BlockViews, rows: np.ndarray) -> np.ndarray:
    """Embeddings of these photos, photo and mirror descriptors averaged as served, in eval mode."""
    tail.eval()
    out = []
    with torch.no_grad():
        for start in range(0, len(rows), 128):
            chunk = rows[start : start + 128]
            sides = [tail.describe_from_block15(*view.tensors(chunk, np.full(len(chunk), side))) for side in (0, 1)]
            described = nn.functional.normalize((sides[0] + sides[1]) / 2, dim=1, eps=1e-12)
            out.append(nn.functional.normalize(tail.projection(described), dim=1).numpy())
    return np.concatenate(out)


def finetune(args: argparse.Namespace) -> tuple[IdentityTail, dict[str, object]]:
    """Train the head conv and projection on the training dogs, score the validation dogs every epoch."""
    torch.manual_seed(args.seed)
    rng = np.random.default_rng(args.seed)
    torch.set_num_threads(args.threads)
    data = args.data.resolve()
    identities = list_identity_photos(data).identities
    views = [BlockViews(data.name, view) for view in range(args.views + 1)]
    train_dogs, validation_dogs = split_identities(identities)
    train_rows = np.array([i for i, dog in enumerate(identities) if dog in train_dogs])
    val_rows = np.array([i for i, dog in enumerate(identities) if dog in validation_dogs])
    dog_index = {dog: position for position, dog in enumerate(sorted(train_dogs))}
    train_labels = np.array([dog_index[identities[i]] for i in train_rows])
    val_identities = [identities[i] for i in val_rows]

    tail = IdentityTail(load_network(), args.dimension, args.drop_connect)
    for parameter in [*tail.block14.parameters(), *tail.block15.parameters(), *tail.bn_head.parameters()]:
        parameter.requires_grad_(False)
    started = time.perf_counter()
    # LDA start: the frozen descriptors (photo and mirror averaged) of every training photo's views.
    with torch.no_grad():
        tail.projection.weight.copy_(torch.eye(args.dimension, tail.projection.in_features))
        tail.projection.bias.zero_()
    described = []
    for view in views:
        tail.eval()
        with torch.no_grad():
            for start in range(0, len(train_rows), 256):
                chunk = train_rows[start : start + 256]
                sides = [tail.describe_from_block15(*view.tensors(chunk, np.full(len(chunk), s))) for s in (0, 1)]
                described.append(nn.functional.normalize((sides[0] + sides[1]) / 2, dim=1).numpy())
    described_all = np.concatenate(described)
    mean, projection = lda_projection(described_all, np.tile(train_labels, len(views)), args.dimension, args.shrinkage)
    loss_fn = CosFaceLoss(args.dimension, len(dog_index), args.scale, args.margin)
    with torch.no_grad():
        tail.projection.weight.copy_(torch.from_numpy(projection.T.astype(np.float32)))
        tail.projection.bias.copy_(torch.from_numpy(-(mean @ projection).astype(np.float32)))
        centres = np.zeros((len(dog_index), args.dimension), dtype=np.float32)
        np.add.at(centres, train_labels, unit((described_all[: len(train_rows)] - mean) @ projection))
        loss_fn.weight.copy_(torch.from_numpy(centres))
    start = retrieval_scores(embed_rows(tail, views[0], val_rows), val_identities)
    print(f"LDA start ({time.perf_counter() - started:.0f} s): {start.line()}", flush=True)  # noqa: T201
    curves = [score_row(0, float("nan"), float("nan"), start)]
    optimiser = torch.optim.AdamW(
        [
            {"params": list(tail.conv_head.parameters()), "lr": args.tail_lr},
            {"params": list(tail.projection.parameters()) + list(loss_fn.parameters()), "lr": args.lr},
        ],
        weight_decay=args.weight_decay,
    )
    steps_per_epoch = int(np.ceil(len(train_rows) / args.batch))
    schedule = torch.optim.lr_scheduler.OneCycleLR(
        optimiser, max_lr=[args.tail_lr, args.lr], total_steps=max(args.epochs, 1) * steps_per_epoch, pct_start=0.15
    )
    labels = torch.from_numpy(train_labels)
    for epoch in range(1, args.epochs + 1):
        tail.train()
        order = rng.permutation(len(train_rows))
        # Every epoch sees each training photo once: one of its cached views, the photo or its mirror image.
        picked_views = rng.integers(0, len(views), size=len(train_rows))
        picked_sides = rng.integers(0, 2, size=len(train_rows))
        total_loss, total_accuracy, epoch_started = 0.0, 0.0, time.perf_counter()
        for first in range(0, len(order), args.batch):
            picked = order[first : first + args.batch]
            batches = [
                views[v].tensors(
                    train_rows[picked][picked_views[picked] == v], picked_sides[picked][picked_views[picked] == v]
                )
                for v in range(len(views))
            ]
            batch_labels = torch.cat([labels[picked][picked_views[picked] == v] for v in range(len(views))])
            described_batch = torch.cat([tail.describe_from_block15(*batch) for batch in batches if len(batch[0])])
            embedding = nn.functional.normalize(
                tail.projection(nn.functional.dropout(described_batch, args.dropout)), dim=1
            )
            loss, accuracy = loss_fn(embedding, batch_labels)
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
            schedule.step()
            total_loss += float(loss) * len(picked)
            total_accuracy += float(accuracy) * len(picked)
        scores = retrieval_scores(embed_rows(tail, views[0], val_rows), val_identities)
        curves.append(score_row(epoch, total_loss / len(order), total_accuracy / len(order), scores))
        seconds = time.perf_counter() - epoch_started
        row = curves[-1]
        line = f"loss {row['train_loss']}, accuracy {row['train_accuracy']}, validation {scores.line()}"
        print(f"epoch {epoch} ({seconds:.0f} s): {line}", flush=True)  # noqa: T201
    write_curves(curves, args.curves or RUNS)
    tail.eval()
    summary: dict[str, object] = {
        "lda_start": start.line(),
        "identity": scores.line() if args.epochs else start.line(),
        "training_seconds": round(time.perf_counter() - started),
    }
    return tail, summary


def arguments() -> argparse.ArgumentParser:
    """The fine-tuning settings; the defaults are the shipped model's."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--views", type=int, default=1)
    parser.add_argument("--epochs", type=int, default=6)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--lr", type=float, default=3e-4)
    parser.add_argument("--tail-lr", type=float, default=1e-4)
    parser.add_argument("--weight-decay", type=float, default=5e-4)
    parser.add_argument("--drop-connect", type=float, default=0.0)
    parser.add_argument("--dropout", type=float, default=0.1)
    parser.add_argument("--dimension", type=int, default=384)
    parser.add_argument("--scale", type=float, default=30.0)
    parser.add_argument("--margin", type=float, default=0.35)
    parser.add_argument("--shrinkage", type=float, default=1.0)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--curves", type=Path, default=None)
    return parser


def main() -> None:
    """Command line: train and score (curves in runs/ unless --curves)."""
    print(json.dumps(finetune(arguments().parse_args())[1], indent=2))  # noqa: T201


if __name__ == "__main__":
    main()
