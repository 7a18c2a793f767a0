"""Per-account throttles of the credential endpoints, on top of the per-address ones of `pawgle.common.throttle`.

A throttle per client address alone lets an attacker with many addresses (or, before, many accounts'
access tokens) guess one victim's password at the full rate from each of them. So the target account is
counted as well: the normalised e-mail of the body, or, for bodies that carry a one-time token instead
(reset, magic link), the token itself. Its counter is `<scope>_account`, at the scope's rate unless a
deployment overrides `<scope>_account` in AUTH_THROTTLE_RATES.
"""

from __future__ import annotations

import hashlib
import json

from fastapi import Request

from pawgle.common.email import InvalidEmail, normalize_email
from pawgle.common.throttle import ThrottleStore


async def _body_fields(request: Request) -> dict[str, object]:
    # FastAPI has already read the body for the route's model; Starlette caches it, so this is no second read.
    try:
        parsed = json.loads(await request.body() or b"{}")
    except (ValueError, UnicodeDecodeError):
        return {}
    return parsed if isinstance(parsed, dict) else {}


def target_account(fields: dict[str, object]) -> str | None:
    """Which account a credential request aims at: `email:<normal form>`, `token:<sha256>`, or None."""
    email = fields.get("email")
    if isinstance(email, str) and email:
        try:
            return f"email:{normalize_email(email)}"
        except InvalidEmail:
            return None  # the request is refused with a 400 anyway
    token = fields.get("token")
    if isinstance(token, str) and token.strip():
        return f"token:{hashlib.sha256(token.strip().encode()).hexdigest()}"
    return None


class AccountThrottle:
    """FastAPI dependency: `Depends(AccountThrottle("login"))` limits a route per target account (429)."""

    def __init__(self, scope: str) -> None:
        self.scope = scope

    async def __call__(self, request: Request) -> None:
        store: ThrottleStore | None = getattr(request.app.state, "throttle_store", None)
        if store is None:
            return
        target = target_account(await _body_fields(request))
        if target is None:
            return
        scope = f"{self.scope}_account"
        await store.check(scope, target, store.rate_for(scope, store.rate_for(self.scope)))
