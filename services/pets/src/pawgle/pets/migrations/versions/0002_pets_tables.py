"""pets, their photos, the owner projection, edited images and the queue of blobs to delete"""

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
        "pets",
        sa.Column("id", big_id, primary_key=True, autoincrement=True),
        sa.Column("owner_id", sa.BigInteger(), nullable=False),
        sa.Column("animal_id", sa.String(32), nullable=False, unique=True),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("type", sa.String(100), nullable=False),
        sa.Column("breed", sa.String(100), nullable=False),
        sa.Column("category", sa.String(16), nullable=False),
        sa.Column("is_public", sa.Boolean(), nullable=False),
        sa.Column("additional_info", sa.Text(), nullable=False),
        sa.Column("feature_status", sa.String(16), nullable=False),
        sa.Column("registered_at", precise, nullable=False),
        sa.Column("photos_changed_at", precise, nullable=False),
        sa.Column("deleted_at", precise, nullable=True),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_pets_owner_deleted", "pets", ["owner_id", "deleted_at"])
    op.create_index("ix_pets_public", "pets", ["is_public", "deleted_at"])
    op.create_table(
        "pet_photos",
        sa.Column("id", big_id, primary_key=True, autoincrement=True),
        sa.Column("pet_id", sa.BigInteger(), nullable=False),
        sa.Column("owner_id", sa.BigInteger(), nullable=False),
        sa.Column("key", sa.String(200), nullable=False, unique=True),
        sa.Column("thumbnail_key", sa.String(200), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("created_at", precise, nullable=False),
    )
    op.create_index("ix_pet_photos_pet_position", "pet_photos", ["pet_id", "position"])
    op.create_index("ix_pet_photos_owner_id", "pet_photos", ["owner_id"])
    op.create_table(
        "pet_owners",
        sa.Column("user_id", sa.BigInteger(), primary_key=True, autoincrement=False),
        sa.Column("username", sa.String(150), nullable=False),
        sa.Column("email", sa.String(320), nullable=False),
        sa.Column("deleted", sa.Boolean(), nullable=False),
        sa.Column("updated_at", precise, nullable=False),
    )
    op.create_table(
        "edited_pet_images",
        sa.Column("id", big_id, primary_key=True, autoincrement=True),
        sa.Column("owner_id", sa.BigInteger(), nullable=False),
        sa.Column("image_key", sa.String(200), nullable=False),
        sa.Column("edit_metadata", sa.Text(), nullable=False),
        sa.Column("created_at", precise, nullable=False),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_edited_pet_images_owner", "edited_pet_images", ["owner_id", "created_at"])
    op.create_table(
        "pet_blob_deletions",
        sa.Column("key", sa.String(200), primary_key=True),
        sa.Column("queued_at", precise, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("pet_blob_deletions")
    op.drop_table("edited_pet_images")
    op.drop_table("pet_owners")
    op.drop_table("pet_photos")
    op.drop_table("pets")
