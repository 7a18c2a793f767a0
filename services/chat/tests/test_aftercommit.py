"""Work queued with on_commit runs once, after the outermost commit; a rolled-back savepoint or
transaction drops what was queued inside it (as the bus's consumer does with one failed event)."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import create_engine, text
from sqlalchemy.orm import Session

from pawgle.chat.aftercommit import on_commit


def test_work_runs_after_the_outer_commit_and_never_for_rolled_back_work(tmp_path: Path) -> None:
    engine = create_engine(f"sqlite:///{tmp_path / 'db.sqlite'}")
    ran: list[str] = []
    with Session(engine) as session:
        session.execute(text("CREATE TABLE t (x INTEGER)"))
        on_commit(session, lambda: ran.append("outer"))
        failed = session.begin_nested()
        on_commit(session, lambda: ran.append("failed event"))
        failed.rollback()
        handled = session.begin_nested()
        on_commit(session, lambda: ran.append("handled event"))
        handled.commit()
        assert ran == []  # a released savepoint is not the commit
        session.commit()
        assert ran == ["outer", "handled event"]
        session.execute(text("INSERT INTO t VALUES (1)"))
        on_commit(session, lambda: ran.append("rolled back"))
        session.rollback()
        session.execute(text("INSERT INTO t VALUES (2)"))
        session.commit()
    assert ran == ["outer", "handled event"]


def test_a_failing_piece_of_work_does_not_stop_the_others(tmp_path: Path) -> None:
    engine = create_engine(f"sqlite:///{tmp_path / 'db.sqlite'}")
    ran: list[str] = []
    with Session(engine) as session:
        session.execute(text("SELECT 1"))
        on_commit(session, lambda: 1 / 0)
        on_commit(session, lambda: ran.append("next"))
        session.commit()
    assert ran == ["next"]
