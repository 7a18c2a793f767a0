"""Generated display names for accounts made without one (Google sign-up)."""

from __future__ import annotations

import secrets

_ADJECTIVES = (
    "Brave",
    "Calm",
    "Clever",
    "Cosy",
    "Curious",
    "Gentle",
    "Happy",
    "Jolly",
    "Kind",
    "Lucky",
    "Merry",
    "Nimble",
    "Patient",
    "Plucky",
    "Quick",
    "Quiet",
    "Sunny",
    "Swift",
    "Trusty",
    "Witty",
)
_ANIMALS = (
    "Badger",
    "Beagle",
    "Collie",
    "Corgi",
    "Falcon",
    "Ferret",
    "Fox",
    "Hare",
    "Heron",
    "Kitten",
    "Lynx",
    "Marten",
    "Otter",
    "Owl",
    "Puffin",
    "Robin",
    "Setter",
    "Spaniel",
    "Terrier",
    "Wren",
)


def generated_display_name() -> str:
    """A friendly, non-identifying name (never derived from the e-mail, contract D3d)."""
    return f"{secrets.choice(_ADJECTIVES)}{secrets.choice(_ANIMALS)}{secrets.randbelow(9000) + 1000}"
