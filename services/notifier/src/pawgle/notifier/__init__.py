"""PawGle notifier service: alert areas, notifications and email."""
