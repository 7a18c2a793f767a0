"""E-mail: composing link-only messages, the e-mail log, the background sender and its two adapters."""
