"""subjects (what search shows of each pet and report) and the embedding jobs queue"""

import sqlalchemy as sa
from alembic import op

from pawgle.common.db import BigId, PreciseDateTime

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "subjects",
        sa.Column("kind", sa.String(8), primary_key=True),
        sa.Column("subject_id", sa.BigInteger(), primary_key=True, autoincrement=False),
        sa.Column("owner_id", sa.BigInteger(), nullable=False),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("type", sa.String(100), nullable=False),
        sa.Column("breed", sa.String(100), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("searchable", sa.Boolean(), nullable=False),
        sa.Column("image_keys", sa.JSON(), nullable=False),
        sa.Column("latitude", sa.Float(), nullable=True),
        sa.Column("longitude", sa.Float(), nullable=True),
        sa.Column("pet_id", sa.BigInteger(), nullable=True),
        sa.Column("feature_status", sa.String(12), nullable=False),
        sa.Column("model_key", sa.String(120), nullable=False),
        sa.Column("vector_count", sa.Integer(), nullable=False),
        sa.Column("updated_at", PreciseDateTime, nullable=False),
    )
    op.create_index("ix_subjects_owner_id", "subjects", ["owner_id"])
    op.create_index("ix_subjects_pet_id", "subjects", ["pet_id"])
    op.create_table(
        "embedding_jobs",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("kind", sa.String(8), nullable=False),
        sa.Column("subject_id", sa.BigInteger(), nullable=False),
        sa.Column("image_keys", sa.JSON(), nullable=False),
        sa.Column("generation", sa.Integer(), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("due_at", PreciseDateTime, nullable=False),
        sa.Column("last_error", sa.String(500), nullable=False),
        sa.Column("lease_owner", sa.String(64), nullable=True),
        sa.Column("lease_until", PreciseDateTime, nullable=True),
        sa.UniqueConstraint("kind", "subject_id", name="uq_embedding_jobs_subject"),
    )
    op.create_index("ix_embedding_jobs_due", "embedding_jobs", ["due_at"])


def downgrade() -> None:
    op.drop_table("embedding_jobs")
    op.drop_table("subjects")
