"""Password hashing (Argon2id, parameters recorded in each hash) and the server-side password policy."""

from __future__ import annotations

import re
from difflib import SequenceMatcher
from importlib import resources

from argon2 import PasswordHasher, Type
from argon2.exceptions import InvalidHashError, VerificationError

MIN_LENGTH = 8
# Argon2 hashes anything, but a megabyte password would be a cheap way to burn our CPU.
MAX_LENGTH = 256


def _load_common_passwords() -> frozenset[str]:
    text = resources.files("pawgle.auth").joinpath("common_passwords.txt").read_text()
    return frozenset(line.strip().lower() for line in text.splitlines() if line.strip())


COMMON_PASSWORDS = _load_common_passwords()


class Passwords:
    """Hash and verify passwords; tell when a stored hash was made with weaker parameters than today's."""

    def __init__(self, *, time_cost: int, memory_kib: int, parallelism: int) -> None:
        self.hasher = PasswordHasher(time_cost=time_cost, memory_cost=memory_kib, parallelism=parallelism, type=Type.ID)
        # Verified against when there is no real hash, so unknown e-mails cost the same time as wrong passwords.
        self._dummy_hash = self.hasher.hash("pawgle-timing-equaliser")

    @property
    def parameters(self) -> str:
        h = self.hasher
        return f"argon2id t={h.time_cost} m={h.memory_cost} KiB p={h.parallelism}"

    def hash(self, password: str) -> str:
        return self.hasher.hash(password)

    def verify(self, stored_hash: str | None, password: str) -> bool:
        """True when `password` matches; always spends one Argon2 verification, even without a hash."""
        try:
            return self.hasher.verify(stored_hash or self._dummy_hash, password) and stored_hash is not None
        except (VerificationError, InvalidHashError):
            return False

    def needs_rehash(self, stored_hash: str) -> bool:
        return self.hasher.check_needs_rehash(stored_hash)


def password_problems(password: str, *, username: str = "", email: str = "") -> list[str]:
    """What is wrong with a new password (empty when it is acceptable)."""
    problems: list[str] = []
    if len(password) < MIN_LENGTH:
        problems.append(f"This password is too short. It must contain at least {MIN_LENGTH} characters.")
    if len(password) > MAX_LENGTH:
        problems.append(f"This password is too long. It must contain at most {MAX_LENGTH} characters.")
    if password.isdigit():
        problems.append("This password is entirely numeric.")
    if password.lower() in COMMON_PASSWORDS:
        problems.append("This password is too common.")
    lowered = password.lower()
    for label, value in (("username", username), ("email address", email.split("@", 1)[0])):
        value = value.lower()
        if len(value) >= 3 and ((len(value) >= 5 and value in lowered) or _similar(lowered, value)):
            problems.append(f"The password is too similar to the {label}.")
    return problems


def _similar(password: str, attribute: str) -> bool:
    # Same rule as Django's UserAttributeSimilarityValidator: compare against each part of the attribute too.
    for part in {attribute, *re.split(r"\W+", attribute)}:
        if len(part) >= 3 and SequenceMatcher(a=password, b=part).ratio() >= 0.7:
            return True
    return False
