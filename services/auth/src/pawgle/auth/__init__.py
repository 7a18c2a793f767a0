"""PawGle auth service: accounts, sessions, tokens and signing keys."""
