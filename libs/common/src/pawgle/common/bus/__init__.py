"""The message bus: JetStream streams, the transactional outbox and its relay, idempotent consumers."""
