"""One JetStream stream per domain: file storage, retention long enough to replay."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from nats.js import JetStreamContext
from nats.js.api import DiscardPolicy, RetentionPolicy, StorageType, StreamConfig
from nats.js.errors import NotFoundError

log = logging.getLogger(__name__)

DAY = 24 * 3600.0


@dataclass(frozen=True)
class StreamSpec:
    name: str
    subjects: tuple[str, ...]
    max_age_s: float
    description: str


STREAMS: tuple[StreamSpec, ...] = (
    StreamSpec("USERS", ("user.>",), 365 * DAY, "accounts: registered, updated, deleted"),
    # Magic links must not outlive the link itself (15 minutes).
    StreamSpec("AUTH", ("auth.>",), 15 * 60.0, "sign-in and verification links to send"),
    StreamSpec("PETS", ("pet.>",), 365 * DAY, "registered pets and their embeddings"),
    StreamSpec("REPORTS", ("report.>",), 365 * DAY, "lost and found reports and their embeddings"),
    StreamSpec("EMBEDDINGS", ("embedding.>",), 90 * DAY, "image model failures"),
    StreamSpec("MATCHES", ("match.>",), 365 * DAY, "candidate matches and the owners' verdicts"),
    StreamSpec("CONVERSATIONS", ("conversation.>",), 365 * DAY, "chats opened"),
    StreamSpec("MESSAGES", ("message.>",), 90 * DAY, "chat messages sent (no bodies)"),
    StreamSpec("MESH", ("mesh.>",), 1 * DAY, "probes and benchmarks of the event path"),
)


def stream_for(subject: str) -> StreamSpec:
    """The stream that captures a subject (by its first token)."""
    prefix = subject.split(".", 1)[0]
    for spec in STREAMS:
        if any(s.split(".", 1)[0] == prefix for s in spec.subjects):
            return spec
    raise KeyError(f"no stream captures subject {subject!r}")


async def ensure_streams(js: JetStreamContext, *, replicas: int = 1) -> None:
    """Create every stream, or bring an existing one's config up to date."""
    for spec in STREAMS:
        config = StreamConfig(
            name=spec.name,
            description=spec.description,
            subjects=list(spec.subjects),
            retention=RetentionPolicy.LIMITS,
            storage=StorageType.FILE,
            max_age=spec.max_age_s,
            num_replicas=replicas,
            duplicate_window=120.0,
            discard=DiscardPolicy.OLD,
        )
        try:
            await js.stream_info(spec.name)
        except NotFoundError:
            await js.add_stream(config)
            log.info("stream created", extra={"stream": spec.name})
        else:
            await js.update_stream(config)
