"""Factories for the chat's tests: upstream events, photos and a reader of the live stream."""

from __future__ import annotations

import contextlib
import io
import itertools
import json
import queue
import socket
import threading
import time
from typing import Any

import httpx
from PIL import Image

from pawgle.chat.models import ReportCard, UserName
from pawgle.common.events.auth import UserRegistered
from pawgle.common.events.reports import ReportFiled
from pawgle.common.testing.service import RunningService
from pawgle.common.testing.service import wait_for as wait_for  # the tests import it from here

_ids = itertools.count(int(time.time() * 1000) % 1_000_000_000)


def next_id() -> int:
    """A fresh positive id, unique within the test session."""
    return next(_ids)


def report_filed(**overrides: Any) -> ReportFiled:
    """A found report's report.filed payload (central Paris)."""
    fields: dict[str, Any] = {
        "report_id": next_id(),
        "reporter_id": next_id(),
        "status": "found",
        "latitude": 48.8566,
        "longitude": 2.3522,
        "animal_name": "Rex",
        "type": "dog",
        "breed": "",
        "category": "",
    }
    fields.update(overrides)
    return ReportFiled(**fields)


def file_report(chat: RunningService, **overrides: Any) -> ReportFiled:
    """Publish report.filed and wait until chat's projection holds it."""
    data = report_filed(**overrides)
    chat.publish(data)
    wait_for(lambda: _get(chat, ReportCard, data.report_id), message="report projection")
    return data


def sign_up(chat: RunningService, user_id: int, name: str) -> None:
    """Publish user.registered and wait for the display name projection."""
    chat.publish(UserRegistered(user_id=user_id, display_name=name, email=f"u{user_id}@example.org"))
    wait_for(lambda: _get(chat, UserName, user_id), message="user projection")


def _get(chat: RunningService, model: Any, key: Any) -> Any:
    with chat.session() as session:
        return session.get(model, key)


def jpeg(size: tuple[int, int] = (64, 48), colour: str = "red") -> bytes:
    """A small valid JPEG."""
    out = io.BytesIO()
    Image.new("RGB", size, colour).save(out, "JPEG")
    return out.getvalue()


# --- the live stream --------------------------------------------------------------------------------


CLOSED = "<stream ended by the server>"


class EventReader:
    """Reads a server-sent event stream in a thread: `next_event()` returns (arrival, event name, data)."""

    open_readers: list[EventReader] = []  # closed by hang_up() before the servers stop

    def __init__(self, url: str, headers: dict[str, str]) -> None:
        self.lines: queue.Queue[tuple[float, str]] = queue.Queue()
        self.status: str = ""
        self._client = httpx.Client(timeout=httpx.Timeout(10.0, read=60.0))
        EventReader.open_readers.append(self)
        self._thread = threading.Thread(target=self._read, args=(url, headers), daemon=True)
        self._thread.start()
        _, self.status = self.lines.get(timeout=10)
        connected = self.lines.get(timeout=10)[1]
        assert connected == ": connected", connected
        time.sleep(0.1)  # the subscription is registered once the first bytes are out; give NATS its round trip

    def _read(self, url: str, headers: dict[str, str]) -> None:
        try:
            with self._client.stream("GET", url, headers=headers) as response:
                self._response = response
                ctype = response.headers.get("content-type")
                self.lines.put((time.perf_counter(), f"status {response.status_code} {ctype}"))
                for line in response.iter_lines():
                    self.lines.put((time.perf_counter(), line))
                self.lines.put((time.perf_counter(), CLOSED))
        except Exception:  # noqa: BLE001 - closed by the test, or the server stopping: the stream is over
            return

    def close(self) -> None:
        """Hang up (the server sees the client leave and ends the stream)."""
        response = getattr(self, "_response", None)
        stream = response.extensions.get("network_stream") if response is not None else None
        sock = stream.get_extra_info("socket") if stream is not None else None
        if sock is not None:
            # Interrupts the reader thread's blocking recv (closing the response from here would not).
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
        self._thread.join(timeout=5)
        self._client.close()

    def next_event(self, *, timeout_s: float = 10.0) -> tuple[float, str, dict[str, Any]]:
        """The next event (comments and keep-alives skipped)."""
        deadline = time.monotonic() + timeout_s
        name = "message"
        while time.monotonic() < deadline:
            at, line = self.lines.get(timeout=max(deadline - time.monotonic(), 0.01))
            if line.startswith("event: "):
                name = line.removeprefix("event: ")
            elif line.startswith("data: "):
                return at, name, json.loads(line.removeprefix("data: "))
        raise AssertionError("no event in time")

    def closed_by_server(self, *, timeout_s: float = 10.0) -> bool:
        """True when the server ends the stream within `timeout_s` (events before that are skipped)."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            try:
                if self.lines.get(timeout=max(deadline - time.monotonic(), 0.01))[1] == CLOSED:
                    return True
            except queue.Empty:
                return False
        return False

    def quiet(self, seconds: float) -> bool:
        """True when no event arrives within `seconds`."""
        try:
            self.next_event(timeout_s=seconds)
        except (AssertionError, queue.Empty):
            return True
        return False


def hang_up() -> None:
    """Close every stream the test opened (an open stream holds a server's graceful shutdown)."""
    while EventReader.open_readers:
        EventReader.open_readers.pop().close()
