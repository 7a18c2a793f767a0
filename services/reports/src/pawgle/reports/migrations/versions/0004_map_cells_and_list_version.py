"""map cells for bounding boxes, the photo's change time, and the version of the map lists"""

import math

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

precise = sa.DateTime().with_variant(mysql.DATETIME(fsp=6), "mysql")
CELL_DEG, COLUMNS, ROWS = 0.05, 7200, 3600  # as pawgle.reports.grid (a migration does not import app code)


def _cell(latitude: float, longitude: float) -> int:
    row = min(ROWS - 1, max(0, math.floor((latitude + 90.0) / CELL_DEG)))
    column = min(COLUMNS - 1, max(0, math.floor((longitude + 180.0) / CELL_DEG)))
    return row * COLUMNS + column


def upgrade() -> None:
    op.add_column("reports", sa.Column("map_cell", sa.BigInteger(), nullable=False, server_default="0"))
    op.add_column("reports", sa.Column("photo_changed_at", precise, nullable=True))
    reports = sa.table("reports", sa.column("id"), sa.column("map_lat"), sa.column("map_lon"), sa.column("map_cell"))
    connection = op.get_bind()
    rows = connection.execute(sa.select(reports.c.id, reports.c.map_lat, reports.c.map_lon)).all()
    update = sa.update(reports).where(reports.c.id == sa.bindparam("rid")).values(map_cell=sa.bindparam("cell"))
    for start in range(0, len(rows), 5000):
        batch = rows[start : start + 5000]
        connection.execute(update, [{"rid": r.id, "cell": _cell(r.map_lat, r.map_lon)} for r in batch])
    op.drop_index("ix_reports_map_position", table_name="reports")
    op.create_index(
        "ix_reports_map_cell",
        "reports",
        ["map_cell", "map_lat", "map_lon", "status", "expired_at", "reported_at", "id", "reporter_id", "pet_owner_id"],
    )
    op.create_table(
        "reports_list_version",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=False),
        sa.Column("version", sa.BigInteger(), nullable=False),
    )
    op.execute("INSERT INTO reports_list_version (id, version) VALUES (1, 0)")


def downgrade() -> None:
    op.drop_table("reports_list_version")
    op.drop_index("ix_reports_map_cell", table_name="reports")
    op.create_index("ix_reports_map_position", "reports", ["map_lat", "map_lon"])
    with op.batch_alter_table("reports") as batch_op:
        batch_op.drop_column("photo_changed_at")
        batch_op.drop_column("map_cell")
