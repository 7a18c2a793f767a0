"""Google sign-in: verify an ID token against Google's published keys (URL configurable)."""

from __future__ import annotations

from dataclasses import dataclass

import jwt

from pawgle.common.auth import JwksCache
from pawgle.common.errors import Unauthorized


class GoogleTokenError(Unauthorized):
    """The ID token is not a valid Google token for this app (401; the reason goes to the log, not the caller)."""

    def __init__(self, reason: str) -> None:
        super().__init__("Invalid Google token.")
        self.reason = reason


class GoogleEmailNotVerified(Unauthorized):
    """The token is valid but Google has not verified the account's e-mail (401)."""

    def __init__(self) -> None:
        super().__init__("Google account email is not verified.")


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

    def verify(self, credential: str) -> GoogleIdentity:
        """The verified identity of an ID token; raise GoogleTokenError otherwise.

        Blocking (a key fetch on an unknown kid): call it from a worker thread, as the service functions are.
        """
        try:
            header = jwt.get_unverified_header(credential)
        except jwt.PyJWTError as exc:
            raise GoogleTokenError("malformed token") from exc
        kid = header.get("kid")
        if header.get("alg") != "RS256" or not isinstance(kid, str):
            raise GoogleTokenError("unexpected algorithm or missing kid")
        key = self.keys.key_for(kid)
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
            raise GoogleEmailNotVerified()
        return GoogleIdentity(subject=str(claims["sub"]), email=email)
