"""What the service functions need besides a database session, assembled once at startup."""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass

from pawgle.auth.config import Settings
from pawgle.auth.google import GoogleVerifier
from pawgle.auth.passwords import Passwords
from pawgle.auth.sessions import SessionPolicy
from pawgle.auth.tokens import AccessTokenIssuer
from pawgle.common.errors import BadRequest

_EMAIL_RE = re.compile(r"^[^@\s<>\"'`]+@[^@\s<>\"'`]+\.[^@\s<>\"'`]+$")

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


@dataclass
class AuthKit:
    settings: Settings
    passwords: Passwords
    tokens: AccessTokenIssuer
    sessions: SessionPolicy
    google: GoogleVerifier | None


def normalize_email(raw: str) -> tuple[str, str]:
    """The address as given (trimmed) and its lookup key (lower-case); 400 when it is not an address."""
    email = (raw or "").strip()
    if len(email) > 254 or not _EMAIL_RE.match(email):
        raise BadRequest("A valid email address is required.")
    return email, email.lower()


def generated_display_name() -> str:
    """A friendly, non-identifying name (never derived from the e-mail, contract D3d)."""
    return f"{secrets.choice(_ADJECTIVES)}{secrets.choice(_ANIMALS)}{secrets.randbelow(9000) + 1000}"
