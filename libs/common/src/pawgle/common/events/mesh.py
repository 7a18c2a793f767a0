"""The mesh's own probe event: an end-to-end canary through outbox, JetStream and a consumer."""

from __future__ import annotations

from pawgle.common.events.envelope import EventData, event_model


@event_model
class Pinged(EventData):
    """Published by operators' probes and benchmarks; carries no user data."""

    event_type = "mesh.pinged"
    key: str
    sent_at_ns: int = 0
