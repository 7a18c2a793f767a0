"""Shared building blocks of the PawGle mesh services."""
