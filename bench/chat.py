"""Chat figures: messages/s through send (C5) and the live stream, and stream delivery latency with 1,000
streams open.

Three processes, so that no client is the bottleneck of what it measures:
- the chat service (uvicorn, one worker, real nats-server, SQLite), seeded with 1,000 conversations,
  each between its own sender and its own recipient;
- the 1,000 recipients' streams, one raw asyncio socket each (no HTTP library: a read is a `recv` and a
  regex), which stamp each notice's arrival with the wall clock;
- the senders (this process, httpx), which post each message to a conversation in turn, so every
  message is delivered to exactly one of the open streams.

Phase 1, saturated: SENDERS concurrent senders post SATURATED messages as fast as the service answers:
messages/s through send (201s per second) and through the stream (notices arriving per second).
Phase 2, paced at PACED_RATE (env BENCH_CHAT_RATE, default 50) messages/s for PACED_S seconds: delivery
latency from the send's request start to the notice on the recipient's stream (it includes the send:
validation, the SQLite commit, the NATS hop), and the service's own view, commit to frame written
(pawgle_chat_stream_delivery_seconds).
CPU time per message of the service's process is read from /proc.
"""

from __future__ import annotations

import asyncio
import multiprocessing as mp
import os
import re
import tempfile
import time
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx

from bench.stats import report, summary_ms

STREAMS = int(os.environ.get("BENCH_CHAT_STREAMS", "1000"))
SENDERS = 16
SATURATED = 2000
PACED_RATE = int(os.environ.get("BENCH_CHAT_RATE", "50"))
PACED_S = 10
SENDER_BASE, RECIPIENT_BASE = 100_000, 200_000
TICKS = os.sysconf("SC_CLK_TCK")
_MESSAGE_ID = re.compile(rb'"message_id": "([0-9a-f-]{36})"')


def main() -> None:
    """Print send and stream throughput, and delivery latency with STREAMS streams open."""
    from pawgle.common.testing.tokens import TokenIssuer

    ctx = mp.get_context("spawn")
    tokens = TokenIssuer()
    with tempfile.TemporaryDirectory(prefix="pawgle-bench-chat-") as tmp:
        server_end, server_conn = ctx.Pipe()
        server = ctx.Process(target=_serve, args=(server_conn, tmp, tokens.jwks, STREAMS), daemon=True)
        server.start()
        url, conversations = server_end.recv()
        streams_end, streams_conn = ctx.Pipe()
        recipient_tokens = [tokens.token(RECIPIENT_BASE + i, expires_in_s=1800) for i in range(STREAMS)]
        streamer = ctx.Process(target=_streams, args=(streams_conn, url, recipient_tokens), daemon=True)
        streamer.start()
        try:
            opened = streams_end.recv()
            report(f"  {opened} streams open (one raw socket each, in their own process)")
            time.sleep(1.0)  # every stream's NATS subscription is registered
            senders = [tokens.token(SENDER_BASE + i, expires_in_s=1800) for i in range(STREAMS)]
            asyncio.run(_send_all(url, conversations, senders, server.pid or 0, streams_end))
        finally:
            streams_end.send("stop")
            server_end.send("stop")
            streamer.join(timeout=10)
            server.join(timeout=20)
            for process in (streamer, server):
                if process.is_alive():
                    process.kill()


# --- the service process -----------------------------------------------------------------------------


def _serve(conn: Connection, tmp: str, jwks: dict[str, Any], conversations: int) -> None:
    import logging

    from sqlmodel import Session

    from pawgle.chat import service
    from pawgle.chat.config import Settings
    from pawgle.chat.main import create_app
    from pawgle.chat.models import ReportCard
    from pawgle.common.natsserver import NatsServer
    from pawgle.common.testing.server import serve

    logging.disable(logging.WARNING)
    nats = NatsServer(Path(tmp) / "js").start()
    try:
        settings = Settings(
            environment="test",
            data_dir=Path(tmp) / "data",
            nats_url=nats.url,
            log_level="ERROR",
            stream_ticket_secret="bench-secret-0123456789abcdef",
            throttle_enabled=False,
        )
        app = create_app(settings)
        app.state.token_verifier.jwks.set_keys(jwks)
        with serve(app) as url:
            ids = []
            with Session(app.state.engine) as session:
                for i in range(conversations):
                    session.add(ReportCard(report_id=i + 1, reporter_id=RECIPIENT_BASE + i, status="found"))
                session.flush()
                for i in range(conversations):
                    conversation = service.open_conversation(
                        session,
                        report_id=i + 1,
                        user_ids=[SENDER_BASE + i, RECIPIENT_BASE + i],
                        starter_id=SENDER_BASE + i,
                    )
                    ids.append(conversation.id)
                session.commit()
            conn.send((url, ids))
            conn.recv()  # "stop"
    finally:
        nats.stop()


def _cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


# --- the streams process -----------------------------------------------------------------------------


def _streams(conn: Connection, url: str, tokens: list[str]) -> None:
    asyncio.run(_hold_streams(conn, url, tokens))


async def _hold_streams(conn: Connection, url: str, tokens: list[str]) -> None:
    parts = urlsplit(url)
    arrivals: dict[str, float] = {}
    ready = 0

    async def one(token: str) -> None:
        nonlocal ready
        reader, writer = await asyncio.open_connection(parts.hostname, parts.port)
        request = (
            f"GET /api/auth/chat/stream/ HTTP/1.1\r\nHost: {parts.netloc}\r\nAuthorization: Bearer {token}\r\n"
            "Accept: text/event-stream\r\n\r\n"
        )
        writer.write(request.encode())
        await writer.drain()
        buffer = b""
        while b": connected" not in buffer:
            chunk = await reader.read(4096)
            if not chunk:
                raise RuntimeError(f"stream closed before it opened: {buffer[:200]!r}")
            buffer += chunk
        ready += 1
        buffer = b""
        while True:
            chunk = await reader.read(65536)
            if not chunk:
                return
            at = time.time()
            buffer += chunk
            last = 0
            for match in _MESSAGE_ID.finditer(buffer):
                arrivals[match.group(1).decode()] = at
                last = match.end()
            buffer = buffer[last:] if last else buffer[-200:]

    tasks = []
    for i, token in enumerate(tokens):
        tasks.append(asyncio.create_task(one(token)))
        if i % 50 == 49:
            await asyncio.sleep(0.05)  # do not flood the listen backlog
    while ready < len(tokens):
        failed = [t for t in tasks if t.done() and t.exception() is not None]
        if failed:
            raise RuntimeError(f"{len(failed)} streams failed: {failed[0].exception()!r}")
        await asyncio.sleep(0.05)
    conn.send(ready)
    loop = asyncio.get_running_loop()
    while True:
        command = await loop.run_in_executor(None, conn.recv)
        if command == "stop":
            break
        # "arrivals": hand over what arrived so far.
        conn.send(dict(arrivals))
    for task in tasks:
        task.cancel()


# --- the senders (this process) ---------------------------------------------------------------------


async def _send_all(url: str, conversations: list[str], senders: list[str], server_pid: int, streams: Any) -> None:
    limits = httpx.Limits(max_connections=SENDERS * 2, max_keepalive_connections=SENDERS * 2)
    async with httpx.AsyncClient(base_url=url, limits=limits, timeout=httpx.Timeout(30.0)) as client:
        # Saturated: SENDERS at once, as fast as the service answers.
        sent: dict[str, float] = {}
        counter = iter(range(SATURATED))
        cpu_before, began = _cpu_s(server_pid), time.time()

        async def sender() -> None:
            for n in counter:
                k = n % len(conversations)
                t0 = time.time()
                answer = await client.post(
                    f"/api/auth/chat/conversations/{conversations[k]}/messages/",
                    data={"body": f"saturated {n}"},
                    headers={"Authorization": f"Bearer {senders[k]}"},
                )
                assert answer.status_code == 201, answer.text
                sent[answer.json()["id"]] = t0

        await asyncio.gather(*(sender() for _ in range(SENDERS)))
        elapsed, cpu = time.time() - began, _cpu_s(server_pid) - cpu_before
        arrivals = await _arrivals(streams, set(sent))
        last = max(arrivals[m] for m in sent)
        delivered = len(set(sent) & set(arrivals))
        report(
            f"  saturated, {SENDERS} senders: send {SATURATED / elapsed:.0f} messages/s; "
            f"stream {len(sent) / (last - began):.0f} notices/s delivered ({delivered}/{len(sent)}); "
            f"service CPU {cpu / SATURATED * 1000:.2f} ms per message"
        )
        report(f"  saturated delivery (send start -> notice): {summary_ms([arrivals[m] - t for m, t in sent.items()])}")

        # Paced: PACED_RATE messages/s, each from its own task so a slow send does not delay the next.
        paced: dict[str, float] = {}
        before = await _server_histogram(client)
        cpu_before = _cpu_s(server_pid)

        async def one(n: int) -> None:
            k = (SATURATED + n) % len(conversations)
            t0 = time.time()
            answer = await client.post(
                f"/api/auth/chat/conversations/{conversations[k]}/messages/",
                data={"body": f"paced {n}"},
                headers={"Authorization": f"Bearer {senders[k]}"},
            )
            assert answer.status_code == 201, answer.text
            paced[answer.json()["id"]] = t0

        total = PACED_RATE * PACED_S
        start = time.monotonic()
        jobs = []
        for n in range(total):
            await asyncio.sleep(max(start + n / PACED_RATE - time.monotonic(), 0))
            jobs.append(asyncio.create_task(one(n)))
        await asyncio.gather(*jobs)
        took = time.monotonic() - start
        cpu = _cpu_s(server_pid) - cpu_before
        arrivals = await _arrivals(streams, set(paced))
        latencies = [arrivals[m] - t for m, t in paced.items() if m in arrivals]
        after = await _server_histogram(client)
        report(
            f"  paced {PACED_RATE} messages/s for {PACED_S} s, {len(conversations)} streams open: "
            f"send start -> notice on the stream {summary_ms(latencies)}; "
            f"{len(latencies)}/{total} delivered; service CPU {cpu / total * 1000:.2f} ms per message"
            + (f"; FELL BEHIND the pace: the last send answered after {took:.1f} s" if took > PACED_S + 1 else "")
        )
        report(f"  service side, commit -> frame written (histogram buckets): {_bucket_summary(before, after)}")


async def _arrivals(streams: Any, wanted: set[str], timeout_s: float = 15.0) -> dict[str, float]:
    """The arrival times the stream process saw, once every wanted message arrived (or the timeout)."""
    deadline = time.monotonic() + timeout_s
    while True:
        streams.send("arrivals")
        arrivals: dict[str, float] = await asyncio.to_thread(streams.recv)
        if wanted <= arrivals.keys() or time.monotonic() > deadline:
            return arrivals
        await asyncio.sleep(0.2)


async def _server_histogram(client: httpx.AsyncClient) -> dict[float, float]:
    text = (await client.get("/metrics")).text
    buckets: dict[float, float] = {}
    for line in text.splitlines():
        if line.startswith("pawgle_chat_stream_delivery_seconds_bucket"):
            le = re.search(r'le="([^"]+)"', line).group(1)  # type: ignore[union-attr]
            buckets[float(le)] = float(line.rsplit(" ", 1)[1])
    return buckets


def _bucket_summary(before: dict[float, float], after: dict[float, float]) -> str:
    counts = {le: after.get(le, 0) - before.get(le, 0) for le in sorted(after)}
    total = counts.get(float("inf"), 0)
    if not total:
        return "no samples"

    def upper(pct: float) -> str:
        for le, count in counts.items():
            if count >= total * pct / 100:
                return "<= " + ("inf" if le == float("inf") else f"{le * 1000:g} ms")
        return "?"

    return f"p50 {upper(50)}, p95 {upper(95)}, p99 {upper(99)} (n={total:.0f})"


if __name__ == "__main__":
    main()
