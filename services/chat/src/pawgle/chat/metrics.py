"""The chat's Prometheus metrics (served on /metrics with the mesh's common ones)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

MESSAGES_SENT = Counter(
    "pawgle_chat_messages_sent_total",
    "Messages committed, by origin: app (C5), contact_owner (L7), email (reply by mail), system (matches)",
    ["via"],
)
CONVERSATIONS_OPENED = Counter(
    "pawgle_chat_conversations_opened_total",
    "Conversations created, by origin: start (C2), contact_owner (L7), match (match.found)",
    ["via"],
)
OPEN_STREAMS = Gauge("pawgle_chat_open_streams", "Server-sent event streams open in this process")
STREAM_NOTICES = Counter(
    "pawgle_chat_stream_notices_total", "Live notices written to an open stream, by event type", ["type"]
)
STREAM_NOTICES_DROPPED = Counter(
    "pawgle_chat_stream_notices_dropped_total",
    "Live notices dropped because a stream's client fell 1,000 notices behind (it catches up by polling)",
)
STREAM_DELIVERY = Histogram(
    "pawgle_chat_stream_delivery_seconds",
    "From the write's commit (notice published) to the notice written to the stream of a recipient",
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0),
)
