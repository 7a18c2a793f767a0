"""Importing this module registers every event type of the mesh: one module per producing service."""

from pawgle.common.events import auth, chat, embeddings, matcher, mesh, pets, reports

__all__ = ["auth", "chat", "embeddings", "matcher", "mesh", "pets", "reports"]
