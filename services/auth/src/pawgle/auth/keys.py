"""Signing keys: RSA (RS256, >= 2048 bits) or Ed25519 (EdDSA), identified by their RFC 7638 thumbprint (`kid`).

The first key signs, each with its own algorithm; the others stay published in the JWKS so tokens they
signed keep verifying until they expire, whatever their kind (a ring may mix both, so rotating from one
algorithm to the other logs nobody out). Development generates a key of AUTH_SIGNING_ALGORITHM under the
service's data folder on first start (restarts keep sessions, and a key already there keeps signing until
rotated); production must be given its keys and refuses to start otherwise.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import logging
import re
import secrets
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey, RSAPublicKey, generate_private_key
from pydantic import ValidationError

from pawgle.auth.config import KeyToolSettings, Settings, SigningAlgorithm
from pawgle.common.auth import JwksCache

log = logging.getLogger(__name__)

MIN_RSA_BITS = 2048
NEW_RSA_BITS = 2048
PublicKey = RSAPublicKey | Ed25519PublicKey
PrivateKey = RSAPrivateKey | Ed25519PrivateKey
# Development key files: `<kind>-<time_ns>.pem`, newest first by the number whatever the kind.
_DEV_KEY_NAME = re.compile(r"^(ed25519|rsa)-(\d+)\.pem$")
_DEV_KEY_KIND: dict[str, str] = {"EdDSA": "ed25519", "RS256": "rsa"}


class KeyConfigError(RuntimeError):
    """The configured keys are missing, unreadable or unsafe: the service must not start."""


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _b64_uint(value: int) -> str:
    """An RSA modulus or exponent as JWA wants it: big-endian, no leading zero bytes (RFC 7518 6.3.1)."""
    return _b64(value.to_bytes(max(1, (value.bit_length() + 7) // 8), "big"))


def _checked(public: object) -> tuple[PublicKey, SigningAlgorithm]:
    """The key and its algorithm if it is a kind we sign with and strong enough; KeyConfigError otherwise."""
    if isinstance(public, Ed25519PublicKey):
        return public, "EdDSA"
    if isinstance(public, RSAPublicKey):
        if public.key_size < MIN_RSA_BITS:
            raise KeyConfigError(f"RSA signing keys need at least {MIN_RSA_BITS} bits (this one has {public.key_size})")
        return public, "RS256"
    raise KeyConfigError(f"signing keys must be RSA (>= {MIN_RSA_BITS} bits) or Ed25519, not {type(public).__name__}")


@dataclass(frozen=True)
class SigningKey:
    kid: str
    alg: SigningAlgorithm
    public_key: PublicKey
    private_key: PrivateKey | None = None

    @classmethod
    def from_pem(cls, pem: bytes) -> SigningKey:
        """Load a private or public RSA or Ed25519 PEM (refusing other kinds and RSA under 2048 bits)."""
        loaded = None
        try:
            if b"PRIVATE KEY" in pem:
                loaded = serialization.load_pem_private_key(pem, password=None)
                raw_public: object = loaded.public_key()
            else:
                raw_public = serialization.load_pem_public_key(pem)
        except (ValueError, TypeError, UnsupportedAlgorithm) as exc:
            raise KeyConfigError(f"unreadable key: {exc}") from exc
        public, alg = _checked(raw_public)
        # Once the public half passed the check, the private half is of the matching kind.
        private = loaded if isinstance(loaded, RSAPrivateKey | Ed25519PrivateKey) else None
        return cls(kid=_thumbprint(public), alg=alg, public_key=public, private_key=private)

    def jwk(self) -> dict[str, str]:
        """The public JWK (RFC 7517) other services verify with; never holds private parameters."""
        return {**_public_members(self.public_key), "kid": self.kid, "alg": self.alg, "use": "sig"}


def _public_members(public: PublicKey) -> dict[str, str]:
    """The required public members of the key's JWK, which are also what its RFC 7638 thumbprint hashes."""
    if isinstance(public, RSAPublicKey):
        numbers = public.public_numbers()
        return {"kty": "RSA", "n": _b64_uint(numbers.n), "e": _b64_uint(numbers.e)}
    raw = public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return {"kty": "OKP", "crv": "Ed25519", "x": _b64(raw)}


def _thumbprint(public: PublicKey) -> str:
    canonical = json.dumps(_public_members(public), sort_keys=True, separators=(",", ":"))
    return _b64(hashlib.sha256(canonical.encode()).digest())


class KeyRing:
    """The current signing key and the previous ones still published."""

    def __init__(self, keys: list[SigningKey]) -> None:
        if not keys or keys[0].private_key is None:
            raise KeyConfigError("the current signing key must be a private key")
        self.keys = keys

    @property
    def current(self) -> SigningKey:
        return self.keys[0]

    def jwks(self) -> dict[str, Any]:
        return {"keys": [key.jwk() for key in self.keys]}


class KeyRingJwks(JwksCache):
    """Auth's own token verification keys: its key ring, read in memory, never fetched over HTTP.

    Every other service fetches auth's JWKS; auth itself must not, or a token with an unknown `kid` (or a
    key set older than the refresh age) would make it wait on a request to itself. The ring is the
    authority: a kid it does not hold is unknown at once, and `use` swaps in a rotated ring.
    """

    def __init__(self, ring: KeyRing) -> None:
        super().__init__(None, min_refresh_interval_s=float("inf"), max_age_s=float("inf"))
        self.use(ring)

    def use(self, ring: KeyRing) -> None:
        """Verify with `ring` from now on (its current and previous keys)."""
        self.ring = ring
        self.set_keys(ring.jwks())

    def key_for(self, kid: str) -> Any:
        """The public key for `kid` if the ring holds it, else None (and no fetch)."""
        return self._keys.get(kid)

    async def get_key(self, kid: str) -> Any:
        """The same, for async callers: answered from memory, never awaiting a fetch."""
        return self._keys.get(kid)


def new_private_pem(algorithm: SigningAlgorithm = "RS256") -> bytes:
    """A new private key for `algorithm` as unencrypted PKCS#8 PEM."""
    key: PrivateKey = (
        generate_private_key(public_exponent=65537, key_size=NEW_RSA_BITS)
        if algorithm == "RS256"
        else Ed25519PrivateKey.generate()
    )
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def _dev_keys(keys_dir: Path) -> list[tuple[int, Path]]:
    found = [(int(m.group(2)), p) for p in keys_dir.glob("*.pem") if (m := _DEV_KEY_NAME.match(p.name))]
    return sorted(found, reverse=True)


def dev_key_paths(keys_dir: Path) -> list[Path]:
    """The key files of a development folder, newest first (either kind)."""
    return [path for _, path in _dev_keys(keys_dir)]


def rotate_dev_keys(keys_dir: Path, algorithm: SigningAlgorithm = "RS256") -> Path:
    """Add a new current key to a key folder; older keys stay published until `prune_dev_keys` removes them."""
    keys_dir.mkdir(parents=True, exist_ok=True)
    existing = _dev_keys(keys_dir)
    # Strictly newer than any key already there, even if the clock went back.
    stamp = max(time.time_ns(), existing[0][0] + 1 if existing else 0)
    path = keys_dir / f"{_DEV_KEY_KIND[algorithm]}-{stamp}.pem"
    path.write_bytes(new_private_pem(algorithm))
    path.chmod(0o600)
    return path


def prune_dev_keys(keys_dir: Path, *, keep: int = 2) -> list[Path]:
    """Delete all but the `keep` newest keys of a folder (run once old tokens have expired)."""
    paths = dev_key_paths(keys_dir)
    for path in paths[keep:]:
        path.unlink()
    return paths[keep:]


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise KeyConfigError(f"cannot read key file {path}: {exc}") from exc


def load_key_ring(settings: Settings) -> KeyRing:
    """The keys from the settings; in development, from (or newly generated in) the key folder."""
    keys: list[SigningKey] = []
    if settings.signing_key is not None:
        keys.append(SigningKey.from_pem(settings.signing_key.get_secret_value().encode()))
    elif settings.signing_key_file is not None:
        keys.append(SigningKey.from_pem(_read(settings.signing_key_file)))
    elif settings.is_production:
        raise KeyConfigError("production needs AUTH_SIGNING_KEY or AUTH_SIGNING_KEY_FILE")
    else:
        paths = dev_key_paths(settings.keys_dir)
        if not paths:
            paths = [rotate_dev_keys(settings.keys_dir, settings.signing_algorithm)]
            log.info("generated a development signing key", extra={"alg": settings.signing_algorithm})
        keys.extend(SigningKey.from_pem(_read(path)) for path in paths)
    keys.extend(SigningKey.from_pem(_read(path)) for path in settings.previous_key_files)
    unique: dict[str, SigningKey] = {}
    for key in keys:
        unique.setdefault(key.kid, key)
    ring = KeyRing(list(unique.values()))
    if ring.current.alg != settings.signing_algorithm:
        # Not an error: an existing key keeps signing (and verifying) until someone rotates it.
        log.warning(
            "the current signing key is %s, not AUTH_SIGNING_ALGORITHM=%s; rotate it to switch",
            ring.current.alg,
            settings.signing_algorithm,
        )
    return ring


def load_refresh_secret(settings: Settings) -> bytes:
    """The HMAC key for refresh-token successors: configured, or generated once per development data folder."""
    if settings.refresh_secret is not None:
        return settings.refresh_secret.get_secret_value().encode()
    if settings.is_production:
        raise KeyConfigError("production needs AUTH_REFRESH_SECRET")
    path = settings.keys_dir / "refresh.secret"
    if not path.exists():
        settings.keys_dir.mkdir(parents=True, exist_ok=True)
        path.write_text(secrets.token_urlsafe(48))
        path.chmod(0o600)
    return path.read_text().strip().encode()


def main(argv: list[str] | None = None) -> None:
    """`python -m pawgle.auth.keys new|rotate DIR|prune DIR`: make keys for production or rotate a dev folder."""
    parser = argparse.ArgumentParser(prog="pawgle.auth.keys")
    try:
        default_alg = KeyToolSettings().signing_algorithm
    except ValidationError:
        parser.error("AUTH_SIGNING_ALGORITHM must be RS256 or EdDSA")
    alg_help = (
        f"kind of key: RS256 (RSA-{NEW_RSA_BITS}) or EdDSA (Ed25519); default AUTH_SIGNING_ALGORITHM ({default_alg})"
    )
    sub = parser.add_subparsers(dest="command", required=True)
    new = sub.add_parser("new", help="write a new private key (PEM) to standard output")
    new.add_argument("--alg", choices=["RS256", "EdDSA"], default=default_alg, help=alg_help)
    rotate = sub.add_parser("rotate", help="add a new current key to a key folder")
    rotate.add_argument("dir", type=Path)
    rotate.add_argument("--alg", choices=["RS256", "EdDSA"], default=default_alg, help=alg_help)
    prune = sub.add_parser("prune", help="remove all but the newest keys of a key folder")
    prune.add_argument("dir", type=Path)
    prune.add_argument("--keep", type=int, default=2)
    args = parser.parse_args(argv)
    if args.command == "new":
        sys.stdout.write(new_private_pem(args.alg).decode())
    elif args.command == "rotate":
        sys.stdout.write(f"{rotate_dev_keys(args.dir, args.alg)}\n")
    else:
        for path in prune_dev_keys(args.dir, keep=args.keep):
            sys.stdout.write(f"removed {path}\n")


if __name__ == "__main__":
    main()
