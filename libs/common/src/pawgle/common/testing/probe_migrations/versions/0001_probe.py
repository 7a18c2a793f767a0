"""bus tables and the probe tally"""

import sqlalchemy as sa
from alembic import op

from pawgle.common.migrations import create_bus_tables, drop_bus_tables

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    create_bus_tables()
    op.create_table(
        "probe_tally",
        sa.Column("key", sa.String(64), primary_key=True),
        sa.Column("hits", sa.Integer(), nullable=False),
        sa.Column("latency_us", sa.Integer(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("probe_tally")
    drop_bus_tables()
