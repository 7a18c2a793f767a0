"""Experiment: an MLP branch with batch norm beside the LDA projection, trained with CosFace.

embedding = LDA(x) + W2 relu(BN(W1 x)), W2 starting at zero (so epoch 0 is the LDA start), on version 2's
descriptor from the describe_activations.py cache (clean + augmented views of the training dogs). Scores the
validation dogs after every epoch; never trains on them.
`python services/embeddings/training/mlp_experiment.py --views 1 --epochs 10`
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parent))
from identity_data import DEFAULT_DATA, list_identity_photos, split_identities  # noqa: E402
from spatial_experiments import descriptor  # noqa: E402
from train_identity import CosFaceLoss, lda_projection, unit  # noqa: E402

from pawgle.embeddings.model.retrieval import retrieval_scores  # noqa: E402


class LdaPlusMlp(nn.Module):
    """The LDA projection plus a zero-started MLP branch with batch norm."""

    def __init__(self, mean: np.ndarray, projection: np.ndarray, hidden: int, dropout: float) -> None:
        super().__init__()
        width, dimension = projection.shape
        self.linear = nn.Linear(width, dimension)
        with torch.no_grad():
            self.linear.weight.copy_(torch.from_numpy(projection.T.astype(np.float32)))
            self.linear.bias.copy_(torch.from_numpy(-(mean @ projection).astype(np.float32)))
        self.branch = nn.Sequential(
            nn.Dropout(dropout),
            nn.Linear(width, hidden),
            nn.BatchNorm1d(hidden),
            nn.ReLU(),
            nn.Linear(hidden, dimension),
        )
        nn.init.zeros_(self.branch[-1].weight)
        nn.init.zeros_(self.branch[-1].bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return nn.functional.normalize(self.linear(x) + self.branch(x), dim=1)


def main() -> None:
    """Command line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--views", type=int, default=1)
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--hidden", type=int, default=1024)
    parser.add_argument("--dropout", type=float, default=0.2)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    torch.manual_seed(args.seed)
    torch.set_num_threads(2)
    rng = np.random.default_rng(args.seed)
    name = DEFAULT_DATA.resolve().name
    identities = list_identity_photos(DEFAULT_DATA.resolve()).identities
    train_dogs, validation_dogs = split_identities(identities)
    train_rows = np.array([i for i, dog in enumerate(identities) if dog in train_dogs])
    val_rows = np.array([i for i, dog in enumerate(identities) if dog in validation_dogs])
    val_ids = [identities[i] for i in val_rows]
    dog_index = {dog: position for position, dog in enumerate(sorted(train_dogs))}
    described = [descriptor(view, name, 0.0, None) for view in range(args.views + 1)]
    features = np.concatenate([d[train_rows] for d in described]).astype(np.float32)
    labels = np.tile(np.array([dog_index[identities[i]] for i in train_rows]), len(described))
    mean, projection = lda_projection(features, labels, 384, 1.0)
    model = LdaPlusMlp(mean, projection, args.hidden, args.dropout)
    loss_fn = CosFaceLoss(384, len(dog_index), 30.0, 0.35)
    with torch.no_grad():
        centres = np.zeros((len(dog_index), 384), np.float32)
        np.add.at(centres, labels, unit((features - mean) @ projection))
        loss_fn.weight.copy_(torch.from_numpy(centres))
    val = torch.from_numpy(described[0][val_rows].astype(np.float32))

    def score() -> str:
        model.eval()
        with torch.no_grad():
            return retrieval_scores(model(val).numpy(), val_ids).line()

    print(f"epoch 0 (LDA): {score()}", flush=True)  # noqa: T201
    optimiser = torch.optim.AdamW([*model.parameters(), *loss_fn.parameters()], lr=args.lr, weight_decay=5e-4)
    x_all, y_all = torch.from_numpy(features), torch.from_numpy(labels)
    for epoch in range(1, args.epochs + 1):
        model.train()
        order = torch.from_numpy(rng.permutation(len(features)))
        for first in range(0, len(order), 256):
            picked = order[first : first + 256]
            loss, _ = loss_fn(model(x_all[picked]), y_all[picked])
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
        print(f"epoch {epoch}: loss {float(loss):.3f}, {score()}", flush=True)  # noqa: T201


if __name__ == "__main__":
    main()
