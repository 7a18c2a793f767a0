"""Request-reply between services over core NATS: a typed request and response per subject.

    FIND_PET = Endpoint("rpc.pets.find", request=FindPet, response=PetFound, timeout_s=2.0)

    # the answering service (started by create_service_app(responders=...))
    responders = Responders("pets")

    @responders.answer(FIND_PET)
    def find_pet(session: Session, request: FindPet) -> PetFound: ...

    # any caller
    found = await call(nc, FIND_PET, FindPet(pet_id=7))

A reply carries a status header and, on failure, the mesh's error body (`detail`, `error`, `message`), so
the caller gets a `RemoteError` that is an `AppError`: raised in a route it becomes the same HTTP error.
No answerer is a `NoResponder` (503) at once; a slow or lost one a `RequestTimeout` (504) after the
endpoint's timeout, never a hang. The request carries the trace context and its deadline, so the answer
joins the caller's trace and an answerer skips requests whose caller already gave up.

Subjects start with `rpc.`, which no JetStream stream captures: a request must never be stored as an event.
"""

from __future__ import annotations

import asyncio
import inspect
import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

import nats.errors
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription
from opentelemetry import context as otel_context
from opentelemetry import trace
from pydantic import BaseModel, ValidationError
from sqlalchemy.engine import Engine
from sqlmodel import Session

from pawgle.common.bus.streams import stream_for
from pawgle.common.errors import AppError, error_body
from pawgle.common.telemetry import context_from_headers, current_trace_headers, tracer

log = logging.getLogger(__name__)

Req = TypeVar("Req", bound=BaseModel)
Resp = TypeVar("Resp", bound=BaseModel)

STATUS_HEADER = "Pawgle-Status"
DEADLINE_HEADER = "Pawgle-Deadline-Ms"


@dataclass(frozen=True)
class Endpoint(Generic[Req, Resp]):
    """One request-reply subject: what is asked, what is answered, how long a caller waits."""

    subject: str
    request: type[Req]
    response: type[Resp]
    timeout_s: float = 2.0

    def __post_init__(self) -> None:
        if not self.subject.startswith("rpc.") or self.subject.count(".") < 2:
            raise ValueError(f"request subjects look like rpc.<service>.<name>, not {self.subject!r}")
        try:
            stream = stream_for(self.subject)
        except KeyError:
            return
        raise ValueError(f"{self.subject} would be stored by stream {stream.name}; requests are not events")


class RemoteError(AppError):
    """The answering service refused or failed the request; carries its status and error body."""

    def __init__(self, status_code: int, detail: str, **extra: Any) -> None:
        super().__init__(detail, status_code=status_code, **extra)


class NoResponder(RemoteError):
    """Nobody subscribes to the subject (the answering service is down or not deployed)."""

    def __init__(self, subject: str) -> None:
        super().__init__(503, f"No service answers {subject} right now; try again shortly.")


class RequestTimeout(RemoteError):
    """An answerer exists but did not reply in time."""

    def __init__(self, subject: str, timeout_s: float) -> None:
        super().__init__(504, f"No answer from {subject} within {timeout_s:g} s; try again shortly.")


async def call(nc: Client, endpoint: Endpoint[Req, Resp], request: Req, *, timeout_s: float | None = None) -> Resp:
    """Ask `endpoint` and return its typed answer; raises RemoteError (or a subclass) otherwise."""
    if not isinstance(request, endpoint.request):
        raise TypeError(f"{endpoint.subject} takes {endpoint.request.__name__}, not {type(request).__name__}")
    timeout = endpoint.timeout_s if timeout_s is None else timeout_s
    headers = {**current_trace_headers(), DEADLINE_HEADER: str(int((time.time() + timeout) * 1000))}
    try:
        reply = await nc.request(endpoint.subject, request.model_dump_json().encode(), timeout=timeout, headers=headers)
    except nats.errors.NoRespondersError:
        raise NoResponder(endpoint.subject) from None
    except (nats.errors.TimeoutError, TimeoutError):
        raise RequestTimeout(endpoint.subject, timeout) from None
    status = int((reply.headers or {}).get(STATUS_HEADER, "200"))
    try:
        body = json.loads(reply.data)
    except ValueError:
        raise RemoteError(502, f"{endpoint.subject} answered something that is not JSON.") from None
    if status >= 400:
        detail = str(body.get("detail") or "The service refused the request.")
        extra = {k: v for k, v in body.items() if k not in ("detail", "error", "message")}
        raise RemoteError(status, detail, **extra)
    try:
        return endpoint.response.model_validate(body)
    except ValidationError as exc:
        raise RemoteError(502, f"{endpoint.subject} answered an invalid {endpoint.response.__name__}.") from exc


# --- answering -----------------------------------------------------------------------------------

INJECTABLE = ("request", "session", "settings", "app")


@dataclass(frozen=True)
class Answerer:
    endpoint: Endpoint[Any, Any]
    fn: Callable[..., Any]
    wants: tuple[str, ...]
    is_async: bool


class Responders:
    """The request-reply subjects one service answers (registered at import, started by the app)."""

    def __init__(self, service: str) -> None:
        self.service = service
        self._by_subject: dict[str, Answerer] = {}

    def answer(self, endpoint: Endpoint[Req, Resp]) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
        """Decorator: `fn` answers `endpoint`, asking by name for request, session, settings or app."""
        if not isinstance(endpoint, Endpoint):
            raise TypeError(f"{endpoint!r} is not an Endpoint")

        def register(fn: Callable[..., Any]) -> Callable[..., Any]:
            if endpoint.subject in self._by_subject:
                raise ValueError(f"{self.service}: {endpoint.subject} already answered by another function")
            wants = tuple(inspect.signature(fn).parameters)
            unknown = [name for name in wants if name not in INJECTABLE]
            if unknown:
                raise TypeError(f"{fn.__qualname__}: nothing supplies {unknown[0]!r}; ask for {', '.join(INJECTABLE)}")
            is_async = inspect.iscoroutinefunction(fn)
            if is_async and "session" in wants:
                raise TypeError(f"{fn.__qualname__}: a database session is for plain (threaded) functions")
            self._by_subject[endpoint.subject] = Answerer(endpoint, fn, wants, is_async)
            return fn

        return register

    def __len__(self) -> int:
        return len(self._by_subject)

    def workers(self, nc: Client, *, engine: Engine | None, settings: Any = None, app: Any = None) -> list[Responder]:
        """One background worker per answered subject (create_service_app starts them)."""
        return [
            Responder(nc, answerer, service=self.service, engine=engine, settings=settings, app=app)
            for answerer in self._by_subject.values()
        ]


class Responder:
    """Answers one subject in the service's queue group (replicas share the load) until stopped."""

    def __init__(
        self,
        nc: Client,
        answerer: Answerer,
        *,
        service: str,
        engine: Engine | None,
        settings: Any,
        app: Any,
        concurrency: int = 16,
    ) -> None:
        self.nc = nc
        self.answerer = answerer
        self.service = service
        self.engine = engine
        self.settings = settings
        self.app = app
        self.name = f"answer-{answerer.endpoint.subject}"
        self._slots = asyncio.Semaphore(concurrency)
        self._in_flight: set[asyncio.Task[None]] = set()
        self._stopped: asyncio.Event | None = None
        self.subscribed = asyncio.Event()

    def request_stop(self) -> None:
        if self._stopped is not None:
            self._stopped.set()

    async def run(self) -> None:
        self._stopped = asyncio.Event()
        sub: Subscription = await self.nc.subscribe(
            self.answerer.endpoint.subject, queue=self.service, cb=self._on_request
        )
        await self.nc.flush()
        self.subscribed.set()
        try:
            await self._stopped.wait()
        finally:
            await sub.unsubscribe()
            if self._in_flight:
                await asyncio.wait(set(self._in_flight), timeout=self.answerer.endpoint.timeout_s)

    async def _on_request(self, msg: Msg) -> None:
        # nats-py runs one callback at a time per subscription: hand each request its own task.
        task = asyncio.create_task(self._answer(msg))
        self._in_flight.add(task)
        task.add_done_callback(self._in_flight.discard)

    async def _answer(self, msg: Msg) -> None:
        headers = dict(msg.headers or {})
        deadline_ms = int(headers.get(DEADLINE_HEADER, "0") or 0)
        subject = self.answerer.endpoint.subject
        async with self._slots:
            if deadline_ms and time.time() * 1000 > deadline_ms:
                log.info("request on %s skipped: its caller already gave up", subject)
                return
            token = otel_context.attach(context_from_headers(headers))
            try:
                with tracer().start_as_current_span(f"answer {subject}", kind=trace.SpanKind.SERVER):
                    status, body = await self._status_and_body(msg.data)
            finally:
                otel_context.detach(token)
        if msg.reply:
            try:
                await self.nc.publish(
                    msg.reply, json.dumps(body, default=str).encode(), headers={STATUS_HEADER: str(status)}
                )
            except Exception:  # noqa: BLE001 - the caller times out and retries; we keep answering
                log.warning("could not send the answer on %s", subject, exc_info=True)

    async def _status_and_body(self, data: bytes) -> tuple[int, dict[str, Any]]:
        endpoint = self.answerer.endpoint
        try:
            request = endpoint.request.model_validate_json(data)
        except ValidationError as exc:
            fields = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'body'}: {e['msg']}" for e in exc.errors())
            return 400, error_body(f"Invalid request. {fields}")
        try:
            if self.answerer.is_async:
                result = await self.answerer.fn(**self._arguments(request, session=None))
            else:
                result = await asyncio.to_thread(self._answer_in_thread, request)
            answer = endpoint.response.model_validate(result, from_attributes=True)
        except AppError as exc:
            return exc.status_code, error_body(exc.detail, **exc.extra)
        except Exception:  # noqa: BLE001 - the caller gets a generic 500; the log has the traceback
            log.exception("answering %s failed", endpoint.subject)
            return 500, error_body("An unexpected error occurred.")
        return 200, answer.model_dump(mode="json")

    def _answer_in_thread(self, request: BaseModel) -> Any:
        if "session" not in self.answerer.wants:
            return self.answerer.fn(**self._arguments(request, session=None))
        if self.engine is None:
            raise RuntimeError(f"{self.name} asks for a session but the app has no database")
        with Session(self.engine, expire_on_commit=False) as session:
            result = self.answerer.fn(**self._arguments(request, session=session))
            session.commit()
            return result

    def _arguments(self, request: BaseModel, *, session: Session | None) -> dict[str, Any]:
        available = {"request": request, "session": session, "settings": self.settings, "app": self.app}
        return {name: available[name] for name in self.answerer.wants}
