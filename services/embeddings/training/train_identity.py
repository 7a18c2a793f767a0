"""Train the identity head on cached EfficientNet-Lite0 features and export it to ONNX.

`make train-identity` runs the whole chain: cache the backbone features (cache_features.py, once), train
this head with a CosFace margin loss on the training dogs, score the held-out dogs after every epoch,
calibrate the thresholds on them, and write `identity_head.onnx` and its record beside the backbone.
Torch is needed here only; the service runs the exported graph with onnxruntime.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

from pawgle.embeddings.model.onnx_embedder import IDENTITY_HEAD_FILE
from pawgle.embeddings.model.retrieval import RetrievalScores, retrieval_scores

sys.path.insert(0, str(Path(__file__).parent))
from cache_features import load  # noqa: E402
from calibration import calibrate_thresholds  # noqa: E402
from export_backbone import DESCRIPTOR_PARTS  # noqa: E402
from identity_data import DEFAULT_DATA, split_identities  # noqa: E402

RUNS = Path(__file__).parent / "runs"  # experiments (--no-export), git-ignored
RESULTS = Path(__file__).parent / "results"  # the shipped head's curves, committed beside the model
MODEL_NAME = "efficientnet-lite0-dogid"
MODEL_VERSION = "2"


class IdentityHead(nn.Module):
    """The backbone's identity descriptors (N x 2 x 3264: photo, mirror image) to a unit identity vector.

    `describe` is fixed: the chosen parts (DESCRIPTOR_PARTS), each signed-power scaled and normalised, joined
    and normalised, then the photo's and its mirror image's averaged (test-time flip averaging). The trained
    part is a linear projection, started from the closed-form LDA projection and fine-tuned with CosFace."""

    def __init__(self, parts: list[str], power: float, width: int, dimension: int, dropout: float) -> None:
        super().__init__()
        self.bounds = [DESCRIPTOR_PARTS[name] for name in parts]
        self.power = power
        self.dropout = nn.Dropout(dropout)
        self.projection = nn.Linear(width, dimension)

    def describe(self, descriptors: torch.Tensor) -> torch.Tensor:
        chunks = []
        for start, stop in self.bounds:
            chunk = descriptors[:, :, start:stop]
            if self.power != 1.0:
                chunk = torch.sign(chunk) * chunk.abs().pow(self.power)
            chunks.append(chunk / chunk.norm(dim=2, keepdim=True).clamp_min(1e-12))
        joined = torch.cat(chunks, dim=2)
        joined = joined / joined.norm(dim=2, keepdim=True).clamp_min(1e-12)
        averaged = joined.mean(dim=1)
        return averaged / averaged.norm(dim=1, keepdim=True).clamp_min(1e-12)

    def project(self, described: torch.Tensor) -> torch.Tensor:
        embedding = self.projection(self.dropout(described))
        return embedding / embedding.norm(dim=1, keepdim=True).clamp_min(1e-12)

    def forward(self, descriptors: torch.Tensor) -> torch.Tensor:
        return self.project(self.describe(descriptors))


def lda_projection(
    features: np.ndarray, labels: np.ndarray, dimension: int, shrinkage: float
) -> tuple[np.ndarray, np.ndarray]:
    """(mean, projection 1280 x D): whiten the within-dog scatter (shrunk towards its average variance, as
    700 dogs cannot pin down 1280 dimensions), then keep the D directions that separate dogs most."""
    features = features.astype(np.float64)
    mean = features.mean(axis=0)
    _, classes = np.unique(labels, return_inverse=True)
    class_means = np.zeros((classes.max() + 1, features.shape[1]))
    np.add.at(class_means, classes, features)
    class_means /= np.bincount(classes)[:, None]
    within = features - class_means[classes]
    scatter_within = within.T @ within / len(features)
    scatter_within += shrinkage * np.trace(scatter_within) / features.shape[1] * np.eye(features.shape[1])
    between = class_means - mean
    scatter_between = between.T @ between / len(class_means)
    values, vectors = np.linalg.eigh(scatter_within)
    whitening = vectors / np.sqrt(values)
    values_between, directions = np.linalg.eigh(whitening.T @ scatter_between @ whitening)
    order = np.argsort(values_between)[::-1][:dimension]
    return mean, whitening @ directions[:, order]


class CosFaceLoss(nn.Module):
    """Large-margin cosine loss: the true class's cosine must beat the others by `margin`, scaled by `scale`."""

    def __init__(self, dimension: int, classes: int, scale: float, margin: float) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.randn(classes, dimension) * 0.01)
        self.scale = scale
        self.margin = margin

    def forward(self, embeddings: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        cosine = embeddings @ nn.functional.normalize(self.weight, dim=1).T
        margins = nn.functional.one_hot(labels, cosine.shape[1]) * self.margin
        logits = self.scale * (cosine - margins)
        accuracy = (cosine.argmax(dim=1) == labels).float().mean()
        return nn.functional.cross_entropy(logits, labels), accuracy


def embed(head: IdentityHead, described: np.ndarray) -> np.ndarray:
    """Head outputs for described (fixed-part) features, in eval mode."""
    head.eval()
    with torch.no_grad():
        return head.project(torch.from_numpy(described)).numpy()


def describe(head: IdentityHead, descriptors: np.ndarray) -> np.ndarray:
    """The head's fixed part on float16 cached descriptors, in chunks."""
    with torch.no_grad():
        return np.concatenate(
            [
                head.describe(torch.from_numpy(descriptors[start : start + 1024].astype(np.float32))).numpy()
                for start in range(0, len(descriptors), 1024)
            ]
        )


def unit(features: np.ndarray) -> np.ndarray:
    """Rows scaled to unit length."""
    features = features.astype(np.float32)
    return features / np.linalg.norm(features, axis=1, keepdims=True)


def train(args: argparse.Namespace) -> dict[str, object]:
    """Train, log curves, export; return the record written beside the ONNX file."""
    torch.manual_seed(args.seed)
    rng = np.random.default_rng(args.seed)
    torch.set_num_threads(args.threads)
    identities, views = load(args.data.resolve(), args.views)
    train_dogs, validation_dogs = split_identities(identities)
    train_rows = np.array([i for i, dog in enumerate(identities) if dog in train_dogs])
    val_rows = np.array([i for i, dog in enumerate(identities) if dog in validation_dogs])
    dog_index = {dog: position for position, dog in enumerate(sorted(train_dogs))}
    train_labels = np.array([dog_index[identities[i]] for i in train_rows])
    val_identities = [identities[i] for i in val_rows]

    generic = retrieval_scores(unit(views[0][val_rows, 0, :1280]), val_identities)
    print(f"generic features on the validation dogs: {generic.line()}", flush=True)  # noqa: T201
    parts = args.parts.split(",")
    width = sum(DESCRIPTOR_PARTS[name][1] - DESCRIPTOR_PARTS[name][0] for name in parts)
    head = IdentityHead(parts, args.power, width, args.dimension, args.dropout)
    val_described = describe(head, views[0][val_rows])
    # every training photo's every view, described: view x photo x width
    train_described = np.stack([describe(head, view[train_rows]) for view in views])
    described_scores = retrieval_scores(val_described, val_identities)
    print(f"described descriptors (no training): {described_scores.line()}", flush=True)  # noqa: T201

    # Start from the closed-form answer; the margin loss then fine-tunes it on the augmented views.
    mean, projection = lda_projection(
        train_described.reshape(-1, width), np.tile(train_labels, len(views)), args.dimension, args.shrinkage
    )
    loss_fn = CosFaceLoss(args.dimension, len(dog_index), args.scale, args.margin)
    with torch.no_grad():
        head.projection.weight.copy_(torch.from_numpy(projection.T.astype(np.float32)))
        head.projection.bias.copy_(torch.from_numpy(-(mean @ projection).astype(np.float32)))
        centres = np.zeros((len(dog_index), args.dimension), dtype=np.float32)
        np.add.at(centres, train_labels, embed(head, train_described[0]))
        loss_fn.weight.copy_(torch.from_numpy(centres))
    start = retrieval_scores(embed(head, val_described), val_identities)
    print(f"LDA start on the validation dogs: {start.line()}", flush=True)  # noqa: T201
    curves: list[dict[str, float]] = [score_row(0, float("nan"), float("nan"), start)]
    optimiser = torch.optim.AdamW(
        list(head.parameters()) + list(loss_fn.parameters()), lr=args.lr, weight_decay=args.weight_decay
    )
    steps_per_epoch = int(np.ceil(len(train_rows) / args.batch))
    schedule = torch.optim.lr_scheduler.OneCycleLR(
        optimiser, max_lr=args.lr, total_steps=max(args.epochs, 1) * steps_per_epoch, pct_start=0.1
    )
    labels = torch.from_numpy(train_labels)
    started = time.perf_counter()
    for epoch in range(1, args.epochs + 1):
        head.train()
        order = rng.permutation(len(train_rows))
        # Every epoch sees each training photo once, as one of its cached views picked at random.
        picked_views = rng.integers(0, len(views), size=len(train_rows))
        total_loss, total_accuracy = 0.0, 0.0
        for first in range(0, len(order), args.batch):
            picked = order[first : first + args.batch]
            batch = torch.from_numpy(train_described[picked_views[picked], picked])
            loss, accuracy = loss_fn(head.project(batch), labels[picked])
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
            schedule.step()
            total_loss += float(loss) * len(picked)
            total_accuracy += float(accuracy) * len(picked)
        scores = retrieval_scores(embed(head, val_described), val_identities)
        curves.append(score_row(epoch, total_loss / len(order), total_accuracy / len(order), scores))
        print(f"epoch {epoch}: loss {curves[-1]['train_loss']}, val {scores.line()}", flush=True)  # noqa: T201
    write_curves(curves, RUNS if args.no_export else RESULTS)
    identity_vectors = embed(head, val_described)
    final = retrieval_scores(identity_vectors, val_identities)
    thresholds = calibrate_thresholds(identity_vectors, val_identities)
    head.eval()
    summary: dict[str, object] = {
        "generic": generic.line(),
        "described": described_scores.line(),
        "lda_start": start.line(),
        "identity": final.line(),
    }
    if args.no_export:
        return {"validation": summary, "thresholds": thresholds}
    export_head(head, IDENTITY_HEAD_FILE, views[0][:2].astype(np.float32))
    record: dict[str, object] = {
        "name": MODEL_NAME,
        "version": MODEL_VERSION,
        "dimension": args.dimension,
        "file": IDENTITY_HEAD_FILE.name,
        "sha256": hashlib.sha256(IDENTITY_HEAD_FILE.read_bytes()).hexdigest(),
        "bytes": IDENTITY_HEAD_FILE.stat().st_size,
        "backbone": "efficientnet_lite0.onnx, output identity_features (N x 2 x 3264, photo and mirror image)",
        "training_data": args.data.resolve().name,
        "training_identities": len(train_dogs),
        "validation_identities": sorted(validation_dogs),
        "hyperparameters": {
            key: getattr(args, key)
            for key in (
                "views",
                "parts",
                "power",
                "epochs",
                "batch",
                "lr",
                "weight_decay",
                "dimension",
                "dropout",
                "scale",
                "margin",
                "shrinkage",
                "seed",
            )
        },
        "validation": summary,
        "thresholds": thresholds,
        "training_seconds": round(time.perf_counter() - started, 1),
    }
    IDENTITY_HEAD_FILE.with_suffix(".json").write_text(json.dumps(record, indent=2) + "\n")
    return record


def score_row(epoch: int, loss: float, accuracy: float, scores: RetrievalScores) -> dict[str, float]:
    """One line of the learning curves (epoch 0 = the LDA start, before any margin-loss step)."""
    return {
        "epoch": epoch,
        "train_loss": round(loss, 4),
        "train_accuracy": round(accuracy, 4),
        "val_instance_top1": round(scores.instance_top1, 4),
        "val_instance_top5": round(scores.instance_top5, 4),
        "val_gallery_top1": round(scores.gallery_top1, 4),
        "val_gallery_top5": round(scores.gallery_top5, 4),
    }


def export_head(head: IdentityHead, target: Path, example: np.ndarray) -> None:
    """The head as a small ONNX graph: `features` (N x 2 x 3264) in, `embedding` (N x D, unit length) out."""
    torch.onnx.export(
        head,
        (torch.from_numpy(example),),
        str(target),
        input_names=["features"],
        output_names=["embedding"],
        dynamic_axes={"features": {0: "batch"}, "embedding": {0: "batch"}},
        opset_version=17,
        dynamo=False,
    )


def write_curves(curves: list[dict[str, float]], folder: Path) -> None:
    """Learning curves as CSV and, when matplotlib is installed, a PNG."""
    folder.mkdir(parents=True, exist_ok=True)
    with (folder / "identity_curves.csv").open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(curves[0]))
        writer.writeheader()
        writer.writerows(curves)
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return
    epochs = [row["epoch"] for row in curves]
    figure, (left, right) = plt.subplots(1, 2, figsize=(11, 4))
    left.plot(epochs, [row["train_loss"] for row in curves], label="training loss (CosFace)")
    left.set_xlabel("epoch")
    left.legend()
    for key in ("val_instance_top1", "val_instance_top5", "val_gallery_top1", "val_gallery_top5"):
        right.plot(epochs, [row[key] for row in curves], label=key.removeprefix("val_"))
    right.set_xlabel("epoch")
    right.set_title("held-out dogs")
    right.legend()
    figure.tight_layout()
    figure.savefig(folder / "identity_curves.png", dpi=90)


def main() -> None:
    """Command line; the defaults are the shipped model's settings."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--views", type=int, default=4)
    parser.add_argument("--parts", default="last_gem,b15_mean,b14_mean,b10_mean,b7_mean")
    parser.add_argument("--power", type=float, default=1.0)
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--lr", type=float, default=3e-4)
    parser.add_argument("--weight-decay", type=float, default=5e-4)
    parser.add_argument("--dimension", type=int, default=384)
    parser.add_argument("--dropout", type=float, default=0.1)
    parser.add_argument("--scale", type=float, default=30.0)
    parser.add_argument("--margin", type=float, default=0.35)
    parser.add_argument("--shrinkage", type=float, default=1.0)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--no-export", action="store_true", help="train and score only (for trying settings)")
    record = train(parser.parse_args())
    print(json.dumps(record["validation"], indent=2))  # noqa: T201
    print(json.dumps(record["thresholds"], indent=2))  # noqa: T201


if __name__ == "__main__":
    main()
