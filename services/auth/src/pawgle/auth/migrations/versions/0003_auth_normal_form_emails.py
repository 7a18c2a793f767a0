"""stored e-mail addresses in the one normal form (NFKC, case-folded, IDNA domain)

Before this, an address's lookup key was only lower-cased, so a look-alike spelling (U+212A KELVIN SIGN
for K, fullwidth letters) was a second account. Each address is now rewritten in the normal form of
`pawgle.common.email`. When two accounts turn out to hold the same address, the one that can sign in
with a verified address keeps it (the oldest such account if several do); the others keep their row but
lose the lookup key, so the address belongs to one account only. An address the normaliser refuses (a
control character) is left as it is and can no longer be typed in, which is the point.
"""

import logging

import sqlalchemy as sa
from alembic import op

from pawgle.common.email import InvalidEmail, normalize_email

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

log = logging.getLogger("alembic.runtime.migration")


def _claim_rank(row: sa.Row) -> tuple[int, int]:
    """Lower wins: a verified, active, undeleted account first, then the oldest."""
    usable = bool(row.email_verified) and bool(row.is_active) and row.deleted_at is None
    return (0 if usable else 1, int(row.id))


def upgrade() -> None:
    bind = op.get_bind()
    rows = bind.execute(
        sa.text(
            "SELECT id, email, email_key, email_verified, is_active, deleted_at FROM auth_users WHERE email IS NOT NULL"
        )
    ).all()
    claims: dict[str, list[sa.Row]] = {}
    for row in rows:
        try:
            normal = normalize_email(row.email)
        except InvalidEmail:
            log.warning("auth user %s has an address the normaliser refuses; left unchanged", row.id)
            continue
        claims.setdefault(normal, []).append(row)
    changes: dict[int, tuple[str, str | None]] = {}  # id -> (email, email_key)
    for normal, holders in claims.items():
        holders.sort(key=_claim_rank)
        winner, *losers = holders
        if winner.email != normal or winner.email_key != normal:
            changes[winner.id] = (normal, normal)
        for loser in losers:
            log.warning("auth user %s shares its address with user %s; its lookup key is removed", loser.id, winner.id)
            changes[loser.id] = (normal, None)
    # Clear first, then set: a new key may be another row's old one.
    for user_id in changes:
        bind.execute(sa.text("UPDATE auth_users SET email_key = NULL WHERE id = :id"), {"id": user_id})
    for user_id, (email, email_key) in changes.items():
        bind.execute(
            sa.text("UPDATE auth_users SET email = :email, email_key = :key WHERE id = :id"),
            {"email": email, "key": email_key, "id": user_id},
        )


def downgrade() -> None:
    pass  # the normal form is still a valid address; nothing to undo
