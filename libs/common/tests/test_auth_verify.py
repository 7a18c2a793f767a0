"""Access-token verification as every service does it: against the JWKS served over real HTTP."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
import uuid
from collections.abc import Iterator
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from fastapi import FastAPI

from pawgle.common.auth import AccessTokenVerifier, JwksCache
from pawgle.common.errors import Unauthorized
from pawgle.common.testing.server import serve

ISSUER, AUDIENCE = "pawgle-auth", "pawgle"


class KeyRing:
    """What the auth service publishes: Ed25519 keys by kid."""

    def __init__(self) -> None:
        self.keys: dict[str, Ed25519PrivateKey] = {}
        self.fetches = 0

    def add(self) -> str:
        kid = uuid.uuid4().hex[:16]
        self.keys[kid] = Ed25519PrivateKey.generate()
        return kid

    def jwks(self) -> dict[str, Any]:
        self.fetches += 1
        docs = []
        for kid, key in self.keys.items():
            raw = key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
            x = base64.urlsafe_b64encode(raw).rstrip(b"=").decode()
            docs.append({"kty": "OKP", "crv": "Ed25519", "x": x, "kid": kid, "alg": "EdDSA", "use": "sig"})
        return {"keys": docs}

    def sign(self, kid: str, **overrides: Any) -> str:
        now = int(time.time())
        claims = {
            "user_id": 42,
            "token_type": "access",
            "iat": now,
            "exp": now + 600,
            "jti": uuid.uuid4().hex,
            "iss": ISSUER,
            "aud": AUDIENCE,
            **overrides,
        }
        return jwt.encode(
            {k: v for k, v in claims.items() if v is not None}, self.keys[kid], algorithm="EdDSA", headers={"kid": kid}
        )


@pytest.fixture(scope="module")
def ring() -> KeyRing:
    return KeyRing()


@pytest.fixture(scope="module")
def jwks_url(ring: KeyRing) -> Iterator[str]:
    app = FastAPI()
    app.get("/jwks/")(ring.jwks)
    with serve(app) as base:
        yield f"{base}/jwks/"


@pytest.fixture
def verifier(jwks_url: str) -> AccessTokenVerifier:
    return AccessTokenVerifier(JwksCache(jwks_url, min_refresh_interval_s=0), issuer=ISSUER, audience=AUDIENCE)


def _b64(doc: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(doc).encode()).rstrip(b"=").decode()


def test_a_valid_token_yields_its_numeric_user_id(ring: KeyRing, verifier: AccessTokenVerifier) -> None:
    kid = ring.add()
    assert verifier.verify(ring.sign(kid)).user_id == 42
    assert verifier.verify(ring.sign(kid, user_id="43")).user_id == 43


def test_keys_are_cached_and_a_new_kid_is_fetched_once(ring: KeyRing, verifier: AccessTokenVerifier) -> None:
    kid = ring.add()
    verifier.verify(ring.sign(kid))
    fetched = ring.fetches
    for _ in range(20):
        verifier.verify(ring.sign(kid))
    assert ring.fetches == fetched
    rotated = ring.add()  # auth rotated its key: the new kid is fetched, the old one keeps working
    assert verifier.verify(ring.sign(rotated)).user_id == 42
    assert verifier.verify(ring.sign(kid)).user_id == 42
    assert ring.fetches == fetched + 1


def _hs256_signed_with_public_key(ring: KeyRing, kid: str, claims: dict[str, Any]) -> str:
    """The classic key-confusion forgery: HMAC keyed with the published public key."""
    public_pem = (
        ring.keys[kid]
        .public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    signing_input = f"{_b64({'alg': 'HS256', 'typ': 'JWT', 'kid': kid})}.{_b64(claims)}"
    mac = hmac.new(public_pem, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{base64.urlsafe_b64encode(mac).rstrip(b'=').decode()}"


def _forgeries(ring: KeyRing, kid: str) -> dict[str, str]:
    header, payload, signature = ring.sign(kid).split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=="))
    return {
        "alg none": _b64({"alg": "none", "kid": kid}) + "." + _b64(claims) + ".",
        "hs256 with the public key": _hs256_signed_with_public_key(ring, kid, claims),
        "unknown kid": ring.sign(kid).replace(header, _b64({"alg": "EdDSA", "kid": "nope"}), 1),
        "expired": ring.sign(kid, exp=int(time.time()) - 3600, iat=int(time.time()) - 7200),
        "not yet valid": ring.sign(kid, iat=int(time.time()) + 3600, nbf=int(time.time()) + 3600),
        "wrong audience": ring.sign(kid, aud="someone-else"),
        "wrong issuer": ring.sign(kid, iss="https://evil.example"),
        "refresh type": ring.sign(kid, token_type="refresh"),
        "no user id": ring.sign(kid, user_id=None),
        "tampered payload": f"{header}.{_b64({**claims, 'user_id': 1})}.{signature}",
        "garbage": "not.a.token",
        "header is a list": base64.urlsafe_b64encode(b"[1]").rstrip(b"=").decode() + f".{payload}.{signature}",
        "oversized header": "A" * 5000 + f".{payload}.{signature}",
        "empty": "",
    }


@pytest.mark.parametrize(
    "case",
    [
        "alg none",
        "hs256 with the public key",
        "unknown kid",
        "expired",
        "not yet valid",
        "wrong audience",
        "wrong issuer",
        "refresh type",
        "no user id",
        "tampered payload",
        "garbage",
        "header is a list",
        "oversized header",
        "empty",
    ],
)
def test_forged_or_stale_tokens_are_refused(ring: KeyRing, verifier: AccessTokenVerifier, case: str) -> None:
    kid = ring.add()
    token = _forgeries(ring, kid)[case]
    with pytest.raises(Unauthorized):
        verifier.verify(token)


def test_an_unreachable_jwks_means_unauthorized_not_a_crash() -> None:
    ring = KeyRing()
    kid = ring.add()
    verifier = AccessTokenVerifier(
        JwksCache("http://127.0.0.1:9/jwks/", timeout_s=0.5), issuer=ISSUER, audience=AUDIENCE
    )
    with pytest.raises(Unauthorized):
        verifier.verify(ring.sign(kid))


def test_a_withdrawn_key_stops_verifying_once_the_set_is_refreshed(ring: KeyRing, jwks_url: str) -> None:
    jwks = JwksCache(jwks_url, min_refresh_interval_s=0, max_age_s=0.2)
    verifier = AccessTokenVerifier(jwks, issuer=ISSUER, audience=AUDIENCE)
    compromised = ring.add()
    token = ring.sign(compromised)
    assert verifier.verify(token).user_id == 42
    del ring.keys[compromised]  # the auth service withdraws it
    time.sleep(0.3)
    with pytest.raises(Unauthorized):
        verifier.verify(token)
