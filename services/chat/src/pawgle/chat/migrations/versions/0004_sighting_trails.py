"""sighting trails: the match.found events handled, and one conversation per (trail, lost side)"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "conversation_matches",
        sa.Column("match_id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("conversation_id", sa.String(length=36), nullable=False),
        sa.Column("created_at", sa.DateTime().with_variant(mysql.DATETIME(fsp=6), "mysql"), nullable=False),
        sa.PrimaryKeyConstraint("match_id"),
    )
    op.create_index("ix_conversation_matches_conversation_id", "conversation_matches", ["conversation_id"])
    op.create_table(
        "trail_conversations",
        sa.Column("trail_id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("lost_side", sa.String(length=40), nullable=False),
        sa.Column("conversation_id", sa.String(length=36), nullable=False),
        sa.PrimaryKeyConstraint("trail_id", "lost_side"),
    )
    # Conversations matches opened before this revision: their match is handled already.
    op.execute(
        "INSERT INTO conversation_matches (match_id, conversation_id, created_at) "
        "SELECT match_id, id, created_at FROM conversations WHERE match_id IS NOT NULL"
    )


def downgrade() -> None:
    op.drop_table("trail_conversations")
    op.drop_index("ix_conversation_matches_conversation_id", table_name="conversation_matches")
    op.drop_table("conversation_matches")
