"""The development identities (`<dog id>/<photo>` folders) and their split by dog, never by photo."""

from __future__ import annotations

import random
from dataclasses import dataclass
from pathlib import Path

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".webp"}
DEFAULT_DATA = Path(__file__).resolve().parents[3] / ".." / "shared" / "data" / "identity" / "dogfacenet-dev"
SPLIT_SEED = 20261201
VALIDATION_SHARE = 0.2


@dataclass(frozen=True)
class IdentityPhotos:
    """Every photo path and the identity it belongs to, in a stable order."""

    paths: list[Path]
    identities: list[str]


def list_identity_photos(folder: Path, *, min_photos: int = 1) -> IdentityPhotos:
    """The photos of every identity folder with at least `min_photos` photos, sorted."""
    paths: list[Path] = []
    identities: list[str] = []
    for identity in sorted(p for p in folder.iterdir() if p.is_dir()):
        photos = sorted(p for p in identity.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        if len(photos) >= min_photos:
            paths.extend(photos)
            identities.extend([identity.name] * len(photos))
    return IdentityPhotos(paths=paths, identities=identities)


def split_identities(identities: list[str]) -> tuple[set[str], set[str]]:
    """(training dogs, validation dogs): a seeded 80/20 split of the distinct identities."""
    distinct = sorted(set(identities))
    random.Random(SPLIT_SEED).shuffle(distinct)
    cut = int(round(len(distinct) * VALIDATION_SHARE))
    return set(distinct[cut:]), set(distinct[:cut])
