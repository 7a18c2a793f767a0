"""A token issuer for tests: signs access tokens the way the auth service does, with its own key set."""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey


class TokenIssuer:
    """Signs Ed25519 access tokens like the auth service; `jwks` is its public key set.

    Give a service's verifier these keys with `app.state.token_verifier.jwks.set_keys(issuer.jwks)`, or
    serve `jwks` over HTTP to test fetching.
    """

    def __init__(self, *, issuer: str = "pawgle-auth", audience: str = "pawgle") -> None:
        self.key = Ed25519PrivateKey.generate()
        self.kid = f"test-{uuid.uuid4().hex[:8]}"
        self.issuer = issuer
        self.audience = audience

    @property
    def jwks(self) -> dict[str, Any]:
        jwk = json.loads(jwt.algorithms.OKPAlgorithm.to_jwk(self.key.public_key()))
        return {"keys": [{**jwk, "kid": self.kid, "alg": "EdDSA", "use": "sig"}]}

    def token(self, user_id: int, *, expires_in_s: int = 600, kid: str | None = None, **claims: Any) -> str:
        """A signed access token for `user_id`; `kid` names another key (a forged or rotated one)."""
        issued = time.time()
        now = int(issued)
        body: dict[str, Any] = {
            "user_id": user_id,
            "token_type": "access",
            "jti": uuid.uuid4().hex,
            "iat": round(issued, 3),  # to the millisecond, as auth writes it
            "exp": now + expires_in_s,
            "iss": self.issuer,
            "aud": self.audience,
            **claims,
        }
        return jwt.encode(body, self.key, algorithm="EdDSA", headers={"kid": kid or self.kid})

    def headers(self, user_id: int, **kwargs: Any) -> dict[str, str]:
        """An Authorization header carrying a fresh token for `user_id`."""
        return {"Authorization": f"Bearer {self.token(user_id, **kwargs)}"}
