"""Notifier: nearby alerts with 100,000 active alert areas, and e-mails/s through the folder adapter.

Seeds a fresh SQLite database (the embedded default) with 100,000 active areas spread over Europe
(radii: 80 % 1-10 km, 17 % 10-30 km, 3 % 30-100 km; 5 areas per user, every user with a verified
address) and indexes them in the grid. Then applies report.filed events one at a time through the real
consumer path (`handle_delivery`: decode, inbox row, spatial lookup, haversine check, notification and
e-mail rows, commit) and times each, from the event arriving to every notification written. For
contrast it times the same lookup as a scan of every area. Then the background sender drains the e-mails
those reports queued into the outbox folder (one fsync'd .eml per message) and reports e-mails/s. Last,
the whole service runs on a real nats-server and report.filed is timed from publish to the consumer's commit.
"""

from __future__ import annotations

import asyncio
import random
import tempfile
import time
from datetime import datetime
from pathlib import Path

import nats
from sqlalchemy import insert
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from bench.stats import report, summary_ms
from pawgle.common.bus.consumer import ConsumerSpec, Delivery, Outcome, handle_delivery
from pawgle.common.bus.tables import InboxEntry
from pawgle.common.db import make_engine, read_only
from pawgle.common.events.envelope import encode_event, new_event
from pawgle.common.events.reports import ReportFiled
from pawgle.common.migrations import upgrade_to_head
from pawgle.common.natsserver import NatsServer
from pawgle.common.testing.server import serve
from pawgle.notifier import geo
from pawgle.notifier.config import Settings
from pawgle.notifier.consumers import handlers
from pawgle.notifier.mail.adapters import LocalFolderMailer
from pawgle.notifier.mail.sender import MailSender
from pawgle.notifier.main import MIGRATIONS, create_app
from pawgle.notifier.models import AlertArea, AlertAreaCell, Contact, EmailMessage, Notification

AREAS = 100_000
AREAS_PER_USER = 5
REPORTS = 400
WARMUP = 20
SCANS = 5
LAT, LON = (36.0, 60.0), (-10.0, 30.0)
MAIL_SECONDS = 20.0
E2E_REPORTS = 100
E2E_WARMUP = 5
SEED_TIME = datetime(2025, 1, 1)


def _radius(rng: random.Random) -> float:
    roll = rng.random()
    if roll < 0.80:
        return round(rng.uniform(1, 10), 1)
    if roll < 0.97:
        return round(rng.uniform(10, 30), 1)
    return round(rng.uniform(30, 100), 1)


def seed(settings: Settings, rng: random.Random) -> int:
    """Bulk-insert the areas, their grid cells and the users' contacts; returns the number of cell rows."""
    engine = make_engine(settings.db_url)
    areas, cells, contacts = [], [], []
    for i in range(1, AREAS + 1):
        lat, lon, radius = rng.uniform(*LAT), rng.uniform(*LON), _radius(rng)
        user_id = 1_000_000 + (i - 1) // AREAS_PER_USER
        areas.append(
            {
                "id": i,
                "user_id": user_id,
                "label": "area",
                "center_lat": lat,
                "center_lon": lon,
                "radius_km": radius,
                "status_filter": rng.choice(["", "", "lost", "found"]),
                "is_active": True,
                "created_at": SEED_TIME,
            }
        )
        cells.extend({"cell": cell, "alert_id": i} for cell in geo.cells_covering(lat, lon, radius))
        if (i - 1) % AREAS_PER_USER == 0:
            contacts.append(
                {
                    "user_id": user_id,
                    "email": f"u{user_id}@example.org",
                    "display_name": "u",
                    "email_verified": True,
                    "is_active": True,
                    "updated_at": SEED_TIME,
                }
            )
    with Session(engine) as session:
        for table, rows in ((AlertArea, areas), (AlertAreaCell, cells), (Contact, contacts)):
            for start in range(0, len(rows), 20_000):
                session.exec(insert(table), params=rows[start : start + 20_000])
        session.commit()
    engine.dispose()
    return len(cells)


def scan_once(session: Session, lat: float, lon: float, status: str) -> int:
    """The same question answered without the index: every active area, checked one by one."""
    query = select(AlertArea).where(col(AlertArea.is_active).is_(True), col(AlertArea.status_filter).in_(["", status]))
    return sum(
        1 for a in session.exec(query).all() if geo.haversine_km(lat, lon, a.center_lat, a.center_lon) <= a.radius_km
    )


def end_to_end(settings: Settings, rng: random.Random) -> None:
    """Through the bus: publish report.filed to a real nats-server and wait for the consumer's commit."""
    with tempfile.TemporaryDirectory(prefix="pawgle-bench-nats-") as nats_dir:
        server = NatsServer(Path(nats_dir) / "js").start()
        try:
            # The whole service runs (consumers and e-mail sender); ERROR keeps its per-e-mail log lines quiet.
            live = settings.model_copy(update={"nats_url": server.url, "run_workers": True, "log_level": "ERROR"})
            app = create_app(live)
            with serve(app):
                timings = asyncio.run(_publish_and_wait(app.state.engine, server.url, rng))
            report(f"  end to end through NATS (publish -> consumer commit): {summary_ms(timings)}")
        finally:
            server.stop()


async def _publish_and_wait(engine: Engine, nats_url: str, rng: random.Random) -> list[float]:
    nc = await nats.connect(nats_url)
    js = nc.jetstream()
    timings: list[float] = []
    try:
        for i in range(E2E_WARMUP + E2E_REPORTS):
            data = ReportFiled(
                report_id=10_000 + i,
                reporter_id=1,
                status="lost",
                latitude=rng.uniform(*LAT),
                longitude=rng.uniform(*LON),
                animal_name="Rex",
                type="Dogs",
                breed="Beagle",
                category="Domestic",
            )
            envelope = new_event(data, producer="bench")
            t0 = time.perf_counter()
            await js.publish(envelope.subject, encode_event(envelope), headers={"Nats-Msg-Id": envelope.id})
            while not _handled(engine, envelope.id):
                if time.perf_counter() - t0 > 10:
                    raise RuntimeError("report.filed was not handled within 10 s")
                await asyncio.sleep(0.0005)
            if i >= E2E_WARMUP:
                timings.append(time.perf_counter() - t0)
    finally:
        await nc.drain()
    return timings


def _handled(engine: Engine, event_id: str) -> bool:
    with Session(read_only(engine)) as session:
        return session.get(InboxEntry, ("notifier-report-filed", event_id)) is not None


def main() -> None:
    rng = random.Random(42)
    with tempfile.TemporaryDirectory(prefix="pawgle-bench-notifier-") as tmp:
        settings = Settings(environment="test", data_dir=Path(tmp), run_workers=False)
        engine = make_engine(settings.db_url)
        upgrade_to_head(MIGRATIONS, settings.db_url, engine)
        started = time.perf_counter()
        cell_rows = seed(settings, rng)
        report(
            f"seeded {AREAS:,} active alert areas ({cell_rows:,} grid cells of {geo.CELL_DEG} deg) "
            f"in {time.perf_counter() - started:.1f} s"
        )

        spec = ConsumerSpec(service="notifier", event_type="report.filed", handler=handlers(settings)["report.filed"])
        timings: list[float] = []
        for i in range(WARMUP + REPORTS):
            data = ReportFiled(
                report_id=i + 1,
                reporter_id=1,
                status=rng.choice(["lost", "found"]),
                latitude=rng.uniform(*LAT),
                longitude=rng.uniform(*LON),
                animal_name="Rex",
                type="Dogs",
                breed="Beagle",
                category="Domestic",
            )
            delivery = Delivery(encode_event(new_event(data, producer="bench")), {}, "report.filed", 1, i + 1)
            t0 = time.perf_counter()
            outcome = handle_delivery(engine, spec, delivery)
            elapsed = time.perf_counter() - t0
            if outcome is not Outcome.HANDLED:
                raise RuntimeError(f"report {i} was not handled: {outcome}")
            if i >= WARMUP:
                timings.append(elapsed)
        with Session(engine) as session:
            notified = len(session.exec(select(Notification.id)).all())
            queued = len(session.exec(select(EmailMessage.id)).all())
        total = WARMUP + REPORTS
        report(
            f"report.filed -> all notifications written (consumer transaction, SQLite, {AREAS:,} areas): "
            f"{summary_ms(timings)}; target p95 <= 200 ms"
        )
        report(f"  {notified / total:.1f} notifications and {queued / total:.1f} e-mails queued per report on average")

        with Session(engine) as session:
            scans = []
            for _ in range(SCANS):
                t0 = time.perf_counter()
                scan_once(session, rng.uniform(*LAT), rng.uniform(*LON), "lost")
                scans.append(time.perf_counter() - t0)
        report(f"  for contrast, the lookup as a scan of every area: {summary_ms(scans)}")

        sender = MailSender(engine, LocalFolderMailer(settings.mail_outbox_dir), settings)
        sent, t0 = 0, time.perf_counter()
        while time.perf_counter() - t0 < MAIL_SECONDS:
            batch = sender.deliver_due()
            if not batch:
                break
            sent += batch
        elapsed = time.perf_counter() - t0
        files = len(list(settings.mail_outbox_dir.glob("*.eml")))
        report(
            f"e-mails through the outbox folder adapter: {sent / elapsed:.0f} e-mails/s "
            f"({sent:,} sent in {elapsed:.1f} s, {files:,} .eml files, batches of {settings.mail_batch_size})"
        )
        end_to_end(settings, rng)
        engine.dispose()
