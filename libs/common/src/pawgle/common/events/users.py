"""Moved to `pawgle.common.events.auth` (events are grouped by producing service); kept so old imports work."""

from pawgle.common.events.auth import MagicLinkRequested, UserDeleted, UserRegistered, UserUpdated

__all__ = ["MagicLinkRequested", "UserDeleted", "UserRegistered", "UserUpdated"]
