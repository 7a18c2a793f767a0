"""Verifying access tokens in any service, against the auth service's JWKS (cached in `pawgle.common.jwks`).

Only asymmetric algorithms are accepted, which rules out `alg: none` and HS256-signed-with-the-public-key
forgeries. A verified token is remembered, so its signature is checked once; its lifetime, key and the
account's revocation are checked on every request.
"""

from __future__ import annotations

import base64
import json
import logging
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated, Any

import jwt
from fastapi import Depends, Request

from pawgle.common.errors import Unauthorized
from pawgle.common.jwks import JwksCache

if TYPE_CHECKING:
    from pawgle.common.revocation import RevocationList

log = logging.getLogger(__name__)

ALLOWED_ALGORITHMS = ("EdDSA", "RS256", "ES256")


@dataclass(frozen=True)
class AccessClaims:
    user_id: int
    jti: str
    expires_at: int
    issued_at: float = 0.0


class AccessTokenVerifier:
    """Checks an access token: signature (key by kid), issuer, audience, lifetime, and that its account
    was not deleted or deactivated since it was issued (the mesh-wide revocation list)."""

    def __init__(
        self,
        jwks: JwksCache,
        *,
        issuer: str,
        audience: str,
        leeway_s: int = 10,
        cache_size: int = 4096,
        revocations: RevocationList | None = None,
    ) -> None:
        self.jwks = jwks
        self.issuer = issuer
        self.audience = audience
        self.leeway_s = leeway_s
        self.revocations = revocations
        # A client sends the same token with every request until it expires; the signature check (~60 us
        # for EdDSA) is done once per token. Keyed by the whole token, so a cached entry proves nothing new.
        self.cache_size = cache_size
        self._verified: OrderedDict[str, tuple[AccessClaims, str]] = OrderedDict()
        self._verified_lock = threading.Lock()

    def verify(self, token: str) -> AccessClaims:
        """Return the claims of a valid access token; raise Unauthorized for anything else.

        On an event loop this answers from the cached keys (an unknown kid is fetched in the background
        and refused this time); async code should await `verify_async`, which waits for that fetch.
        """
        claims = self._cached(token)
        if claims is None:
            header = _unverified_header(token)
            kid = _kid_of(header)
            claims = self._decode(token, header, self.jwks.key_for(kid))
            self._remember(token, claims, kid)
        self._refuse_revoked(claims)
        return claims

    async def verify_async(self, token: str) -> AccessClaims:
        """Like `verify`, for async code: waits (without blocking the loop) for an unknown kid's fetch."""
        claims = self._cached(token)
        if claims is None:
            header = _unverified_header(token)
            kid = _kid_of(header)
            claims = self._decode(token, header, await self.jwks.get_key(kid))
            self._remember(token, claims, kid)
        self._refuse_revoked(claims)
        return claims

    def verified_before(self, token: str) -> AccessClaims | None:
        """The claims of a token this verifier accepted before, if they still hold; else None.

        Still within its lifetime, its key still published, its account not revoked since: the checks
        `verify` makes on a cached token, without raising and without any I/O (the read lane's question).
        """
        claims = self._cached(token)
        if claims is None:
            return None
        if self.revocations is not None and self.revocations.is_revoked(claims.user_id, claims.issued_at):
            return None
        return claims

    def _cached(self, token: str) -> AccessClaims | None:
        hit = self._verified.get(token)
        if hit is None:
            return None
        claims, kid = hit
        # Still within its lifetime, and its key has not been withdrawn from the JWKS since.
        if time.time() <= claims.expires_at + self.leeway_s and self.jwks.key_for(kid) is not None:
            return claims
        return None

    def _remember(self, token: str, claims: AccessClaims, kid: str) -> None:
        if self.cache_size > 0:
            with self._verified_lock:
                self._verified[token] = (claims, kid)
                while len(self._verified) > self.cache_size:
                    self._verified.popitem(last=False)

    def _refuse_revoked(self, claims: AccessClaims) -> None:
        if self.revocations is not None and self.revocations.is_revoked(claims.user_id, claims.issued_at):
            raise Unauthorized("User is inactive or deleted.")

    def _decode(self, token: str, header: dict[str, Any], key: Any) -> AccessClaims:
        alg = header.get("alg")
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
            issued_at = float(claims["iat"])
        except (TypeError, ValueError) as exc:
            raise Unauthorized("Given token not valid for any token type") from exc
        return AccessClaims(user_id=user_id, jti=str(claims["jti"]), expires_at=int(claims["exp"]), issued_at=issued_at)


def _kid_of(header: dict[str, Any]) -> str:
    alg, kid = header.get("alg"), header.get("kid")
    if alg not in ALLOWED_ALGORITHMS or not isinstance(kid, str) or not kid:
        raise Unauthorized("Given token not valid for any token type")
    return kid


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
    """The verified access token of the caller, else 401 (never 403); for sync code (see `verify`)."""
    token = bearer_token(request)
    if token is None:
        raise Unauthorized("Authentication credentials were not provided.")
    verifier: AccessTokenVerifier = request.app.state.token_verifier
    return verifier.verify(token)


async def caller_claims(request: Request) -> AccessClaims:
    """FastAPI dependency: the verified access token of the caller, else 401 (never 403)."""
    token = bearer_token(request)
    if token is None:
        raise Unauthorized("Authentication credentials were not provided.")
    verifier: AccessTokenVerifier = request.app.state.token_verifier
    return await verifier.verify_async(token)


async def current_user_id(request: Request) -> int:
    """FastAPI dependency: the caller's user id, else 401."""
    return (await caller_claims(request)).user_id


async def optional_user_id(request: Request) -> int | None:
    """For public endpoints: the caller if a valid token came along; a bad or absent one is ignored."""
    try:
        return await current_user_id(request)
    except Unauthorized:
        return None


CurrentUserId = Annotated[int, Depends(current_user_id)]
OptionalUserId = Annotated[int | None, Depends(optional_user_id)]
