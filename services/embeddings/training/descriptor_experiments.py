"""LDA-only experiments on the cached descriptors (README "What was measured"): which parts, flip, dims.

`python services/embeddings/training/descriptor_experiments.py --parts last_gem,b15_mean --views 0 --partnorm`
needs the cache of cache_features.py; it scores the validation dogs of the seeded split, never trains on them.
"""

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from cache_features import CACHE
from export_backbone import DESCRIPTOR_PARTS
from identity_data import split_identities
from train_identity import lda_projection

from pawgle.embeddings.model.retrieval import retrieval_scores

ap = argparse.ArgumentParser()
ap.add_argument("--parts", default="last_mean")
ap.add_argument("--views", type=int, default=0)
ap.add_argument("--flip", default="avg")  # avg | none | both(train on both as separate samples)
ap.add_argument("--dim", type=int, default=384)
ap.add_argument("--shrink", type=float, default=1.0)
ap.add_argument("--partnorm", action="store_true")
ap.add_argument("--power", type=float, default=1.0)
ap.add_argument("--pca", type=int, default=0)
a = ap.parse_args()
ids = [str(x) for x in np.load(CACHE / "dogfacenet-dev-identities.npy")]
views = [np.load(CACHE / f"dogfacenet-dev-view{v}.npy", mmap_mode="r") for v in range(a.views + 1)]


def desc(arr):  # arr: N x 2 x W -> N x 2 x D
    chunks = []
    for name in a.parts.split(","):
        s, e = DESCRIPTOR_PARTS[name]
        c = arr[..., s:e].astype(np.float32)
        if a.power != 1.0:
            c = np.sign(c) * np.abs(c) ** a.power
        if a.partnorm:
            c = c / np.linalg.norm(c, axis=-1, keepdims=True)
        chunks.append(c)
    return np.concatenate(chunks, axis=-1)


def unit(x):
    return x / np.linalg.norm(x, axis=-1, keepdims=True)


tr, va = split_identities(ids)
tr_rows = np.array([i for i, d in enumerate(ids) if d in tr])
va_rows = np.array([i for i, d in enumerate(ids) if d in va])
val_ids = [ids[i] for i in va_rows]
V = [desc(np.asarray(v)) for v in views]  # each N x 2 x D


def feat(v, rows, mode):
    x = V[v][rows]
    if mode == "avg":
        return unit(unit(x[:, 0]) + unit(x[:, 1]))
    if mode == "none":
        return unit(x[:, 0])


val = feat(0, va_rows, "avg" if a.flip == "both" else a.flip)
print("raw", retrieval_scores(val, val_ids).line())  # noqa: T201
if a.flip == "both":
    X = np.concatenate([unit(V[v][tr_rows][:, k]) for v in range(len(V)) for k in (0, 1)])
    L = np.concatenate([np.array([ids[i] for i in tr_rows])] * (2 * len(V)))
    val = feat(0, va_rows, "avg")
else:
    X = np.concatenate([feat(v, tr_rows, a.flip) for v in range(len(V))])
    L = np.concatenate([np.array([ids[i] for i in tr_rows])] * len(V))
t = time.time()
mean, proj = lda_projection(X, L, a.dim, a.shrink)
emb = unit((val - mean) @ proj)
print(f"LDA {a} {retrieval_scores(emb, val_ids).line()} ({time.time() - t:.0f}s)")  # noqa: T201
