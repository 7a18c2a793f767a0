"""Verifying access tokens in any service, against the auth service's JWKS.

Keys are cached by `kid`; an unknown `kid` triggers one refetch (at most every few seconds), so key
rotation needs no restart. Only asymmetric algorithms are accepted, which rules out `alg: none` and
HS256-signed-with-the-public-key forgeries.
"""

from __future__ import annotations

import base64
import json
import logging
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import Annotated, Any

import httpx
import jwt
from fastapi import Depends, Request

from pawgle.common.errors import Unauthorized

log = logging.getLogger(__name__)

ALLOWED_ALGORITHMS = ("EdDSA", "RS256", "ES256")


@dataclass(frozen=True)
class AccessClaims:
    user_id: int
    jti: str
    expires_at: int


class JwksCache:
    """The auth service's public keys, fetched over HTTP with a timeout and cached by kid.

    An unknown kid triggers a refetch (a rotation), at most every `min_refresh_interval_s`; the whole set
    is also refetched once it is older than `max_age_s`, so a key the auth service withdrew (after a
    compromise) stops verifying everywhere within minutes, without restarts. While the auth service is
    unreachable the keys already known stay in use.
    """

    def __init__(
        self, url: str, *, min_refresh_interval_s: float = 5.0, max_age_s: float = 300.0, timeout_s: float = 3.0
    ) -> None:
        self.url = url
        self.min_refresh_interval_s = min_refresh_interval_s
        self.max_age_s = max_age_s
        self.timeout_s = timeout_s
        self._keys: dict[str, Any] = {}
        self._loaded_at = 0.0  # when the current set was loaded
        self._tried_at = 0.0  # when a fetch was last attempted
        self._lock = threading.Lock()

    def set_keys(self, jwks: dict[str, Any]) -> None:
        """Load keys from a JWKS document (used by the auth service itself, and by tests)."""
        keys: dict[str, Any] = {}
        for jwk in jwks.get("keys", []):
            kid = jwk.get("kid")
            if kid:
                keys[kid] = jwt.PyJWK.from_dict(jwk)
        self._keys = keys
        self._loaded_at = time.monotonic()

    def key_for(self, kid: str) -> Any:
        """The public key (a PyJWK, which knows its algorithm) for `kid`, or None if it is not published."""
        key = self._keys.get(kid)
        stale = time.monotonic() - self._loaded_at >= self.max_age_s
        if key is not None and not stale:
            return key
        with self._lock:
            now = time.monotonic()
            stale = now - self._loaded_at >= self.max_age_s
            if (kid not in self._keys or stale) and now - self._tried_at >= self.min_refresh_interval_s:
                self._tried_at = now
                self._fetch()
            return self._keys.get(kid)

    def _fetch(self) -> None:
        try:
            response = httpx.get(self.url, timeout=self.timeout_s)
            response.raise_for_status()
            self.set_keys(response.json())
        except (httpx.HTTPError, ValueError, jwt.PyJWTError) as exc:
            log.warning("cannot refresh the JWKS from %s: %r", self.url, exc)


class AccessTokenVerifier:
    def __init__(
        self, jwks: JwksCache, *, issuer: str, audience: str, leeway_s: int = 10, cache_size: int = 4096
    ) -> None:
        self.jwks = jwks
        self.issuer = issuer
        self.audience = audience
        self.leeway_s = leeway_s
        # A client sends the same token with every request until it expires; the signature check (~60 us
        # for EdDSA) is done once per token. Keyed by the whole token, so a cached entry proves nothing new.
        self.cache_size = cache_size
        self._verified: OrderedDict[str, tuple[AccessClaims, str]] = OrderedDict()
        self._verified_lock = threading.Lock()

    def verify(self, token: str) -> AccessClaims:
        """Return the claims of a valid access token; raise Unauthorized for anything else."""
        hit = self._verified.get(token)
        if hit is not None:
            claims, kid = hit
            # Still within its lifetime, and its key has not been withdrawn from the JWKS since.
            if time.time() <= claims.expires_at + self.leeway_s and self.jwks.key_for(kid) is not None:
                return claims
        claims, kid = self._verify_signature(token)
        if self.cache_size > 0:
            with self._verified_lock:
                self._verified[token] = (claims, kid)
                while len(self._verified) > self.cache_size:
                    self._verified.popitem(last=False)
        return claims

    def _verify_signature(self, token: str) -> tuple[AccessClaims, str]:
        header = _unverified_header(token)
        alg, kid = header.get("alg"), header.get("kid")
        if alg not in ALLOWED_ALGORITHMS or not isinstance(kid, str):
            raise Unauthorized("Given token not valid for any token type")
        key = self.jwks.key_for(kid)
        # The key decides the algorithm (RFC 8725 3.1): a header naming another one (RS256 on an Ed25519
        # kid, ES256 on an RSA kid) is refused here; PyJWT would raise TypeError on it, a 500.
        if key is None or key.algorithm_name != alg:
            raise Unauthorized("Given token not valid for any token type")
        try:
            claims = jwt.decode(
                token,
                key=key.key,
                algorithms=[alg],
                audience=self.audience,
                issuer=self.issuer,
                leeway=self.leeway_s,
                options={"require": ["exp", "iat", "jti", "user_id", "token_type"]},
            )
        except jwt.ExpiredSignatureError as exc:
            raise Unauthorized("Token is expired") from exc
        except jwt.PyJWTError as exc:
            raise Unauthorized("Given token not valid for any token type") from exc
        if claims.get("token_type") != "access":
            raise Unauthorized("Given token not valid for any token type")
        try:
            user_id = int(claims["user_id"])
        except (TypeError, ValueError) as exc:
            raise Unauthorized("Given token not valid for any token type") from exc
        return AccessClaims(user_id=user_id, jti=str(claims["jti"]), expires_at=int(claims["exp"])), kid


def _unverified_header(token: str) -> dict[str, Any]:
    """The JOSE header, read from the first segment only (PyJWT's reader scans the whole token in Python).

    Nothing in it is trusted: it only names the key, whose own algorithm then decides (see above).
    """
    segment = token.split(".", 1)[0]
    if not segment or len(segment) > 1024:
        raise Unauthorized("Given token not valid for any token type")
    try:
        header = json.loads(base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4)))
    except (ValueError, TypeError) as exc:
        raise Unauthorized("Given token not valid for any token type") from exc
    if not isinstance(header, dict):
        raise Unauthorized("Given token not valid for any token type")
    return header


def bearer_token(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token or token in ("null", "undefined"):
        return None
    return token


def current_claims(request: Request) -> AccessClaims:
    """FastAPI dependency: the verified access token of the caller, else 401 (never 403)."""
    token = bearer_token(request)
    if token is None:
        raise Unauthorized("Authentication credentials were not provided.")
    verifier: AccessTokenVerifier = request.app.state.token_verifier
    return verifier.verify(token)


def current_user_id(request: Request) -> int:
    return current_claims(request).user_id


def optional_user_id(request: Request) -> int | None:
    """For public endpoints: the caller if a valid token came along; a bad or absent one is ignored."""
    try:
        return current_user_id(request)
    except Unauthorized:
        return None


CurrentUserId = Annotated[int, Depends(current_user_id)]
OptionalUserId = Annotated[int | None, Depends(optional_user_id)]
