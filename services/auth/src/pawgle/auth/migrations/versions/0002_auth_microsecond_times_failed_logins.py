"""microsecond datetimes on MySQL; failed sign-ins recorded on the user"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

# Every datetime column of auth's tables and whether it may be NULL. MySQL's DATETIME keeps whole seconds
# unless it is DATETIME(6); SQLite stores the text with its microseconds already, so only MySQL changes.
_DATETIMES = {
    "auth_users": {"created_at": False, "updated_at": False, "password_changed_at": True, "deleted_at": True},
    "auth_refresh_tokens": {
        "created_at": False,
        "expires_at": False,
        "family_expires_at": False,
        "rotated_at": True,
        "revoked_at": True,
    },
    "auth_magic_links": {"created_at": False, "expires_at": False, "used_at": True, "invalidated_at": True},
    "auth_identities": {"created_at": False},
}
Timestamp = sa.DateTime().with_variant(mysql.DATETIME(fsp=6), "mysql")


def _alter_datetimes(new_type: sa.types.TypeEngine, old_type: sa.types.TypeEngine) -> None:
    if op.get_bind().dialect.name != "mysql":
        return
    for table, columns in _DATETIMES.items():
        for column, nullable in columns.items():
            op.alter_column(table, column, type_=new_type, existing_type=old_type, existing_nullable=nullable)


def upgrade() -> None:
    _alter_datetimes(mysql.DATETIME(fsp=6), mysql.DATETIME())
    op.add_column("auth_users", sa.Column("failed_logins", sa.Integer(), nullable=False, server_default="0"))
    op.add_column("auth_users", sa.Column("last_failed_login_at", Timestamp, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("auth_users") as batch:
        batch.drop_column("last_failed_login_at")
        batch.drop_column("failed_logins")
    _alter_datetimes(mysql.DATETIME(), mysql.DATETIME(fsp=6))
