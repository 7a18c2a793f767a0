"""Typed event handlers declared beside their code: one `EventHandlers` registry per service.

    handlers = EventHandlers("notifier")

    @handlers.on(ReportFiled)
    def report_filed(session: Session, data: ReportFiled, event_id: str, settings: Settings) -> None:
        reactions.on_report_filed(session, settings=settings, event_id=event_id, data=data)

A handler asks for what it needs by parameter name (see `INJECTABLE`); it gets the payload already
decoded, upcast and validated as its event class. Mistakes fail when the module is imported, not when
the first event arrives: a class that is not a registered event, a second handler for the same event, a
parameter nobody can supply. The registry then produces one idempotent durable consumer per event
(`consumer_specs`), which `create_service_app(handlers=...)` starts.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, TypeVar

from sqlmodel import Session

from pawgle.common.bus.consumer import ConsumerSpec
from pawgle.common.events.envelope import Envelope, EventData, registered_types

F = TypeVar("F", bound=Callable[..., None])

# What a handler may ask for, by parameter name.
INJECTABLE = {
    "session": "the consumer's database session (its transaction also records the event as handled)",
    "data": "the typed payload (an instance of the event class)",
    "event": "the whole envelope: id, type, version, occurred_at, producer, data",
    "event_id": "the event's id, the key that makes effects idempotent",
    "occurred_at": "when the producer recorded the event (timezone-aware)",
    "settings": "the service's settings",
    "app": "the running FastAPI app (app.state holds engines and clients)",
}


@dataclass(frozen=True)
class Registration:
    """One event class and the function that handles it."""

    event: type[EventData]
    handler: Callable[..., None]
    wants: tuple[str, ...]


class EventHandlers:
    """The events one service consumes and the function handling each."""

    def __init__(self, service: str) -> None:
        self.service = service
        self._by_type: dict[str, Registration] = {}

    def on(self, *events: type[EventData]) -> Callable[[F], F]:
        """Decorator: `fn` handles each of `events` (one durable consumer per event type)."""
        if not events:
            raise TypeError("handlers.on() needs at least one event class")
        known = registered_types()
        for event in events:
            if not (isinstance(event, type) and issubclass(event, EventData)):
                raise TypeError(f"{event!r} is not an event class (a subclass of EventData)")
            if known.get(getattr(event, "event_type", "")) is not event:
                raise TypeError(f"{event.__name__} is not a registered event (decorate it with @event_model)")

        def register(fn: F) -> F:
            wants = _wanted_parameters(fn)
            for event in events:
                previous = self._by_type.get(event.event_type)
                if previous is not None:
                    raise ValueError(
                        f"{self.service}: {event.event_type} already handled by {previous.handler.__qualname__}; "
                        f"one handler per event (merge {fn.__qualname__} into it)"
                    )
                self._by_type[event.event_type] = Registration(event=event, handler=fn, wants=wants)
            return fn

        return register

    def __iter__(self) -> Iterator[Registration]:
        return iter(self._by_type.values())

    def __len__(self) -> int:
        return len(self._by_type)

    @property
    def event_types(self) -> list[str]:
        return list(self._by_type)

    def consumer_specs(self, *, settings: Any = None, app: Any = None, max_deliveries: int = 5) -> list[ConsumerSpec]:
        """One idempotent consumer per handled event type, named `<service>-<event>`."""
        return [
            ConsumerSpec(
                service=self.service,
                event_type=event_type,
                handler=_bind(registration, settings=settings, app=app),
                max_deliveries=max_deliveries,
            )
            for event_type, registration in self._by_type.items()
        ]


def _wanted_parameters(fn: Callable[..., None]) -> tuple[str, ...]:
    wants: list[str] = []
    for name, parameter in inspect.signature(fn).parameters.items():
        if parameter.kind in (parameter.VAR_POSITIONAL, parameter.VAR_KEYWORD):
            raise TypeError(f"{fn.__qualname__}: name each parameter (one of {', '.join(INJECTABLE)})")
        if name not in INJECTABLE:
            if parameter.default is not parameter.empty:
                continue  # the handler's own default
            raise TypeError(
                f"{fn.__qualname__}: nothing supplies parameter {name!r}; a handler may ask for {', '.join(INJECTABLE)}"
            )
        wants.append(name)
    return tuple(wants)


def _bind(registration: Registration, *, settings: Any, app: Any) -> Callable[[Session, Envelope[Any]], None]:
    """The (session, envelope) function a consumer calls, supplying what the handler asked for."""
    fn, wants, event_class = registration.handler, registration.wants, registration.event

    def handle(session: Session, envelope: Envelope[Any]) -> None:
        if not isinstance(envelope.data, event_class):
            raise TypeError(f"{fn.__qualname__} expects {event_class.__name__}, got {type(envelope.data).__name__}")
        available = {
            "session": session,
            "data": envelope.data,
            "event": envelope,
            "event_id": envelope.id,
            "occurred_at": envelope.occurred_at,
            "settings": settings,
            "app": app,
        }
        fn(**{name: available[name] for name in wants})

    handle.__qualname__ = fn.__qualname__
    return handle
