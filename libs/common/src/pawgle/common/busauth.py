"""Who may publish what on the bus: one NATS user per service, allowed only its own events.

Each service connects as its own user (credentials in its PAWGLE_NATS_URL, `nats://<service>:<password>@host`)
and may publish only the subjects of the events it produces, plus what the bus machinery needs: the
JetStream API (streams, consumers, fetching), acknowledgements, key-value updates (throttle counters,
revocations) and replies to requests it answers (`allow_responses`). Subscribing is open: every service
may read any stream. So a compromised service cannot forge another service's events. Without users
(the test plugin's server, a bare nats-server) nothing is checked, and everything keeps working.
"""

from __future__ import annotations

import json
import secrets
from urllib.parse import quote, urlsplit, urlunsplit

# The event subjects each service produces (its events' `event_type`s, which are their subjects).
PUBLISHES: dict[str, tuple[str, ...]] = {
    "auth": ("user.>", "auth.>"),
    "pets": ("pet.created", "pet.updated", "pet.deleted"),
    "reports": (
        "report.filed",
        "report.updated",
        "report.resolved",
        "report.reopened",
        "report.expiring",
        "report.expired",
        "report.erased",
    ),
    "chat": ("conversation.>", "message.sent", "chat.live.>"),
    "embeddings": ("pet.embedded", "report.embedded", "embedding.>"),
    "matcher": ("match.>",),
    "notifier": ("message.email_reply_received",),
}
# What every service needs besides its own events: the JetStream API and acks, key-value writes, probes and
# requests to other services (`rpc.<service>.<name>`: queries, never stored as events; answers go to inboxes).
MACHINERY = ("$JS.API.>", "$JS.ACK.>", "$KV.>", "_INBOX.>", "mesh.>", "rpc.>")


def new_passwords(services: tuple[str, ...] | list[str]) -> dict[str, str]:
    """A fresh random password per service (letters and digits: they go into URLs)."""
    return {service: secrets.token_hex(16) for service in services}


def user_permissions(service: str) -> dict[str, object]:
    """The NATS permissions of one service's user."""
    return {
        "publish": {"allow": [*PUBLISHES.get(service, ()), *MACHINERY]},
        "subscribe": {"allow": [">"]},
        # Replies to requests it received, once each, within a minute: the answers it owes, no more.
        "allow_responses": {"max": 1, "expires": "1m"},
    }


def authorization_block(passwords: dict[str, str]) -> str:
    """The `authorization { users = [...] }` block of a nats-server configuration."""
    users = [
        {"user": service, "password": password, "permissions": user_permissions(service)}
        for service, password in passwords.items()
    ]
    # JSON is valid nats-server configuration syntax.
    return "authorization: " + json.dumps({"users": users}, indent=1) + "\n"


def password_variable(service: str) -> str:
    """The environment variable holding a service's bus password in compose and on a cluster."""
    return f"NATS_{service.upper()}_PASSWORD"


def authorization_block_from_env(services: tuple[str, ...] | list[str]) -> str:
    """The same block with each password read by nats-server from its environment ($NATS_<SERVICE>_PASSWORD).

    This is deploy/compose/nats.conf (the deploy tests check it is exactly this).
    """
    users = [{"user": s, "password": f"${password_variable(s)}", "permissions": user_permissions(s)} for s in services]
    text = json.dumps({"users": users}, indent=1)
    for service in services:  # a variable reference must stand unquoted in the configuration
        text = text.replace(f'"${password_variable(service)}"', f"${password_variable(service)}")
    header = "# Generated from pawgle.common.busauth (one user per service, publishing only its own events).\n"
    return header + "authorization: " + text + "\n"


def url_with_credentials(url: str, user: str, password: str) -> str:
    """`nats://host:port` with the user and password in it, as the services' connection reads them."""
    parts = urlsplit(url)
    host = parts.hostname or "127.0.0.1"
    netloc = f"{quote(user, safe='')}:{quote(password, safe='')}@{host}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


def redacted(url: str) -> str:
    """A bus URL fit to print: the password replaced."""
    parts = urlsplit(url)
    if not parts.password:
        return url
    netloc = f"{parts.username}:***@{parts.hostname}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))
