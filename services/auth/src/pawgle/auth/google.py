"""Google sign-in: verify an ID token against Google's published keys (URL configurable)."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import Any

import httpx
import jwt


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
        self.jwks_url = jwks_url
        self.issuers = issuers
        self.cache_ttl_s = cache_ttl_s
        self.min_refresh_interval_s = min_refresh_interval_s
        self.timeout_s = timeout_s
        self.leeway_s = leeway_s
        self._keys: dict[str, Any] = {}
        self._fetched_at = 0.0
        self._lock = asyncio.Lock()

    async def _fetch_keys(self) -> None:
        async with httpx.AsyncClient(timeout=self.timeout_s) as client:
            response = await client.get(self.jwks_url)
            response.raise_for_status()
            document = response.json()
        keys: dict[str, Any] = {}
        for jwk in document.get("keys", []):
            if jwk.get("kty") == "RSA" and jwk.get("kid"):
                keys[jwk["kid"]] = jwt.PyJWK.from_dict(jwk, algorithm="RS256").key
        self._keys = keys
        self._fetched_at = time.monotonic()

    async def _key_for(self, kid: str) -> Any:
        stale = time.monotonic() - self._fetched_at > self.cache_ttl_s
        if kid in self._keys and not stale:
            return self._keys[kid]
        async with self._lock:
            age = time.monotonic() - self._fetched_at
            if (kid not in self._keys and age >= self.min_refresh_interval_s) or age > self.cache_ttl_s:
                try:
                    await self._fetch_keys()
                except (httpx.HTTPError, ValueError, jwt.PyJWTError) as exc:
                    raise GoogleTokenError(f"cannot fetch Google's keys: {exc!r}") from exc
        return self._keys.get(kid)

    async def verify(self, credential: str) -> GoogleIdentity:
        """The verified identity of an ID token; raise GoogleTokenError otherwise."""
        try:
            header = jwt.get_unverified_header(credential)
        except jwt.PyJWTError as exc:
            raise GoogleTokenError("malformed token") from exc
        kid = header.get("kid")
        if header.get("alg") != "RS256" or not isinstance(kid, str):
            raise GoogleTokenError("unexpected algorithm or missing kid")
        key = await self._key_for(kid)
        if key is None:
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
