"""Importing this module registers every event type of the mesh."""

from pawgle.common.events import matches, pets, reports, users

__all__ = ["matches", "pets", "reports", "users"]
