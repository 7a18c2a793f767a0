"""Importing this module registers every event type of the mesh."""

from pawgle.common.events import matches, mesh, pets, reports, users

__all__ = ["matches", "mesh", "pets", "reports", "users"]
