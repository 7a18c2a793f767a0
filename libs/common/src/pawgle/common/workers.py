"""Long-lived loops a service app owns: started with it, stopped cleanly with it, visible in /readyz.

Two shapes cover the mesh's background work:

- `WakeableLoop`: does a step of work again at once while it finds some, otherwise sleeps until woken
  (after a commit that added work, see `workqueue.on_commit_wake`) or until its poll interval passes.
  The outbox relay and the notifier's mail sender are such loops.
- `PeriodicJob`: runs a job every N seconds (auth's purge of expired tokens, metric refreshes).

Both run a failing step again with a bounded backoff instead of dying. Stopping asks the loop to finish
the step it is in (a step that runs in a thread checks `should_stop()` between items and releases what it
did not get to), waits for it within a bound, and only then cancels. `create_service_app(workers=...)`
starts them with the relay and consumers; `WorkerSet` reports any that died to `/readyz`.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import threading
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Protocol

log = logging.getLogger(__name__)


class Worker(Protocol):
    """Anything the app can run in the background: a name, `run()` until stopped, `request_stop()`."""

    name: str

    async def run(self) -> None: ...

    def request_stop(self) -> None: ...


class StoppableLoop:
    """The stop flag and the interruptible sleep shared by the loops (thread-safe `request_stop`)."""

    def __init__(self, name: str) -> None:
        self.name = name
        self._stop = threading.Event()
        self._wake: asyncio.Event | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def should_stop(self) -> bool:
        """True once the app asked this worker to stop; a step in a thread checks it between items."""
        return self._stop.is_set()

    def request_stop(self) -> None:
        """Ask the loop to finish its current step and return; callable from any thread."""
        self._stop.set()
        self.wake()

    def wake(self) -> None:
        """Cut the current sleep short; callable from any thread."""
        loop, event = self._loop, self._wake
        if loop is not None and event is not None and not loop.is_closed():
            loop.call_soon_threadsafe(event.set)

    def _bind_loop(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._wake = asyncio.Event()
        if self._stop.is_set():
            self._wake.set()

    async def sleep(self, seconds: float) -> None:
        """Sleep up to `seconds`, less if woken or asked to stop."""
        assert self._wake is not None, "sleep() is for the running loop"
        if self._stop.is_set():
            return
        try:
            await asyncio.wait_for(self._wake.wait(), timeout=seconds)
        except TimeoutError:
            pass
        if not self._stop.is_set():
            self._wake.clear()


class WakeableLoop(StoppableLoop):
    """Run `step` again at once while it reports work done, else sleep until woken or `poll_interval_s`.

    `step` is a coroutine function returning how many items it handled. `on_idle` runs (awaited)
    whenever a step found nothing, and after a failed step (for gauges that must stay true in faults).
    """

    def __init__(
        self,
        name: str,
        step: Callable[[], Awaitable[int]],
        *,
        poll_interval_s: float = 1.0,
        max_backoff_s: float = 30.0,
        on_idle: Callable[[], Awaitable[None]] | None = None,
    ) -> None:
        super().__init__(name)
        self.step = step
        self.poll_interval_s = poll_interval_s
        self.max_backoff_s = max_backoff_s
        self.on_idle = on_idle

    async def run(self) -> None:
        self._bind_loop()
        failures = 0
        while not self.should_stop():
            try:
                done = await self.step()
                failures = 0
            except asyncio.CancelledError:
                raise
            except Exception:  # noqa: BLE001 - one failed step (database, bus) must not end the loop
                failures += 1
                log.warning("%s: step failed (%d in a row); retrying", self.name, failures, exc_info=True)
                await self._idle()
                await self.sleep(min(0.2 * 2**failures, self.max_backoff_s))
                continue
            if done:
                continue
            await self._idle()
            await self.sleep(self.poll_interval_s)

    async def _idle(self) -> None:
        if self.on_idle is None:
            return
        try:
            await self.on_idle()
        except Exception:  # noqa: BLE001 - a gauge is not worth ending the loop
            log.debug("%s: idle hook failed", self.name, exc_info=True)


class PeriodicJob(StoppableLoop):
    """Run `job` every `every_s` seconds (first run after `first_after_s`); a failed run waits its turn.

    `job` may be a plain function (run in a thread, so it may block on the database) or a coroutine function.
    """

    def __init__(self, name: str, job: Callable[[], Any], *, every_s: float, first_after_s: float = 0.0) -> None:
        super().__init__(name)
        self.job = job
        self.every_s = every_s
        self.first_after_s = first_after_s
        self.runs = 0

    async def run_once(self) -> Any:
        """Run the job now (a test or an operator may call this directly)."""
        if inspect.iscoroutinefunction(self.job):
            return await self.job()
        return await asyncio.to_thread(self.job)

    async def run(self) -> None:
        self._bind_loop()
        await self.sleep(self.first_after_s)
        while not self.should_stop():
            try:
                await self.run_once()
            except asyncio.CancelledError:
                raise
            except Exception:  # noqa: BLE001 - the next run may succeed
                log.warning("%s: run failed; next in %.0f s", self.name, self.every_s, exc_info=True)
            self.runs += 1
            await self.sleep(self.every_s)


class WorkerSet:
    """The app's background workers: start them, tell which died, stop them all cleanly."""

    def __init__(self) -> None:
        self.tasks: dict[str, asyncio.Task[None]] = {}
        self.workers: dict[str, Worker] = {}
        self.stopping = False

    def start(self, worker: Worker) -> None:
        if worker.name in self.workers:
            raise ValueError(f"two workers named {worker.name!r}")
        task = asyncio.create_task(worker.run(), name=worker.name)
        task.add_done_callback(self._report_end)
        self.workers[worker.name] = worker
        self.tasks[worker.name] = task

    def _report_end(self, task: asyncio.Task[None]) -> None:
        if self.stopping or task.cancelled():
            return
        exc = task.exception()
        log.error("worker %s ended unexpectedly", task.get_name(), exc_info=exc)

    def dead(self) -> list[str]:
        """Workers whose loop ended while the app still runs."""
        if self.stopping:
            return []
        return [name for name, task in self.tasks.items() if task.done()]

    async def stop(self, *, timeout_s: float = 15.0) -> None:
        """Ask every worker to finish its step, wait up to `timeout_s`, then cancel whatever still runs."""
        self.stopping = True
        for worker in self.workers.values():
            worker.request_stop()
        pending = {task for task in self.tasks.values() if not task.done()}
        if pending:
            _, pending = await asyncio.wait(pending, timeout=timeout_s)
        if pending:
            log.warning("workers still busy after %.0f s, cancelled: %s", timeout_s, names(pending))
            await stop_tasks(list(pending))


def names(tasks: Sequence[asyncio.Task[None]] | set[asyncio.Task[None]]) -> str:
    return ", ".join(sorted(t.get_name() for t in tasks))


async def stop_tasks(tasks: Sequence[asyncio.Task[None]], *, attempts: int = 10, wait_s: float = 2.0) -> None:
    """Cancel background tasks and wait for them, cancelling again if a cancellation was swallowed.

    On Python 3.11 `asyncio.wait_for` (used inside nats-py) can swallow a cancellation that races with
    its own completion, so one `cancel()` is not always enough; the retries are bounded.
    """
    pending = {task for task in tasks if not task.done()}
    for _ in range(attempts):
        if not pending:
            return
        for task in pending:
            task.cancel()
        _, pending = await asyncio.wait(pending, timeout=wait_s)
    if pending:
        log.error("background tasks did not stop: %s", names(pending))
