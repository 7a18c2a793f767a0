"""alert and notification ids are never handed out again after a delete (SQLite AUTOINCREMENT)

Without AUTOINCREMENT, SQLite gives a new row the largest id in use plus one, so deleting the newest alert
area frees its id for the next one, while notifications, e-mailed links and other services may still
point at it. MySQL and TiDB never reuse an AUTO_INCREMENT value: nothing to do there.
"""

from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

TABLES = ("alert_areas", "notifications")


def _rebuild(autoincrement: bool) -> None:
    if op.get_context().dialect.name != "sqlite":
        return
    for table in TABLES:
        # SQLite cannot add AUTOINCREMENT to a table: the batch copies it into a new one (rows, ids and
        # indexes kept). The sqlite_sequence row it creates starts at the largest id present.
        with op.batch_alter_table(
            table, recreate="always", table_kwargs={"sqlite_autoincrement": autoincrement}
        ) as batch:
            batch.alter_column("id", autoincrement=True)


def upgrade() -> None:
    _rebuild(True)


def downgrade() -> None:
    _rebuild(False)
