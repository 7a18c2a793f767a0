"""Species and coarse breed tags read off the ImageNet classifier head."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import numpy as np

from pawgle.embeddings.model.port import BreedTag, Species

LABELS_FILE = Path(__file__).parent / "files" / "imagenet_labels.txt"
# ImageNet-1k class indices: 151-268 are dog breeds, 269-275 wolves, coyote, dingo, dhole and African hunting
# dog (in a pet photo these are dogs the classifier found wild-looking: a Shiba Inu often comes out as a
# dingo), 281-285 domestic cats (tabby, tiger cat, Persian, Siamese, Egyptian cat). Foxes, hyenas and big
# cats stay "other". Breed tags only come from 151-268 and 281-285.
DOG_CLASSES = range(151, 276)
DOG_BREED_CLASSES = range(151, 269)
CAT_CLASSES = range(281, 286)
MAX_BREEDS = 3
MIN_BREED_PROBABILITY = 0.10


@lru_cache(maxsize=1)
def imagenet_labels() -> tuple[str, ...]:
    """The 1,000 ImageNet-1k class names in index order."""
    labels = tuple(LABELS_FILE.read_text().splitlines())
    if len(labels) != 1000:
        raise RuntimeError(f"{LABELS_FILE} holds {len(labels)} labels, expected 1000")
    return labels


def softmax(logits: np.ndarray) -> np.ndarray:
    """Row-wise softmax in float64 (stable)."""
    shifted = logits.astype(np.float64) - logits.max(axis=1, keepdims=True)
    exp = np.exp(shifted)
    return exp / exp.sum(axis=1, keepdims=True)


def species_and_breeds(probabilities: np.ndarray) -> tuple[Species, tuple[BreedTag, ...], float]:
    """The likeliest of dog / cat / other for one photo, up to 3 breeds of it, and P(dog or cat)."""
    p_dog = float(probabilities[DOG_CLASSES.start : DOG_CLASSES.stop].sum())
    p_cat = float(probabilities[CAT_CLASSES.start : CAT_CLASSES.stop].sum())
    p_other = 1.0 - p_dog - p_cat
    species: Species = "dog" if p_dog >= max(p_cat, p_other) else "cat" if p_cat >= p_other else "other"
    breeds: tuple[BreedTag, ...] = ()
    if species != "other":
        classes = DOG_BREED_CLASSES if species == "dog" else CAT_CLASSES
        within = probabilities[classes.start : classes.stop] / (p_dog if species == "dog" else p_cat)
        order = np.argsort(within)[::-1][:MAX_BREEDS]
        labels = imagenet_labels()
        breeds = tuple(
            BreedTag(label=labels[classes.start + int(i)], probability=round(float(within[i]), 3))
            for i in order
            if within[i] >= MIN_BREED_PROBABILITY
        )
    return species, breeds, p_dog + p_cat
