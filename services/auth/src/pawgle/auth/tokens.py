"""Access tokens: short-lived JWTs (RS256 or EdDSA, the current key's) every service verifies with the JWKS."""

from __future__ import annotations

import secrets
import time

import jwt

from pawgle.auth.keys import KeyRing


class AccessTokenIssuer:
    """Signs access tokens with the key ring's current key."""

    def __init__(self, keys: KeyRing, *, issuer: str, audience: str, ttl_s: int) -> None:
        self.keys = keys
        self.issuer = issuer
        self.audience = audience
        self.ttl_s = ttl_s

    def issue(self, user_id: int, *, now: float | None = None) -> str:
        """A signed access token for `user_id` (claims: user_id, token_type, iss, aud, sub, iat, nbf, exp, jti)."""
        issued = time.time() if now is None else now
        issued_at = int(issued)
        claims = {
            "token_type": "access",
            "user_id": user_id,
            "sub": str(user_id),
            "iss": self.issuer,
            "aud": self.audience,
            # To the millisecond (RFC 7519 allows a fractional NumericDate): the mesh-wide revocation list
            # compares it with the moment an account was revoked, and a whole second would blur the two.
            "iat": round(issued, 3),
            "nbf": issued_at,
            "exp": issued_at + self.ttl_s,
            "jti": secrets.token_hex(16),
        }
        key = self.keys.current
        return jwt.encode(claims, key.private_key, algorithm=key.alg, headers={"kid": key.kid})
