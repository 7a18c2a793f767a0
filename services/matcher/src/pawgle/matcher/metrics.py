"""The matcher's own metrics (its dashboard: matches found, confirmed, dismissed, latency, queue)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

MATCHES_FOUND = Counter("pawgle_matcher_matches_found_total", "New (found report, lost side) pairs stored", ["via"])
MATCHES_CONFIRMED = Counter("pawgle_matcher_matches_confirmed_total", "Matches confirmed, by side", ["side"])
MATCHES_DISMISSED = Counter("pawgle_matcher_matches_dismissed_total", "Matches dismissed, by side", ["side"])
MATCH_LATENCY = Histogram(
    "pawgle_matcher_match_latency_seconds",
    "From the found report's report.filed to its match stored (embedding included)",
    buckets=(0.1, 0.25, 0.5, 1.0, 1.5, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0),
)
RUN_SECONDS = Histogram(
    "pawgle_matcher_run_seconds",
    "One matching run: the candidates query and the transaction storing its matches",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5),
)
JOB_WAIT_SECONDS = Histogram(
    "pawgle_matcher_job_wait_seconds",
    "From a match job falling due (its cause committed, or its retry time) to a worker claiming it",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
)
CANDIDATES_SECONDS = Histogram(
    "pawgle_matcher_candidates_seconds",
    "The candidates request-reply to embeddings for one subject (its queries side by side), round trip",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0),
)
SETTLE_SECONDS = Histogram(
    "pawgle_matcher_settle_seconds",
    "The transaction that stores one subject's matches (filters, pairs, match.found in the outbox)",
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0),
)
CANDIDATES_FAILED = Counter(
    "pawgle_matcher_candidate_queries_failed_total",
    "Candidate queries the embeddings service did not answer",
    ["status"],
)
QUEUE_DEPTH = Gauge("pawgle_matcher_queue_depth", "Pets and reports waiting to be matched")
