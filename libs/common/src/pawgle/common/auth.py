"""Verifying access tokens in any service, against the auth service's JWKS.

Keys are cached by `kid`. Nothing here blocks an event loop: on a loop, keys are fetched with an async
client, one fetch at a time, and a whole-set refresh runs in the background while requests go on with the
keys already known. An unknown `kid` waits for at most one shared fetch and is then remembered as unknown
for a short while, so a flood of forged kids costs one fetch every few seconds, not one per request. Only
asymmetric algorithms are accepted, which rules out `alg: none` and HS256-signed-with-the-public-key
forgeries.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated, Any

import httpx
import jwt
from fastapi import Depends, Request

from pawgle.common.errors import Unauthorized

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


def _on_event_loop() -> bool:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True


class JwksCache:
    """Public keys by kid, fetched from a JWKS URL (or given directly) and cached.

    - An unknown kid triggers a fetch (a rotation), at most every `min_refresh_interval_s`; concurrent
      callers share the fetch in flight. A kid still unknown afterwards is answered "unknown" for
      `negative_ttl_s` without asking again.
    - The whole set is refetched in the background once it is older than `refresh_after_s` (by default
      80% of `max_age_s`), so a key the auth service withdrew (after a compromise) stops verifying
      everywhere within minutes, and no request ever waits for that refresh.
    - While the JWKS is unreachable the keys already known stay in use.
    - `url=None` (see `JwksCache.local`) never fetches: the keys come from `set_keys` only. The auth
      service verifies its own tokens this way, from its key ring.
    """

    def __init__(
        self,
        url: str | None,
        *,
        min_refresh_interval_s: float = 5.0,
        max_age_s: float = 300.0,
        refresh_after_s: float | None = None,
        negative_ttl_s: float = 30.0,
        negative_cache_size: int = 4096,
        timeout_s: float = 3.0,
    ) -> None:
        self.url = url
        self.min_refresh_interval_s = min_refresh_interval_s
        self.max_age_s = max_age_s
        self.refresh_after_s = max_age_s * 0.8 if refresh_after_s is None else refresh_after_s
        self.negative_ttl_s = negative_ttl_s
        self.negative_cache_size = negative_cache_size
        self.timeout_s = timeout_s
        self.fetches = 0  # completed fetch attempts, for tests and benchmarks
        self._last_fetch_ok = False  # a failed fetch proves nothing about a kid: it is not remembered unknown
        self._keys: dict[str, Any] = {}
        self._loaded_at = 0.0  # when the current set was loaded
        self._tried_at = -1e9  # when a fetch was last started
        self._unknown: OrderedDict[str, float] = OrderedDict()  # kid -> when it was found unpublished
        self._sync_lock = threading.Lock()  # one blocking fetch at a time, for callers off any loop
        self._inflight: asyncio.Task[None] | None = None  # the async fetch every waiter shares

    @classmethod
    def local(cls, jwks: dict[str, Any]) -> JwksCache:
        """A cache of the given keys that never fetches (the auth service's own key ring)."""
        cache = cls(None)
        cache.set_keys(jwks)
        return cache

    def set_keys(self, jwks: dict[str, Any]) -> None:
        """Load keys from a JWKS document (used by the auth service itself, and by tests)."""
        keys: dict[str, Any] = {}
        for jwk in jwks.get("keys", []):
            kid = jwk.get("kid")
            if kid:
                keys[kid] = jwt.PyJWK.from_dict(jwk)
        self._keys = keys
        self._loaded_at = time.monotonic()
        for kid in keys:
            self._unknown.pop(kid, None)

    def known_key(self, kid: str) -> Any:
        """The cached key for `kid`, or None; never does I/O."""
        return self._keys.get(kid)

    def key_for(self, kid: str) -> Any:
        """The public key (a PyJWK, which knows its algorithm) for `kid`, or None if it is not published.

        Safe to call anywhere: on an event loop it answers from memory and schedules any fetch in the
        background; off a loop (a worker thread) it may fetch, blocking only its own thread.
        """
        if _on_event_loop():
            key = self._keys.get(kid)
            if (key is None and self._may_fetch_for(kid)) or (key is not None and self._refresh_due()):
                self._start_fetch()
            return key
        return self._key_for_blocking(kid)

    async def get_key(self, kid: str) -> Any:
        """Like `key_for`, for async code: an unknown kid waits for the one shared fetch, never blocking."""
        key = self._keys.get(kid)
        if key is not None:
            if self._refresh_due():
                self._start_fetch()  # in the background: this request goes on with the key it has
            return key
        if not self._is_unknown_candidate(kid):
            return None
        if self._inflight_here() is None and self._may_fetch_for(kid):
            self._start_fetch()
        task = self._inflight_here()
        if task is None:
            return None  # fetched moments ago (rate limit): the kid is not published
        # shield: a caller that gives up (client gone) must not cancel the fetch the others share.
        await asyncio.shield(task)
        key = self._keys.get(kid)
        if key is None and self._last_fetch_ok:
            self._remember_unknown(kid)  # a fetch made after this kid was seen does not publish it
        return key

    def _inflight_here(self) -> asyncio.Task[None] | None:
        """The fetch in flight on this loop (a cache shared by apps on other loops cannot await theirs)."""
        task = self._inflight
        if task is None or task.done() or task.get_loop() is not asyncio.get_running_loop():
            return None
        return task

    def _is_unknown_candidate(self, kid: str) -> bool:
        seen = self._unknown.get(kid)
        return seen is None or time.monotonic() - seen >= self.negative_ttl_s

    def _may_fetch_for(self, kid: str) -> bool:
        if self.url is None or not self._is_unknown_candidate(kid):
            return False
        return time.monotonic() - self._tried_at >= self.min_refresh_interval_s

    def _refresh_due(self) -> bool:
        if self.url is None:
            return False
        now = time.monotonic()
        return now - self._loaded_at >= self.refresh_after_s and now - self._tried_at >= self.min_refresh_interval_s

    def _remember_unknown(self, kid: str) -> None:
        self._unknown[kid] = time.monotonic()
        self._unknown.move_to_end(kid)
        while len(self._unknown) > self.negative_cache_size:
            try:
                self._unknown.popitem(last=False)
            except KeyError:  # emptied meanwhile by another thread
                break

    def _start_fetch(self) -> None:
        """Start the async fetch on the running loop unless one is already in flight (single flight)."""
        if self._inflight_here() is not None:
            return
        self._tried_at = time.monotonic()
        self._inflight = asyncio.get_running_loop().create_task(self._fetch_async(), name="jwks-fetch")

    async def _fetch_async(self) -> None:
        assert self.url is not None
        try:
            async with httpx.AsyncClient(timeout=self.timeout_s) as client:
                response = await client.get(self.url)
                response.raise_for_status()
                self.set_keys(response.json())
            self._last_fetch_ok = True
        except Exception as exc:  # noqa: BLE001 - a bad answer (even a malformed set) only keeps the old keys
            self._last_fetch_ok = False
            log.warning("cannot refresh the JWKS from %s: %r", self.url, exc)
        finally:
            self.fetches += 1

    def _key_for_blocking(self, kid: str) -> Any:
        key = self._keys.get(kid)
        stale = time.monotonic() - self._loaded_at >= self.max_age_s
        if self.url is None or key is not None and not stale:
            return key
        with self._sync_lock:
            unknown = kid not in self._keys and self._is_unknown_candidate(kid)
            stale = time.monotonic() - self._loaded_at >= self.max_age_s
            if (unknown or stale) and time.monotonic() - self._tried_at >= self.min_refresh_interval_s:
                self._tried_at = time.monotonic()
                self._fetch_blocking()
            key = self._keys.get(kid)
            if key is None and self._last_fetch_ok:
                self._remember_unknown(kid)
            return key

    def _fetch_blocking(self) -> None:
        assert self.url is not None
        try:
            response = httpx.get(self.url, timeout=self.timeout_s)
            response.raise_for_status()
            self.set_keys(response.json())
            self._last_fetch_ok = True
        except Exception as exc:  # noqa: BLE001 - a bad answer (even a malformed set) only keeps the old keys
            self._last_fetch_ok = False
            log.warning("cannot refresh the JWKS from %s: %r", self.url, exc)
        finally:
            self.fetches += 1


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
