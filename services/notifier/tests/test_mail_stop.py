"""Stopping the notifier mid-batch strands no e-mail: the rest goes out right after a restart, each once."""

from __future__ import annotations

import os
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

from sqlmodel import Session, select

from pawgle.common.testing.fake_http import FakeRequest, FakeResponse, fake_http_server
from pawgle.common.testing.service import running_service, wait_for
from pawgle.notifier.config import Settings
from pawgle.notifier.mail import log_repository
from pawgle.notifier.mail.compose import ComposedEmail
from pawgle.notifier.main import create_app
from pawgle.notifier.models import EmailMessage

from .conftest import FakeResend

BATCH = 50


def queue_batch(engine: object, n: int = BATCH) -> list[str]:
    mails = [
        log_repository.QueuedEmail(
            key=log_repository.email_key(f"stop-test-{i}", f"user{i}@example.org", "test"),
            composed=ComposedEmail(kind="test", subject=f"Mail {i}", text="Hello", html="<p>Hello</p>"),
            to_address=f"user{i}@example.org",
            user_id=None,
        )
        for i in range(n)
    ]
    with Session(engine) as session:  # type: ignore[arg-type]
        assert log_repository.queue_emails(session, mails) == n
        session.commit()
    return [m.key for m in mails]


def mail_rows(engine: object) -> list[EmailMessage]:
    with Session(engine) as session:  # type: ignore[arg-type]
        return list(session.exec(select(EmailMessage)).all())


def test_a_stop_mid_batch_releases_the_rest_which_goes_out_once_after_the_restart(
    settings_factory: Callable[..., Settings], fake_resend: FakeResend
) -> None:
    def slow_resend(request: FakeRequest) -> FakeResponse:
        time.sleep(0.05)  # 50 mails take 2.5 s: the stop lands in the middle of the batch
        return fake_resend.handle(request)

    with fake_http_server(slow_resend) as url:
        settings = settings_factory(resend_api_url=url, mail_batch_size=BATCH)
        with running_service(create_app(settings), settings) as first:
            keys = queue_batch(first.engine)
            wait_for(lambda: len(fake_resend.accepted) >= 10, timeout_s=30)
        sent_before_restart = len(fake_resend.accepted)
        assert sent_before_restart < BATCH, "the stop was meant to land mid-batch"
        rows = mail_rows(first.engine)
        assert all(row.lease_owner is None and row.lease_until is None for row in rows), "nothing left leased"
        assert sum(row.status == "sent" for row in rows) == sent_before_restart, "every delivery was recorded"

        with running_service(create_app(settings), settings, purge=False) as second:
            restarted = time.monotonic()
            wait_for(lambda: all(row.status == "sent" for row in mail_rows(second.engine)), timeout_s=60)
            assert time.monotonic() - restarted < 60
    deliveries = Counter(r["headers"]["idempotency-key"] for r in fake_resend.accepted)
    assert set(deliveries) == set(keys)
    assert set(deliveries.values()) == {1}, "each e-mail was delivered exactly once"


def test_the_folder_adapter_leaves_no_temporary_file_and_sweeps_a_crashed_ones(
    settings_factory: Callable[..., Settings],
) -> None:
    settings = settings_factory(resend_api_key=None, mail_batch_size=BATCH)
    folder: Path = settings.mail_outbox_dir
    folder.mkdir(parents=True, exist_ok=True)
    leftover = folder / ".tmp-killed-mid-write.eml"
    leftover.write_text("half a mess")
    os.utime(leftover, (time.time() - 60, time.time() - 60))
    with running_service(create_app(settings), settings) as first:
        wait_for(lambda: not leftover.exists(), timeout_s=10, message="a crashed write's temp file was not swept")
        keys = queue_batch(first.engine)
        wait_for(lambda: any(folder.glob("*.eml")), timeout_s=30)
    assert list(folder.glob(".tmp-*")) == [], "a stop left a half-written file"
    with running_service(create_app(settings), settings, purge=False) as second:
        wait_for(lambda: all(row.status == "sent" for row in mail_rows(second.engine)), timeout_s=60)
    files = sorted(folder.glob("*.eml"))
    assert len(files) == len(keys), "one file per e-mail, none twice"
    assert {f.name.rsplit("-", 1)[1][:24] for f in files} == {k[:24] for k in keys}
    assert list(folder.glob(".tmp-*")) == []
