"""chat pages remember when the recipient last read the conversation"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

precise = sa.DateTime().with_variant(mysql.DATETIME(fsp=6), "mysql")


def upgrade() -> None:
    with op.batch_alter_table("notifier_chat_pages") as batch:
        batch.add_column(sa.Column("last_read_at", precise, nullable=True))
        batch.alter_column("last_paged_at", existing_type=precise, nullable=True)


def downgrade() -> None:
    with op.batch_alter_table("notifier_chat_pages") as batch:
        batch.drop_column("last_read_at")
