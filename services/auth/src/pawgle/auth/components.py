"""What the service functions need besides a database session, assembled once at startup."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

import anyio.from_thread

from pawgle.auth.config import Settings
from pawgle.auth.google import GoogleVerifier
from pawgle.auth.passwords import Passwords
from pawgle.auth.sessions import SessionPolicy
from pawgle.auth.tokens import AccessTokenIssuer
from pawgle.common.throttle import ThrottleStore


class MailLimits:
    """How many link mails one address may receive (D4), on top of the per-client throttle of the route.

    Exceeding it is silent: the route answers as usual and no mail goes out, so the limit tells nobody
    whether the address has an account. Counted in the shared throttle bucket; called from the service
    functions, which run in FastAPI's worker threads, hence the hop back to the event loop.
    """

    def __init__(self, store: ThrottleStore | None = None) -> None:
        self.store = store

    def allow(self, *, scope: str, email: str) -> bool:
        """Count one mail of `scope` to `email`; False once the address has had its share."""
        store = self.store
        if store is None:
            return True
        verdict = anyio.from_thread.run(store.hit, f"{scope}_email", f"email:{email}", store.rate_for(scope))
        return verdict.allowed


@dataclass
class AuthComponents:
    """Settings, the password hasher, the access-token issuer, the refresh-session policy, Google, mail limits,
    and the slots of requests allowed to hash passwords at once."""

    settings: Settings
    passwords: Passwords
    tokens: AccessTokenIssuer
    sessions: SessionPolicy
    google: GoogleVerifier | None
    mail_limits: MailLimits = field(default_factory=MailLimits)
    password_slots: asyncio.Semaphore = field(default_factory=lambda: asyncio.Semaphore(4))
