"""Google sign-in: verify an ID token against Google's published keys (URL configurable)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

import jwt

from pawgle.common.auth import JwksCache


class GoogleTokenError(Exception):
    """The ID token is not a valid Google token for this app."""


class GoogleEmailNotVerified(GoogleTokenError):
    """The token is valid but Google has not verified the account's e-mail."""


@dataclass(frozen=True)
class GoogleIdentity:
    subject: str
    email: str


class GoogleVerifier:
    """Checks signature (RS256, Google's JWKS, cached by kid), audience, issuer, expiry and email_verified."""

    def __init__(
        self,
        *,
        client_id: str,
        jwks_url: str,
        issuers: list[str],
        cache_ttl_s: float = 3600.0,
        min_refresh_interval_s: float = 5.0,
        timeout_s: float = 5.0,
        leeway_s: int = 30,
    ) -> None:
        self.client_id = client_id
        self.issuers = issuers
        self.leeway_s = leeway_s
        # The same key cache every service uses for our own tokens: refetch on an unknown kid, refresh by age.
        self.keys = JwksCache(
            jwks_url, min_refresh_interval_s=min_refresh_interval_s, max_age_s=cache_ttl_s, timeout_s=timeout_s
        )

    async def verify(self, credential: str) -> GoogleIdentity:
        """The verified identity of an ID token; raise GoogleTokenError otherwise."""
        try:
            header = jwt.get_unverified_header(credential)
        except jwt.PyJWTError as exc:
            raise GoogleTokenError("malformed token") from exc
        kid = header.get("kid")
        if header.get("alg") != "RS256" or not isinstance(kid, str):
            raise GoogleTokenError("unexpected algorithm or missing kid")
        key = await asyncio.to_thread(self.keys.key_for, kid)
        if key is None or key.algorithm_name != "RS256":
            raise GoogleTokenError("unknown signing key")
        try:
            claims = jwt.decode(
                credential,
                key=key,
                algorithms=["RS256"],
                audience=self.client_id,
                leeway=self.leeway_s,
                options={"require": ["iss", "aud", "exp", "iat", "sub"]},
            )
        except jwt.PyJWTError as exc:
            raise GoogleTokenError(str(exc)) from exc
        if claims.get("iss") not in self.issuers:
            raise GoogleTokenError("wrong issuer")
        email = claims.get("email")
        if not isinstance(email, str) or "@" not in email:
            raise GoogleTokenError("no e-mail in token")
        if claims.get("email_verified") not in (True, "true"):
            raise GoogleEmailNotVerified("email not verified")
        return GoogleIdentity(subject=str(claims["sub"]), email=email)
