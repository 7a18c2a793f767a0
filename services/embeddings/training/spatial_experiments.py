"""LDA experiments on the frozen last blocks' outputs (describe_activations.py): does 2 x 2 spatial pooling
of the last map help on aligned faces? Scores the validation dogs of the seeded split, never trains on them.

`python services/embeddings/training/spatial_experiments.py --views 1 --cells 0.5` (cells weight 0: version 2)
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from cache_activations import pooled_path  # noqa: E402
from describe_activations import tail_path  # noqa: E402
from identity_data import DEFAULT_DATA, list_identity_photos, split_identities  # noqa: E402
from train_identity import lda_projection  # noqa: E402

from pawgle.embeddings.model.retrieval import retrieval_scores  # noqa: E402

WIDTHS = (1280, 320, 192)  # GeM of the last map, block 15, block 14 (then blocks 10 and 7 from the cache)


def unit(x: np.ndarray) -> np.ndarray:
    """Unit rows along the last axis."""
    return x / np.linalg.norm(x, axis=-1, keepdims=True).clip(1e-12)


def descriptor(view: int, name: str, cells_weight: float, cell_basis: np.ndarray | None) -> np.ndarray:
    """N x D: version 2's parts (+ 2 x 2 cells, weighted, projected on `cell_basis` when given), each part
    normalised, photo and mirror averaged."""
    desc = np.load(tail_path(name, view, "desc")).astype(np.float32)
    pooled = np.load(pooled_path(name, view)).astype(np.float32)
    parts = [desc[..., :1280], desc[..., 1280:1600], desc[..., 1600:1792], pooled[..., :112], pooled[..., 112:]]
    joined = [unit(part) for part in parts]
    if cells_weight > 0:
        cells = np.load(tail_path(name, view, "cells")).astype(np.float32)  # N x 2 x 4 x 1280
        # The mirror image's left cells are the photo's right ones: swap them back so cells line up.
        cells[:, 1] = cells[:, 1][:, [1, 0, 3, 2]]
        for cell in range(4):
            values = unit(cells[:, :, cell])
            joined.append(cells_weight * unit(values @ cell_basis if cell_basis is not None else values))
    both = unit(np.concatenate(joined, axis=-1))
    return unit(both.mean(axis=1))


def main() -> None:
    """Command line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--views", type=int, default=0)
    parser.add_argument("--cells", type=float, default=0.0)
    parser.add_argument("--dim", type=int, default=384)
    parser.add_argument("--shrink", type=float, default=1.0)
    parser.add_argument("--cell-pca", type=int, default=0, help="project each cell on the top principal axes")
    args = parser.parse_args()
    name = DEFAULT_DATA.resolve().name
    identities = list_identity_photos(DEFAULT_DATA.resolve()).identities
    train_dogs, validation_dogs = split_identities(identities)
    train_rows = np.array([i for i, dog in enumerate(identities) if dog in train_dogs])
    val_rows = np.array([i for i, dog in enumerate(identities) if dog in validation_dogs])
    val_ids = [identities[i] for i in val_rows]
    basis = None
    if args.cells > 0 and args.cell_pca:
        # One PCA basis for all four cells, fitted on the training photos' clean views only.
        cells = unit(np.load(tail_path(name, 0, "cells"))[train_rows].astype(np.float32)).reshape(-1, 1280)
        _, vectors = np.linalg.eigh(np.cov((cells - cells.mean(axis=0)).T))
        basis = vectors[:, ::-1][:, : args.cell_pca].astype(np.float32)
    described = [descriptor(view, name, args.cells, basis) for view in range(args.views + 1)]
    print("no training:", retrieval_scores(described[0][val_rows], val_ids).line())  # noqa: T201
    features = np.concatenate([d[train_rows] for d in described])
    labels = np.tile(np.array([identities[i] for i in train_rows]), len(described))
    mean, projection = lda_projection(features, labels, args.dim, args.shrink)
    scores = retrieval_scores(unit((described[0][val_rows] - mean) @ projection), val_ids)
    print(f"LDA {vars(args)}: {scores.line()}")  # noqa: T201


if __name__ == "__main__":
    main()
