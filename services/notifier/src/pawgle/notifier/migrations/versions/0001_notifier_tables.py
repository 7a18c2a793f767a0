"""bus tables, alert areas and their grid cells, notifications, projections and the e-mail log"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

from pawgle.common.migrations import create_bus_tables, drop_bus_tables

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

big_id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
precise = sa.DateTime().with_variant(mysql.DATETIME(fsp=6), "mysql")


def upgrade() -> None:
    create_bus_tables()
    op.create_table(
        "alert_areas",
        sa.Column("id", big_id, primary_key=True, autoincrement=True),
        sa.Column("user_id", sa.BigInteger(), nullable=False),
        sa.Column("label", sa.String(64), nullable=False),
        sa.Column("center_lat", sa.Float(), nullable=False),
        sa.Column("center_lon", sa.Float(), nullable=False),
        sa.Column("radius_km", sa.Float(), nullable=False),
        sa.Column("status_filter", sa.String(8), nullable=False),
        sa.Column("is_active", sa.Boolean(), nullable=False),
        sa.Column("created_at", precise, nullable=False),
    )
    op.create_index("ix_alert_areas_user_id", "alert_areas", ["user_id"])
    op.create_table(
        "alert_area_cells",
        sa.Column("cell", sa.Integer(), primary_key=True, autoincrement=False),
        sa.Column("alert_id", sa.BigInteger(), primary_key=True, autoincrement=False),
    )
    op.create_index("ix_alert_area_cells_alert_id", "alert_area_cells", ["alert_id"])
    op.create_table(
        "notifications",
        sa.Column("id", big_id, primary_key=True, autoincrement=True),
        sa.Column("user_id", sa.BigInteger(), nullable=False),
        sa.Column("verb", sa.String(200), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("target_id", sa.BigInteger(), nullable=True),
        sa.Column("target_name", sa.String(200), nullable=True),
        sa.Column("is_read", sa.Boolean(), nullable=False),
        sa.Column("created_at", precise, nullable=False),
        sa.Column("dedupe_key", sa.String(100), nullable=False, unique=True),
    )
    op.create_index("ix_notifications_user_id", "notifications", ["user_id"])
    op.create_index("ix_notifications_user_read", "notifications", ["user_id", "is_read"])
    op.create_table(
        "notifier_contacts",
        sa.Column("user_id", sa.BigInteger(), primary_key=True, autoincrement=False),
        sa.Column("email", sa.String(320), nullable=False),
        sa.Column("display_name", sa.String(150), nullable=False),
        sa.Column("email_verified", sa.Boolean(), nullable=False),
        sa.Column("is_active", sa.Boolean(), nullable=False),
        sa.Column("updated_at", precise, nullable=False),
    )
    op.create_table(
        "notifier_pet_names",
        sa.Column("pet_id", sa.BigInteger(), primary_key=True, autoincrement=False),
        sa.Column("owner_id", sa.BigInteger(), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
    )
    op.create_index("ix_notifier_pet_names_owner_id", "notifier_pet_names", ["owner_id"])
    op.create_table(
        "notifier_match_mail",
        sa.Column("match_id", sa.BigInteger(), primary_key=True, autoincrement=False),
        sa.Column("lost_user_id", sa.BigInteger(), nullable=True),
        sa.Column("name", sa.String(200), nullable=True),
        sa.Column("found_event_id", sa.String(26), nullable=True),
        sa.Column("conversation_id", sa.String(36), nullable=True),
        sa.Column("mailed", sa.Boolean(), nullable=False),
    )
    op.create_index("ix_notifier_match_mail_lost_user_id", "notifier_match_mail", ["lost_user_id"])
    op.create_table(
        "notifier_chat_pages",
        sa.Column("conversation_id", sa.String(36), primary_key=True),
        sa.Column("user_id", sa.BigInteger(), primary_key=True, autoincrement=False),
        sa.Column("last_paged_at", precise, nullable=False),
    )
    op.create_index("ix_notifier_chat_pages_user_id", "notifier_chat_pages", ["user_id"])
    op.create_table(
        "notifier_reply_tokens",
        sa.Column("token_hash", sa.String(64), primary_key=True),
        sa.Column("conversation_id", sa.String(36), nullable=False),
        sa.Column("user_id", sa.BigInteger(), nullable=False),
        sa.Column("expires_at", precise, nullable=False),
    )
    op.create_index("ix_notifier_reply_tokens_user_id", "notifier_reply_tokens", ["user_id"])
    op.create_table(
        "email_log",
        sa.Column("id", big_id, primary_key=True, autoincrement=True),
        sa.Column("dedupe_key", sa.String(64), nullable=False, unique=True),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("user_id", sa.BigInteger(), nullable=True),
        sa.Column("to_address", sa.String(320), nullable=False),
        sa.Column("reply_to", sa.String(320), nullable=True),
        sa.Column("subject", sa.String(200), nullable=False),
        sa.Column("text_body", sa.Text(), nullable=False),
        sa.Column("html_body", sa.Text(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", precise, nullable=False),
        sa.Column("lease_owner", sa.String(64), nullable=True),
        sa.Column("lease_until", precise, nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("provider_id", sa.String(120), nullable=True),
        sa.Column("created_at", precise, nullable=False),
        sa.Column("sent_at", precise, nullable=True),
    )
    op.create_index("ix_email_log_due", "email_log", ["status", "next_attempt_at"])
    op.create_index("ix_email_log_user_id", "email_log", ["user_id"])


def downgrade() -> None:
    for table in (
        "email_log",
        "notifier_reply_tokens",
        "notifier_chat_pages",
        "notifier_match_mail",
        "notifier_pet_names",
        "notifier_contacts",
        "notifications",
        "alert_area_cells",
        "alert_areas",
    ):
        op.drop_table(table)
    drop_bus_tables()
