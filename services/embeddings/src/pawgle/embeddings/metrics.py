"""The embeddings service's own metrics (the dashboard's embeddings/s, failures by reason, queue depth, search)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

EMBEDDED = Counter("pawgle_embeddings_photos_total", "Photo vectors stored", ["kind"])
FAILED = Counter("pawgle_embeddings_failed_total", "Pets and reports whose embedding failed for good", ["reason"])
RETRIED = Counter("pawgle_embeddings_retried_total", "Embedding attempts that failed and will be retried", ["reason"])
QUEUE_DEPTH = Gauge("pawgle_embeddings_queue_depth", "Pets and reports whose photos wait for the model")
SEARCH_LATENCY = Histogram(
    "pawgle_embeddings_search_seconds",
    "Image search and candidate queries, including the query photo's embedding",
    ["query"],
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0),
)
