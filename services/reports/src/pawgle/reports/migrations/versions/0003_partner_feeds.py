"""partner organisations and the rows their feeds became"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

big_id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
precise = sa.DateTime().with_variant(mysql.DATETIME(fsp=6), "mysql")


def upgrade() -> None:
    op.add_column("reports", sa.Column("partner_id", sa.BigInteger(), nullable=True))
    op.create_table(
        "reports_partners",
        sa.Column("id", big_id, primary_key=True, autoincrement=True),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("user_id", sa.BigInteger(), nullable=False),
        sa.Column("key_hash", sa.String(64), nullable=False, unique=True),
        sa.Column("photo_hosts", sa.Text(), nullable=False),
        sa.Column("revoked", sa.Boolean(), nullable=False),
        sa.Column("created_at", precise, nullable=False),
        sqlite_autoincrement=True,
    )
    op.create_table(
        "reports_partner_rows",
        sa.Column("partner_id", sa.BigInteger(), primary_key=True, autoincrement=False),
        sa.Column("external_id", sa.String(100), primary_key=True),
        sa.Column("report_id", sa.BigInteger(), nullable=False),
        sa.Column("photo_url", sa.Text(), nullable=False),
        sa.Column("updated_at", precise, nullable=False),
    )
    op.create_index("ix_reports_partner_rows_report_id", "reports_partner_rows", ["report_id"])


def downgrade() -> None:
    op.drop_table("reports_partner_rows")
    op.drop_table("reports_partners")
    with op.batch_alter_table("reports") as batch:
        batch.drop_column("partner_id")
