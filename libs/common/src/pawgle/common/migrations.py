"""Alembic, one migration history per service: the programmatic upgrade and the shared env.py body."""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa
from alembic import command, context, op
from alembic.config import Config
from sqlalchemy.engine import Engine
from sqlmodel import SQLModel


def alembic_config(script_location: Path, database_url: str, engine: Engine | None = None) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(script_location))
    cfg.set_main_option("sqlalchemy.url", database_url.replace("%", "%%"))
    if engine is not None:
        cfg.attributes["engine"] = engine
    return cfg


def upgrade_to_head(script_location: Path, database_url: str, engine: Engine | None = None) -> None:
    """Bring a service's database to the newest schema."""
    from pawgle.common.db import make_engine

    own_engine = engine is None
    engine = engine or make_engine(database_url)
    try:
        command.upgrade(alembic_config(script_location, database_url, engine), "head")
    finally:
        if own_engine:
            engine.dispose()


def run_migrations() -> None:
    """The body of every service's migrations/env.py (the service imports its models first)."""
    cfg = context.config
    if context.is_offline_mode():
        context.configure(
            url=cfg.get_main_option("sqlalchemy.url"),
            target_metadata=SQLModel.metadata,
            literal_binds=True,
            render_as_batch=True,
        )
        with context.begin_transaction():
            context.run_migrations()
        return
    engine = cfg.attributes.get("engine") or sa.create_engine(cfg.get_main_option("sqlalchemy.url") or "")
    with engine.connect() as connection:
        context.configure(connection=connection, target_metadata=SQLModel.metadata, render_as_batch=True)
        with context.begin_transaction():
            context.run_migrations()
        connection.commit()


def create_bus_tables() -> None:
    """The outbox, inbox and dead_letters tables, version 1: called by each service's first migration."""
    big_id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
    op.create_table(
        "outbox",
        sa.Column("seq", big_id, primary_key=True, autoincrement=True),
        sa.Column("event_id", sa.String(26), nullable=False, unique=True),
        sa.Column("subject", sa.String(120), nullable=False),
        sa.Column("payload", sa.Text(), nullable=False),
        sa.Column("headers", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("published_at", sa.DateTime(), nullable=True),
        sa.Column("lease_owner", sa.String(64), nullable=True),
        sa.Column("lease_until", sa.DateTime(), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False, server_default="0"),
    )
    op.create_index("ix_outbox_pending", "outbox", ["published_at", "lease_until"])
    op.create_table(
        "inbox",
        sa.Column("consumer", sa.String(120), primary_key=True),
        sa.Column("event_id", sa.String(26), primary_key=True),
        sa.Column("handled_at", sa.DateTime(), nullable=False),
    )
    op.create_table(
        "dead_letters",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("consumer", sa.String(120), nullable=False),
        sa.Column("event_id", sa.String(26), nullable=True),
        sa.Column("subject", sa.String(120), nullable=False),
        sa.Column("stream_seq", sa.BigInteger(), nullable=True),
        sa.Column("payload", sa.Text(), nullable=False),
        sa.Column("error", sa.Text(), nullable=False),
        sa.Column("deliveries", sa.Integer(), nullable=False),
        sa.Column("parked_at", sa.DateTime(), nullable=False),
        sa.Column("resolved_at", sa.DateTime(), nullable=True),
        sa.Column("resolution", sa.String(32), nullable=True),
    )
    op.create_index("ix_dead_letters_open", "dead_letters", ["consumer", "resolved_at"])


def drop_bus_tables() -> None:
    op.drop_table("dead_letters")
    op.drop_table("inbox")
    op.drop_table("outbox")
