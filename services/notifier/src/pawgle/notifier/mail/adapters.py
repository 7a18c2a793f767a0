"""The e-mail port's two adapters: a local outbox folder (embedded default) and Resend (production)."""

from __future__ import annotations

import contextlib
import email.policy
import os
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from email.message import EmailMessage as MimeMessage
from email.utils import format_datetime
from pathlib import Path
from typing import Protocol

import resend
from resend.exceptions import ResendError
from resend.http_client_requests import RequestsClient


@dataclass(frozen=True)
class OutgoingMail:
    """One e-mail as the sender hands it to an adapter."""

    key: str
    sender: str
    to: str
    subject: str
    text: str
    html: str
    reply_to: str | None
    created_at: datetime


class MailError(Exception):
    """Delivery failed; `permanent` means retrying the same message cannot succeed."""

    def __init__(self, message: str, *, permanent: bool = False) -> None:
        super().__init__(message)
        self.permanent = permanent


class Mailer(Protocol):
    name: str

    def send(self, mail: OutgoingMail) -> str:
        """Deliver `mail`; return the provider's id. Sending the same key twice must not deliver twice."""
        ...


class LocalFolderMailer:
    """Writes one .eml file per message into a folder an operator can read with any mail client or `cat`.

    The file name is derived from the message key, so a repeated send rewrites the same file; the file is
    written under a temporary name and renamed, so a reader never sees half a message.
    """

    name = "folder"

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def sweep_temporary_files(self, *, older_than_s: float = 5.0) -> int:
        """Delete half-written files a killed process left behind (the sender calls this when it starts)."""
        if not self.folder.is_dir():
            return 0
        cutoff = time.time() - older_than_s
        removed = 0
        for leftover in self.folder.glob(".tmp-*.eml"):
            with contextlib.suppress(FileNotFoundError):
                if leftover.stat().st_mtime < cutoff:
                    leftover.unlink()
                    removed += 1
        return removed

    def path_for(self, mail: OutgoingMail) -> Path:
        """The file a message is written to: its creation time, then its key."""
        return self.folder / f"{mail.created_at:%Y%m%dT%H%M%S}-{mail.key[:24]}.eml"

    def send(self, mail: OutgoingMail) -> str:
        message = MimeMessage(policy=email.policy.SMTP)
        message["From"] = mail.sender
        message["To"] = mail.to
        message["Subject"] = mail.subject
        message["Date"] = format_datetime(mail.created_at.replace(tzinfo=UTC), usegmt=True)
        message["Message-ID"] = f"<{mail.key}@pawgle.local>"
        if mail.reply_to:
            message["Reply-To"] = mail.reply_to
        message.set_content(mail.text)
        message.add_alternative(mail.html, subtype="html")
        target = self.path_for(mail)
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=self.folder, prefix=".tmp-", suffix=".eml")
            try:
                with os.fdopen(fd, "wb") as handle:
                    handle.write(message.as_bytes())
                    handle.flush()
                    os.fsync(handle.fileno())
                os.replace(tmp, target)
            except BaseException:
                Path(tmp).unlink(missing_ok=True)
                raise
        except OSError as exc:
            raise MailError(f"cannot write {target.name}: {exc.strerror or exc}") from exc
        return target.name


# HTTP statuses that mean "this message will never be accepted as it is" (bad address, bad payload).
_PERMANENT_STATUSES = {400, 422}


class ResendMailer:
    """Sends through the real `resend` SDK, with the message key as Resend's Idempotency-Key."""

    name = "resend"

    def __init__(self, *, api_key: str, api_url: str | None = None, timeout_s: int = 10) -> None:
        # The SDK is configured through module globals; one notifier process talks to one Resend account.
        resend.api_key = api_key
        if api_url:
            resend.api_url = api_url.rstrip("/")
        resend.default_http_client = RequestsClient(timeout=timeout_s)

    def send(self, mail: OutgoingMail) -> str:
        params: resend.Emails.SendParams = {
            "from": mail.sender,
            "to": [mail.to],
            "subject": mail.subject,
            "text": mail.text,
            "html": mail.html,
        }
        if mail.reply_to:
            params["reply_to"] = mail.reply_to
        try:
            response = resend.Emails.send(params, {"idempotency_key": mail.key})
        except ResendError as exc:
            code = _status(exc.code)
            raise MailError(
                f"resend {code or exc.code}: {exc.error_type}", permanent=code in _PERMANENT_STATUSES
            ) from exc
        return str(response.get("id") or "")


def _status(code: object) -> int | None:
    try:
        return int(str(code))
    except ValueError:
        return None
