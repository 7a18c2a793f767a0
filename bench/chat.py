"""Chat figures: messages/s through send (C5), and live-stream delivery latency with many open streams.

The chat runs on real HTTP (uvicorn) over a real nats-server and SQLite; a sender posts messages to one
conversation while the recipient's stream and 1,000 idle streams of other users are open. Delivery
latency is from the send's request start to the notice line on the recipient's stream (so it includes
the send itself: validation, the SQLite commit and the NATS hop).
"""

from __future__ import annotations

import asyncio
import tempfile
import time
from pathlib import Path

import httpx
from sqlmodel import Session

from bench.stats import report, summary_ms
from pawgle.chat.config import Settings
from pawgle.chat.main import create_app
from pawgle.chat.models import ReportCard
from pawgle.common.natsserver import NatsServer
from pawgle.common.testing.server import serve
from pawgle.common.testing.tokens import TokenIssuer

IDLE_STREAMS = 1000
SENDS = 300
DELIVERIES = 200


def main() -> None:
    """Print send throughput and stream delivery p50/p99 with 1,000 idle streams open."""
    with tempfile.TemporaryDirectory(prefix="pawgle-bench-chat-") as tmp:
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
            tokens = TokenIssuer(issuer=settings.jwt_issuer, audience=settings.jwt_audience)
            app = create_app(settings)
            app.state.token_verifier.jwks.set_keys(tokens.jwks)
            with serve(app) as url:
                with Session(app.state.engine) as session:
                    session.add(ReportCard(report_id=1, reporter_id=2, status="found", animal_name="Rex"))
                    session.commit()
                asyncio.run(_run(url, tokens))
        finally:
            nats.stop()


async def _run(url: str, tokens: TokenIssuer) -> None:
    sender, recipient = 1, 2
    limits = httpx.Limits(max_connections=IDLE_STREAMS + 50, max_keepalive_connections=IDLE_STREAMS + 50)
    async with httpx.AsyncClient(base_url=url, limits=limits, timeout=httpx.Timeout(30.0)) as client:
        start = await client.post(
            "/api/auth/chat/conversations/start/", json={"pet_location_id": 1}, headers=tokens.headers(sender)
        )
        conv = start.json()["id"]
        path = f"/api/auth/chat/conversations/{conv}/messages/"
        began = time.perf_counter()
        for i in range(SENDS):
            answer = await client.post(path, data={"body": f"m{i}"}, headers=tokens.headers(sender))
            assert answer.status_code == 201, answer.text
        elapsed = time.perf_counter() - began
        report(f"  send (C5, one client, sequential): {SENDS / elapsed:.0f} messages/s")

        stop = asyncio.Event()
        idle = [asyncio.create_task(_idle_stream(client, tokens, 1000 + i, stop)) for i in range(IDLE_STREAMS)]
        await asyncio.sleep(2.0)
        arrivals: asyncio.Queue[float] = asyncio.Queue()
        listener = asyncio.create_task(_recipient_stream(client, tokens, recipient, arrivals))
        await asyncio.sleep(0.5)
        latencies: list[float] = []
        began = time.perf_counter()
        for i in range(DELIVERIES):
            sent_at = time.perf_counter()
            await client.post(path, data={"body": f"d{i}"}, headers=tokens.headers(sender))
            arrived = await asyncio.wait_for(arrivals.get(), 10)
            latencies.append(arrived - sent_at)
        elapsed = time.perf_counter() - began
        report(
            f"  send + stream delivery with {IDLE_STREAMS} idle streams open: {summary_ms(latencies)}; "
            f"{DELIVERIES / elapsed:.0f} messages/s end to end"
        )
        stop.set()
        listener.cancel()
        for task in idle:
            task.cancel()
        await asyncio.gather(listener, *idle, return_exceptions=True)


async def _idle_stream(client: httpx.AsyncClient, tokens: TokenIssuer, user: int, stop: asyncio.Event) -> None:
    async with client.stream("GET", "/api/auth/chat/stream/", headers=tokens.headers(user)) as response:
        async for _ in response.aiter_lines():
            if stop.is_set():
                return


async def _recipient_stream(
    client: httpx.AsyncClient, tokens: TokenIssuer, user: int, arrivals: asyncio.Queue[float]
) -> None:
    async with client.stream("GET", "/api/auth/chat/stream/", headers=tokens.headers(user)) as response:
        async for line in response.aiter_lines():
            if line.startswith("data: "):
                arrivals.put_nowait(time.perf_counter())


if __name__ == "__main__":
    main()
