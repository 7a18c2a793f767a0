"""Keys and token helpers shared by the signing-key tests."""

from __future__ import annotations

import base64
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from pawgle.auth.config import Settings
from pawgle.auth.keys import KeyRing
from pawgle.auth.tokens import AccessTokenIssuer
from pawgle.common.auth import AccessTokenVerifier, JwksCache

PKCS8 = serialization.PrivateFormat.PKCS8
NO_PASSWORD = serialization.NoEncryption()
SECRET = "x" * 40


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def private_pem(key: Any, fmt: serialization.PrivateFormat = PKCS8) -> bytes:
    pem: bytes = key.private_bytes(serialization.Encoding.PEM, fmt, NO_PASSWORD)
    return pem


def public_pem(key: Any, fmt: serialization.PublicFormat = serialization.PublicFormat.SubjectPublicKeyInfo) -> bytes:
    pem: bytes = key.public_bytes(serialization.Encoding.PEM, fmt)
    return pem


def new_rsa(bits: int = 2048) -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=bits)


def verifier_for(settings: Settings, jwks_url: str = "http://127.0.0.1:9/unused") -> AccessTokenVerifier:
    return AccessTokenVerifier(JwksCache(jwks_url), issuer=settings.jwt_issuer, audience=settings.jwt_audience)


def issuer_for(keys: KeyRing, settings: Settings) -> AccessTokenIssuer:
    return AccessTokenIssuer(keys, issuer=settings.jwt_issuer, audience=settings.jwt_audience, ttl_s=300)
