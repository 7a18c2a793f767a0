"""Event envelope and the versioned schemas of every event in the mesh."""

from pawgle.common.events.envelope import (
    Envelope,
    EventData,
    decode_event,
    encode_event,
    event_model,
    new_event,
)

__all__ = ["Envelope", "EventData", "decode_event", "encode_event", "event_model", "new_event"]

from pawgle.common.events import catalog as _catalog  # noqa: E402,F401  (registers every event type)
