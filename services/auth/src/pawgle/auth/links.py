"""One-time links (sign-in, e-mail verification, password reset): issued hashed, consumed once.

A token carries 256 random bits; only its SHA-256 is stored. Issuing a link voids the user's unused links of
the same kind; the notifier receives the full link on the AUTH stream, which keeps it no longer than the link
lives.
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import timedelta
from urllib.parse import urlencode

from sqlmodel import Session

from pawgle.auth import repository
from pawgle.auth.components import AuthComponents
from pawgle.auth.models import MagicLink, User, utcnow
from pawgle.common.bus.outbox import add_event
from pawgle.common.errors import BadRequest
from pawgle.common.events.auth import MagicLinkRequested

SIGN_IN = "sign_in"
VERIFY_EMAIL = "verify_email"
PASSWORD_RESET = "password_reset"
# Both of these sign the user in when consumed on the magic-link page.
SIGN_IN_PURPOSES = (SIGN_IN, VERIFY_EMAIL)

MISSING = "Missing token."
EXPIRED = "This link has expired. Request a new one."
INVALID = "Invalid or tampered link."
USED = "This link has already been used."
NO_ACCOUNT = "Account no longer exists."


class LinkError(BadRequest):
    """A link that cannot be used (400); the message is what the user sees."""


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def issue_link(
    *, session: Session, components: AuthComponents, user: User, purpose: str, new_user: bool = False
) -> str:
    """Create a link for `user`, void their older ones of the same purpose, and queue the e-mail.

    `new_user`: the account was created in this transaction, so it has no older links to void. Skipping
    that UPDATE matters on MySQL: on an index range with no rows it locks the gap at the end of the index,
    and two signups holding that gap then deadlock on their INSERTs.
    """
    assert user.id is not None
    assert user.email is not None
    now = utcnow()
    token = secrets.token_urlsafe(32)
    expires_at = now + timedelta(seconds=components.settings.magic_link_ttl_s)
    purposes = SIGN_IN_PURPOSES if purpose in SIGN_IN_PURPOSES else (purpose,)
    if not new_user:
        repository.invalidate_magic_links(session=session, user_id=user.id, now=now, purposes=purposes)
    repository.save(
        session=session,
        row=MagicLink(token_hash=_hash(token), user_id=user.id, purpose=purpose, created_at=now, expires_at=expires_at),
    )
    origin = components.settings.frontend_origin.rstrip("/")
    if purpose == PASSWORD_RESET:
        link = f"{origin}{components.settings.password_reset_path}?{urlencode({'token': token})}"
    else:
        query = {"token": token}
        if purpose == VERIFY_EMAIL:
            query["next"] = components.settings.verify_email_next  # always a relative path (contract 8.2)
        link = f"{origin}/auth/magic?{urlencode(query)}"
    add_event(
        session,
        MagicLinkRequested(user_id=user.id, email=user.email, link=link, purpose=purpose, expires_at=expires_at),
    )
    return token


def find_usable_link(*, session: Session, token: str, purposes: tuple[str, ...]) -> tuple[MagicLink, User]:
    """The link of `token` and its user if the link may be used now; LinkError (400) saying why not."""
    token = (token or "").strip()
    if not token:
        raise LinkError(MISSING)
    if len(token) > 200:
        raise LinkError(INVALID)
    link = repository.find_magic_link(session=session, token_hash=_hash(token))
    if link is None or link.id is None or link.purpose not in purposes:
        raise LinkError(INVALID)
    if link.used_at is not None:
        raise LinkError(USED)
    if link.invalidated_at is not None or link.expires_at <= utcnow():
        raise LinkError(EXPIRED)
    user = repository.get_user(session=session, user_id=link.user_id)
    if user is None or not user.can_sign_in:
        raise LinkError(NO_ACCOUNT)
    return link, user


def redeem_link(*, session: Session, token: str, purposes: tuple[str, ...]) -> tuple[MagicLink, User]:
    """Mark a link used (exactly once, even under concurrent clicks) and return it with its user."""
    link, user = find_usable_link(session=session, token=token, purposes=purposes)
    assert link.id is not None
    if not repository.claim_magic_link(session=session, link_id=link.id, now=utcnow()):
        raise LinkError(USED)
    return link, user
