"""report and pet projections, sighting trails, matches and the matching queue"""

import sqlalchemy as sa
from alembic import op

from pawgle.common.db import BigId, PreciseDateTime

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "matcher_reports",
        sa.Column("report_id", sa.BigInteger(), primary_key=True, autoincrement=False),
        sa.Column("reporter_id", sa.BigInteger(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("species", sa.String(40), nullable=False),
        sa.Column("animal_name", sa.String(100), nullable=False),
        sa.Column("type", sa.String(100), nullable=False),
        sa.Column("breed", sa.String(100), nullable=False),
        sa.Column("latitude", sa.Double(), nullable=False),
        sa.Column("longitude", sa.Double(), nullable=False),
        sa.Column("reported_at", PreciseDateTime, nullable=False),
        sa.Column("filed_at", PreciseDateTime, nullable=True),
        sa.Column("pet_id", sa.BigInteger(), nullable=True),
        sa.Column("pet_owner_id", sa.BigInteger(), nullable=True),
        sa.Column("model_version", sa.String(120), nullable=False),
        sa.Column("trail_id", sa.BigInteger(), nullable=True),
    )
    op.create_index("ix_matcher_reports_reporter_id", "matcher_reports", ["reporter_id"])
    op.create_index("ix_matcher_reports_pet_id", "matcher_reports", ["pet_id"])
    op.create_index("ix_matcher_reports_trail_id", "matcher_reports", ["trail_id"])
    op.create_table(
        "matcher_pets",
        sa.Column("pet_id", sa.BigInteger(), primary_key=True, autoincrement=False),
        sa.Column("owner_id", sa.BigInteger(), nullable=False),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("type", sa.String(100), nullable=False),
        sa.Column("breed", sa.String(100), nullable=False),
        sa.Column("species", sa.String(40), nullable=False),
        sa.Column("model_version", sa.String(120), nullable=False),
    )
    op.create_index("ix_matcher_pets_owner_id", "matcher_pets", ["owner_id"])
    op.create_table(
        "trails",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("created_at", PreciseDateTime, nullable=False),
        sqlite_autoincrement=True,
    )
    op.create_table(
        "matches",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("found_report_id", sa.BigInteger(), nullable=False),
        sa.Column("lost_key", sa.String(32), nullable=False),
        sa.Column("pet_id", sa.BigInteger(), nullable=True),
        sa.Column("lost_report_id", sa.BigInteger(), nullable=True),
        sa.Column("found_reporter_id", sa.BigInteger(), nullable=False),
        sa.Column("lost_user_id", sa.BigInteger(), nullable=False),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("score", sa.Float(), nullable=False),
        sa.Column("distance_km", sa.Float(), nullable=True),
        sa.Column("model_version", sa.String(120), nullable=False),
        sa.Column("via", sa.String(8), nullable=False),
        sa.Column("trail_id", sa.BigInteger(), nullable=True),
        sa.Column("status", sa.String(12), nullable=False),
        sa.Column("confirmed_by_finder", sa.Boolean(), nullable=False),
        sa.Column("confirmed_by_owner", sa.Boolean(), nullable=False),
        sa.Column("pet_home", sa.Boolean(), nullable=False),
        sa.Column("dismissed_by", sa.BigInteger(), nullable=True),
        sa.Column("created_at", PreciseDateTime, nullable=False),
        sa.Column("updated_at", PreciseDateTime, nullable=False),
        sa.UniqueConstraint("found_report_id", "lost_key", name="uq_matches_pair"),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_matches_lost_user", "matches", ["lost_user_id", "status"])
    op.create_index("ix_matches_found_reporter", "matches", ["found_reporter_id", "status"])
    op.create_index("ix_matches_pet_id", "matches", ["pet_id"])
    op.create_index("ix_matches_lost_report_id", "matches", ["lost_report_id"])
    op.create_index("ix_matches_trail_id", "matches", ["trail_id"])
    op.create_table(
        "match_jobs",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("kind", sa.String(8), nullable=False),
        sa.Column("subject_id", sa.BigInteger(), nullable=False),
        sa.Column("generation", sa.Integer(), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("due_at", PreciseDateTime, nullable=False),
        sa.Column("last_error", sa.String(500), nullable=False),
        sa.Column("lease_owner", sa.String(64), nullable=True),
        sa.Column("lease_until", PreciseDateTime, nullable=True),
        sa.UniqueConstraint("kind", "subject_id", name="uq_match_jobs_subject"),
    )
    op.create_index("ix_match_jobs_due", "match_jobs", ["due_at"])


def downgrade() -> None:
    op.drop_table("match_jobs")
    op.drop_table("matches")
    op.drop_table("trails")
    op.drop_table("matcher_pets")
    op.drop_table("matcher_reports")
