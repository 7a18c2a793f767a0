"""Same-animal retrieval scores: does a photo find the other photos of the same animal?"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class RetrievalScores:
    """Top-1 / top-5 hit rates for instance and mean-gallery retrieval."""

    instance_top1: float
    instance_top5: float
    gallery_top1: float
    gallery_top5: float
    identities: int
    images: int

    def line(self) -> str:
        """The one-line summary `make eval` ends with."""
        return (
            f"top-1 {self.instance_top1:.3f}, top-5 {self.instance_top5:.3f} (instance); "
            f"top-1 {self.gallery_top1:.3f}, top-5 {self.gallery_top5:.3f} (mean gallery); "
            f"{self.identities} identities, {self.images} images"
        )


def retrieval_scores(vectors: np.ndarray, identities: list[str]) -> RetrievalScores:
    """Score unit vectors labelled by identity.

    Instance: each photo of an animal with at least two photos queries every other photo by cosine; a hit
    at k when one of the k nearest is the same animal. Mean gallery: each such photo queries one vector per
    animal, the normalised mean of that animal's photos, leaving the query itself out of its own animal's
    mean; a hit at k when its animal ranks in the first k.
    """
    names = sorted(set(identities))
    label_of = {name: position for position, name in enumerate(names)}
    labels = np.array([label_of[name] for name in identities])
    vectors = np.asarray(vectors, dtype=np.float32)
    counts = np.bincount(labels, minlength=len(names))
    queries = np.nonzero(counts[labels] >= 2)[0]
    similarity = vectors @ vectors.T
    np.fill_diagonal(similarity, -np.inf)

    sums = np.zeros((len(names), vectors.shape[1]), dtype=np.float64)
    np.add.at(sums, labels, vectors)
    instance_hits = np.zeros(2)
    gallery_hits = np.zeros(2)
    k = min(5, len(identities) - 1)
    for query in queries:
        nearest = np.argpartition(-similarity[query], k - 1)[:k]
        nearest = nearest[np.argsort(-similarity[query, nearest])]
        same = labels[nearest] == labels[query]
        instance_hits += (same[0], same.any())

        gallery = sums.copy()
        gallery[labels[query]] -= vectors[query]
        gallery /= np.maximum(np.linalg.norm(gallery, axis=1, keepdims=True), 1e-12)
        # The query's own animal keeps at least one other photo: queries come from animals with two or more.
        scores = gallery @ vectors[query]
        rank = int(np.sum(scores > scores[labels[query]]))
        gallery_hits += (rank < 1, rank < 5)
    total = max(len(queries), 1)
    return RetrievalScores(
        instance_top1=instance_hits[0] / total,
        instance_top5=instance_hits[1] / total,
        gallery_top1=gallery_hits[0] / total,
        gallery_top5=gallery_hits[1] / total,
        identities=len(names),
        images=len(identities),
    )


def pair_similarities(vectors: np.ndarray, identities: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """(same-animal similarities, different-animal similarities) over every pair of photos."""
    labels = np.array(identities)
    similarity = np.asarray(vectors, dtype=np.float32) @ np.asarray(vectors, dtype=np.float32).T
    upper = np.triu_indices(len(labels), k=1)
    same = labels[upper[0]] == labels[upper[1]]
    values = similarity[upper]
    return values[same], values[~same]


def match_rates_at(threshold: float, same: np.ndarray, different: np.ndarray) -> tuple[float, float]:
    """(true-match rate, false-match rate) of the rule "similarity >= threshold means same animal"."""
    return float(np.mean(same >= threshold)), float(np.mean(different >= threshold))
