"""The auth service app: accounts, sessions, tokens and signing keys."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

from fastapi import FastAPI
from sqlalchemy.engine import Engine
from sqlmodel import Session

from pawgle.auth import service
from pawgle.auth.api import refused_refresh_response, router
from pawgle.auth.components import AuthComponents, MailLimits
from pawgle.auth.config import Settings
from pawgle.auth.google import GoogleVerifier
from pawgle.auth.keys import KeyRingJwks, load_key_ring, load_refresh_secret
from pawgle.auth.passwords import Passwords
from pawgle.auth.sessions import InvalidRefreshToken, SessionPolicy
from pawgle.auth.tokens import AccessTokenIssuer
from pawgle.common.app import create_service_app
from pawgle.common.auth import AccessTokenVerifier
from pawgle.common.throttle import ThrottleStore, TrustedProxies
from pawgle.common.workers import PeriodicJob

log = logging.getLogger(__name__)

MIGRATIONS = Path(__file__).with_name("migrations")


def build_components(settings: Settings) -> AuthComponents:
    """Load keys and secrets (refusing unsafe production settings) and assemble what the services need."""
    key_ring = load_key_ring(settings)
    passwords = Passwords(
        time_cost=settings.argon2_time_cost,
        memory_kib=settings.argon2_memory_kib,
        parallelism=settings.argon2_parallelism,
    )
    google = None
    if settings.google_client_id:
        google = GoogleVerifier(
            client_id=settings.google_client_id, jwks_url=settings.google_jwks_url, issuers=settings.google_issuers
        )
    return AuthComponents(
        settings=settings,
        passwords=passwords,
        tokens=AccessTokenIssuer(
            key_ring, issuer=settings.jwt_issuer, audience=settings.jwt_audience, ttl_s=settings.access_ttl_s
        ),
        sessions=SessionPolicy(
            secret=load_refresh_secret(settings),
            ttl_s=settings.refresh_ttl_s,
            family_max_s=settings.refresh_family_max_s,
            grace_s=settings.refresh_grace_s,
        ),
        google=google,
        password_slots=asyncio.Semaphore(settings.password_hash_concurrency),
    )


PURGE_INTERVAL_S = 3600.0


def purge_worker(app: FastAPI) -> PeriodicJob:
    """Hourly: drop ended refresh-token families and long-expired links (every replica may run it)."""
    return PeriodicJob("purge-expired", lambda: _purge_once(app.state.engine), every_s=PURGE_INTERVAL_S)


def _purge_once(engine: Engine) -> int:
    with Session(engine) as session:
        removed = service.purge_expired(session=session)
        session.commit()
    if removed:
        log.info("expired sessions and links purged", extra={"rows": removed})
    return removed


def create_app(settings: Settings | None = None) -> FastAPI:
    """The auth service; keys, hasher and throttles are set up when the app starts."""
    settings = settings or Settings()

    async def on_startup(app: FastAPI) -> None:
        components = await asyncio.to_thread(build_components, settings)
        app.state.components = components
        app.state.key_ring = components.tokens.keys
        # Our own tokens are checked against our own key ring, never over HTTP to ourselves (see KeyRingJwks).
        verifier: AccessTokenVerifier = app.state.token_verifier
        verifier.jwks = KeyRingJwks(components.tokens.keys)
        app.state.trusted_proxies = TrustedProxies(settings.trusted_proxies)
        app.state.throttle_store = await ThrottleStore.open(
            app.state.js,
            bucket=settings.throttle_bucket,
            replicas=settings.stream_replicas,
            overrides=settings.throttle_rates,
            enabled=settings.throttle_enabled,
        )
        components.mail_limits = MailLimits(app.state.throttle_store)
        log.info(
            "auth keys loaded",
            extra={
                "kids": [k.kid for k in components.tokens.keys.keys],
                "algs": [k.alg for k in components.tokens.keys.keys],
                "password_hash": components.passwords.parameters,
            },
        )

    app = create_service_app(
        settings,
        title="PawGle auth",
        routers=[router],
        migrations=MIGRATIONS,
        on_startup=on_startup,
        workers=lambda app: [purge_worker(app)],
    )
    app.add_exception_handler(InvalidRefreshToken, refused_refresh_response)
    return app
