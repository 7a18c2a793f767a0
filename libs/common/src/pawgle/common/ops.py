"""`pawgle-ops`: the operator's command line for one service.

    pawgle-ops <service> migrate
    pawgle-ops <service> consumers
    pawgle-ops <service> dead-letters list [--consumer NAME] [--all]
    pawgle-ops <service> dead-letters retry ID | discard ID
    pawgle-ops <service> replay CONSUMER (--from-seq N | --from-time ISO) [--as INBOX_NAME]
    pawgle-ops <service> <own command> ...   (a service's `ops_commands` module, e.g. reports partners)

It reads the same settings (env) as the service and opens the service's own database and the bus. Without
PAWGLE_NATS_URL it finds the running `make run` stack from `<PAWGLE_DATA_DIR or ./.data>/stack.json`, and
refuses to run when there is none (it never falls back to whatever NATS listens on the default port).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib
import os
import sys
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Any

from fastapi import FastAPI

from pawgle.common.bus.consumer import ConsumerSpec
from pawgle.common.bus.deadletters import discard_dead_letter, list_dead_letters, retry_dead_letter
from pawgle.common.bus.gauges import consumer_states
from pawgle.common.bus.replay import replay
from pawgle.common.migrations import upgrade_to_head
from pawgle.common.stackfile import NoStackFound, bus_environment


def _out(line: str) -> None:
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def load_app(service: str) -> FastAPI:
    """Build the service's app without its background workers."""
    config = importlib.import_module(f"pawgle.{service}.config")
    main = importlib.import_module(f"pawgle.{service}.main")
    settings = config.Settings(run_workers=False)
    return main.create_app(settings)


@contextlib.asynccontextmanager
async def running(app: FastAPI) -> AsyncIterator[FastAPI]:
    async with app.router.lifespan_context(app):
        yield app


def consumer_specs(app: FastAPI) -> dict[str, ConsumerSpec]:
    factory = app.state.consumer_factory
    return {spec.name: spec for spec in (factory(app) if factory else [])}


async def _run(args: argparse.Namespace) -> int:
    app = load_app(args.service)
    if args.command == "migrate":
        if app.state.migrations is None:
            _out(f"{args.service} has no database migrations")
            return 0
        settings = app.state.settings
        upgrade_to_head(app.state.migrations, settings.db_url)
        _out(f"{args.service}: database at head")
        return 0
    async with running(app):
        engine = app.state.engine
        specs = consumer_specs(app)
        if args.command == "consumers":
            _out("consumer\tevent\tstream\tpending\tack_pending\tredelivered\tlast_delivery")
            states = await consumer_states(app.state.js, list(specs.values()))
            for state, spec in zip(states, specs.values(), strict=True):
                if not state.exists:
                    _out(f"{state.name}\t{spec.event_type}\t{spec.stream}\t(not created yet: the service never ran)")
                    continue
                last = f"{state.last_delivery:%Y-%m-%dT%H:%M:%S}Z" if state.last_delivery else "never"
                _out(
                    f"{state.name}\t{spec.event_type}\t{spec.stream}\t{state.pending}\t{state.ack_pending}"
                    f"\t{state.redelivered}\t{last}"
                )
            return 0
        if args.command == "dead-letters":
            if args.action == "list":
                for dl in list_dead_letters(engine, consumer=args.consumer, include_resolved=args.all):
                    state = dl.resolution or "open"
                    _out(
                        f"{dl.id}\t{dl.consumer}\t{dl.subject}\t{dl.event_id}\tdeliveries={dl.deliveries}"
                        f"\t{state}\t{dl.parked_at:%Y-%m-%dT%H:%M:%S}Z\t{dl.error[:160]}"
                    )
                return 0
            if args.id is None:
                _out("give the dead letter's id")
                return 2
            if args.action == "discard":
                discard_dead_letter(engine, args.id)
                _out(f"discarded {args.id}")
                return 0
            matching = [
                dl for dl in list_dead_letters(engine, include_resolved=True, limit=1_000_000) if dl.id == args.id
            ]
            if not matching or matching[0].consumer not in specs:
                _out(f"no dead letter {args.id} of a known consumer")
                return 1
            outcome = retry_dead_letter(engine, specs[matching[0].consumer], args.id)
            _out(f"retried {args.id}: {outcome.value}")
            return 0 if outcome.value in ("handled", "duplicate") else 1
        if args.command == "replay":
            spec = specs.get(args.consumer)
            if spec is None:
                _out(f"unknown consumer {args.consumer!r}; known: {', '.join(specs) or 'none'}")
                return 2

            def show(done: int, total: int) -> None:
                if done == total or done % 500 == 0:
                    _out(f"replay {spec.name}: {done}/{total}")

            report = await replay(
                engine,
                app.state.nc,
                spec,
                from_seq=args.from_seq,
                from_time=datetime.fromisoformat(args.from_time) if args.from_time else None,
                inbox_name=args.as_name,
                progress=show,
            )
            _out(f"replay {spec.name} done: {report.seen} events, {report.outcomes}")
            return 0
    return 2


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="pawgle-ops", description="Operate one PawGle mesh service.")
    parser.add_argument("service", help="auth, pets, reports, chat, embeddings, matcher or notifier")
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("migrate", help="bring the service's database schema to head")
    commands.add_parser(
        "consumers", help="each durable consumer: pending, ack pending, redelivered, last delivery time"
    )
    dead = commands.add_parser("dead-letters", help="list, retry or discard parked events")
    dead.add_argument("action", choices=["list", "retry", "discard"])
    dead.add_argument("id", nargs="?", type=int)
    dead.add_argument("--consumer")
    dead.add_argument("--all", action="store_true", help="include resolved ones")
    rerun = commands.add_parser("replay", help="re-run a consumer from a stream sequence or a time")
    rerun.add_argument("consumer")
    start = rerun.add_mutually_exclusive_group(required=True)
    start.add_argument("--from-seq", type=int)
    start.add_argument("--from-time", help="ISO-8601, e.g. 2026-11-01T00:00:00+00:00")
    rerun.add_argument("--as", dest="as_name", help="inbox name for a fresh projection (default: the consumer's)")
    return parser


def service_commands(service: str) -> Any:
    """A service's own commands (`pawgle.<service>.ops_commands`: COMMANDS and main(argv)), if it has any."""
    try:
        return importlib.import_module(f"pawgle.{service}.ops_commands")
    except ModuleNotFoundError as exc:
        if exc.name in ("pawgle", f"pawgle.{service}", f"pawgle.{service}.ops_commands"):
            return None  # no such service, or one without commands of its own
        raise


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    # Extension point: `pawgle-ops reports partners ...` runs the reports service's own command.
    own = service_commands(argv[0]) if len(argv) >= 2 and argv[0].isidentifier() else None
    if own is not None and argv[1] in own.COMMANDS:
        return int(own.main(argv[1:]))
    args = build_parser().parse_args(argv)
    if args.command != "migrate":
        # Reach the bus the operator means: PAWGLE_NATS_URL, else the running `make run` stack (stackfile.py).
        try:
            os.environ.update(bus_environment(args.service))
        except NoStackFound as exc:
            _out(f"pawgle-ops: {exc}")
            return 2
    return asyncio.run(_run(args))


if __name__ == "__main__":
    raise SystemExit(main())
