"""reports, and the projections of pets and conversation participants"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

big_id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
precise = sa.DateTime().with_variant(mysql.DATETIME(fsp=6), "mysql")


def upgrade() -> None:
    op.create_table(
        "reports",
        sa.Column("id", big_id, primary_key=True, autoincrement=True),
        sa.Column("reporter_id", sa.BigInteger(), nullable=False),
        sa.Column("status", sa.String(8), nullable=False),
        sa.Column("latitude", sa.Double(), nullable=False),
        sa.Column("longitude", sa.Double(), nullable=False),
        sa.Column("map_lat", sa.Double(), nullable=False),
        sa.Column("map_lon", sa.Double(), nullable=False),
        sa.Column("animal_name", sa.String(100), nullable=False),
        sa.Column("type", sa.String(100), nullable=False),
        sa.Column("breed", sa.String(100), nullable=False),
        sa.Column("category", sa.String(16), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("contact_name", sa.String(100), nullable=False),
        sa.Column("contact_phone", sa.String(40), nullable=False),
        sa.Column("contact_email", sa.String(320), nullable=False),
        sa.Column("last_seen_date", sa.Date(), nullable=True),
        sa.Column("last_seen_time", sa.Time(), nullable=True),
        sa.Column("image_key", sa.String(100), nullable=True),
        sa.Column("feature_status", sa.String(16), nullable=False),
        sa.Column("is_test", sa.Boolean(), nullable=False),
        sa.Column("pet_id", sa.BigInteger(), nullable=True),
        sa.Column("pet_owner_id", sa.BigInteger(), nullable=True),
        sa.Column("pet_name", sa.String(100), nullable=True),
        sa.Column("pet_type", sa.String(100), nullable=True),
        sa.Column("pet_breed", sa.String(100), nullable=True),
        sa.Column("pet_category", sa.String(16), nullable=True),
        sa.Column("wants_pet", sa.Boolean(), nullable=False),
        sa.Column("reported_at", precise, nullable=False),
        sa.Column("resolved_at", precise, nullable=True),
        sa.Column("expires_at", precise, nullable=False),
        sa.Column("expiring_sent_at", precise, nullable=True),
        sa.Column("expired_at", precise, nullable=True),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_reports_reporter_id", "reports", ["reporter_id"])
    op.create_index("ix_reports_pet_id", "reports", ["pet_id"])
    op.create_index("ix_reports_pet_owner_id", "reports", ["pet_owner_id"])
    op.create_index("ix_reports_list", "reports", ["expired_at", "reported_at", "id"])
    op.create_index("ix_reports_map_position", "reports", ["map_lat", "map_lon"])
    op.create_index("ix_reports_due", "reports", ["expired_at", "expires_at"])
    op.create_table(
        "reports_known_pets",
        sa.Column("pet_id", sa.BigInteger(), primary_key=True, autoincrement=False),
        sa.Column("owner_id", sa.BigInteger(), nullable=False),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("type", sa.String(100), nullable=False),
        sa.Column("breed", sa.String(100), nullable=False),
        sa.Column("category", sa.String(16), nullable=False),
        sa.Column("deleted", sa.Boolean(), nullable=False),
        sa.Column("updated_at", precise, nullable=False),
    )
    op.create_index("ix_reports_known_pets_match", "reports_known_pets", ["owner_id", "name", "type", "breed"])
    op.create_table(
        "reports_viewers",
        sa.Column("user_id", sa.BigInteger(), primary_key=True, autoincrement=False),
        sa.Column("report_id", sa.BigInteger(), primary_key=True, autoincrement=False),
    )
    op.create_index("ix_reports_viewers_report_id", "reports_viewers", ["report_id"])


def downgrade() -> None:
    for table in ("reports_viewers", "reports_known_pets", "reports"):
        op.drop_table(table)
