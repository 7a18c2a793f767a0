"""Signing keys: Ed25519, identified by their RFC 7638 thumbprint (`kid`); the JWKS lists every public key.

The first key signs; the others stay published so tokens they signed keep verifying until they expire.
Development generates a key under the service's data folder on first start (restarts keep sessions);
production must be given its keys and refuses to start otherwise.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import logging
import secrets
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from pawgle.auth.config import Settings

log = logging.getLogger(__name__)


class KeyConfigError(RuntimeError):
    """The configured keys are missing, unreadable or unsafe: the service must not start."""


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


@dataclass(frozen=True)
class SigningKey:
    kid: str
    public_key: Ed25519PublicKey
    private_key: Ed25519PrivateKey | None = None

    @classmethod
    def from_pem(cls, pem: bytes) -> SigningKey:
        """Load a private or public Ed25519 PEM."""
        try:
            if b"PRIVATE KEY" in pem:
                private = serialization.load_pem_private_key(pem, password=None)
                if not isinstance(private, Ed25519PrivateKey):
                    raise KeyConfigError("signing keys must be Ed25519")
                return cls(kid=_thumbprint(private.public_key()), public_key=private.public_key(), private_key=private)
            public = serialization.load_pem_public_key(pem)
        except (ValueError, TypeError) as exc:
            raise KeyConfigError(f"unreadable key: {exc}") from exc
        if not isinstance(public, Ed25519PublicKey):
            raise KeyConfigError("signing keys must be Ed25519")
        return cls(kid=_thumbprint(public), public_key=public)

    def jwk(self) -> dict[str, str]:
        return {
            "kty": "OKP",
            "crv": "Ed25519",
            "x": _public_x(self.public_key),
            "kid": self.kid,
            "alg": "EdDSA",
            "use": "sig",
        }


def _public_x(public: Ed25519PublicKey) -> str:
    return _b64(public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw))


def _thumbprint(public: Ed25519PublicKey) -> str:
    canonical = json.dumps({"crv": "Ed25519", "kty": "OKP", "x": _public_x(public)}, separators=(",", ":"))
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


def new_private_pem() -> bytes:
    return Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def rotate_dev_keys(keys_dir: Path) -> Path:
    """Add a new current key to a key folder; older keys stay published until `prune_dev_keys` removes them."""
    keys_dir.mkdir(parents=True, exist_ok=True)
    path = keys_dir / f"ed25519-{time.time_ns()}.pem"
    path.write_bytes(new_private_pem())
    path.chmod(0o600)
    return path


def prune_dev_keys(keys_dir: Path, *, keep: int = 2) -> list[Path]:
    """Delete all but the `keep` newest keys of a folder (run once old tokens have expired)."""
    paths = sorted(keys_dir.glob("ed25519-*.pem"), reverse=True)
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
        paths = sorted(settings.keys_dir.glob("ed25519-*.pem"), reverse=True)
        if not paths:
            paths = [rotate_dev_keys(settings.keys_dir)]
            log.info("generated a development signing key")
        keys.extend(SigningKey.from_pem(_read(path)) for path in paths)
    keys.extend(SigningKey.from_pem(_read(path)) for path in settings.previous_key_files)
    unique: dict[str, SigningKey] = {}
    for key in keys:
        unique.setdefault(key.kid, key)
    return KeyRing(list(unique.values()))


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
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("new", help="write a new Ed25519 private key (PEM) to standard output")
    rotate = sub.add_parser("rotate", help="add a new current key to a key folder")
    rotate.add_argument("dir", type=Path)
    prune = sub.add_parser("prune", help="remove all but the newest keys of a key folder")
    prune.add_argument("dir", type=Path)
    prune.add_argument("--keep", type=int, default=2)
    args = parser.parse_args(argv)
    if args.command == "new":
        sys.stdout.write(new_private_pem().decode())
    elif args.command == "rotate":
        sys.stdout.write(f"{rotate_dev_keys(args.dir)}\n")
    else:
        for path in prune_dev_keys(args.dir, keep=args.keep):
            sys.stdout.write(f"removed {path}\n")


if __name__ == "__main__":
    main()
