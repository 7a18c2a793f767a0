"""Test harness: a real nats-server per test session, a clean database per test, and factories."""
