"""The route table: every public path of the API contract (section 2) and the service that owns it.

Templates are data. `{id}` is a positive integer, `{animal_id}` a URL-safe tag id, `{segment}` any one
path segment (the owner answers 404 for a bad one) and a trailing `/**` the whole subtree. Every template
matches with and without its trailing slash. No two templates match the same path (a test checks it), so
the order of the table does not matter.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

ROUTE_TABLE: tuple[tuple[str, str], ...] = (
    # auth: accounts, sessions, signing keys
    ("/api/auth/signup/", "auth"),
    ("/api/auth/login/", "auth"),
    ("/api/auth/google/", "auth"),
    ("/api/auth/magic/request/", "auth"),
    ("/api/auth/magic/consume/", "auth"),
    ("/api/auth/logout/", "auth"),
    ("/api/token/refresh/", "auth"),
    ("/api/auth/users/count/", "auth"),
    ("/api/auth/forgot-password/", "auth"),
    ("/api/auth/reset-password/", "auth"),
    ("/api/auth/verify-email/", "auth"),
    ("/api/auth/resend-verification/", "auth"),
    ("/api/auth/account/", "auth"),
    ("/api/auth/jwks/", "auth"),
    # pets: pets, photos, QR tags, the public found page, the fun-page edits
    ("/api/auth/profile/", "pets"),
    ("/api/auth/pets/add/", "pets"),
    ("/api/auth/pets/{id}/edit/", "pets"),
    ("/api/auth/pets/{id}/delete/", "pets"),
    ("/api/auth/pets/{id}/qr/", "pets"),
    ("/api/auth/pets/{id}/poster/", "pets"),
    ("/api/auth/pets/{id}/feature-status/", "pets"),
    ("/api/auth/pets/{id}/retry-features/", "pets"),
    ("/api/auth/found/{animal_id}/", "pets"),
    ("/api/auth/dashboard/pets/", "pets"),
    ("/api/auth/pets/count/", "pets"),
    ("/api/auth/edited-pet-images/", "pets"),
    ("/api/auth/edited-pet-images/{id}/", "pets"),
    # reports: lost and found reports on the map
    ("/api/auth/pets/locations/", "reports"),
    ("/api/auth/pets/lost/locations/", "reports"),
    ("/api/auth/pets/found/locations/", "reports"),
    ("/api/auth/user/pet-locations/", "reports"),
    ("/api/auth/pets/report/", "reports"),
    ("/api/auth/pets/locations/{id}/status/", "reports"),
    ("/api/auth/pets/locations/{id}/renew/", "reports"),
    ("/api/lost_pets/", "reports"),
    ("/api/partners/**", "reports"),
    # embeddings: image search
    ("/api/auth/pets/search/", "embeddings"),
    # chat: conversations and messages, and the contact-owner modal that opens one
    ("/api/auth/chat/**", "chat"),
    ("/api/auth/pets/contact-owner/", "chat"),
    # matcher: the ranked shortlist an owner confirms or dismisses (new)
    ("/api/auth/matches/**", "matcher"),
    # notifier: alert areas, notifications, legacy e-mail replies
    ("/api/auth/alerts/**", "notifier"),
    ("/api/auth/notifications/**", "notifier"),
    ("/api/auth/email/forward-reply/", "notifier"),
)

# Rows whose owner does not serve them yet (services still skeletons): the gateway already routes them, and
# the route-table test checks every other row against the owner's real app. Remove a row from here when
# its service ships it (the test says so).
PLANNED: frozenset[str] = frozenset()

SERVICES: tuple[str, ...] = ("auth", "pets", "reports", "chat", "embeddings", "matcher", "notifier")

_PLACEHOLDERS = {
    "{id}": "[1-9][0-9]*",
    "{animal_id}": "[A-Za-z0-9_-]+",
    "{segment}": "[^/]+",
}
_PLACEHOLDER = re.compile(r"\{[a-z_]+\}")


@dataclass(frozen=True, slots=True)
class Route:
    """One row of the table: a path template, its owner and the compiled pattern."""

    template: str
    service: str
    pattern: re.Pattern[str]


def compile_template(template: str) -> re.Pattern[str]:
    """The regular expression of a template; the trailing slash is optional."""
    subtree = template.endswith("/**")
    body = template[: -len("/**")] if subtree else template.rstrip("/")
    regex = ""
    position = 0
    for placeholder in _PLACEHOLDER.finditer(body):
        if placeholder.group() not in _PLACEHOLDERS:
            raise ValueError(f"unknown placeholder {placeholder.group()} in {template}")
        regex += re.escape(body[position : placeholder.start()]) + _PLACEHOLDERS[placeholder.group()]
        position = placeholder.end()
    regex += re.escape(body[position:])
    return re.compile(regex + ("(?:/.*)?" if subtree else "/?"), re.DOTALL)


class RouteTable:
    """Finds the owner of a path: a dict lookup for literal paths, then the patterns."""

    def __init__(self, table: tuple[tuple[str, str], ...] = ROUTE_TABLE) -> None:
        self.routes = tuple(Route(template, service, compile_template(template)) for template, service in table)
        self._literal: dict[str, Route] = {}
        self._patterns: list[Route] = []
        for route in self.routes:
            if _PLACEHOLDER.search(route.template) or route.template.endswith("/**"):
                self._patterns.append(route)
            else:
                self._literal[route.template] = route
                self._literal[route.template.rstrip("/")] = route

    def resolve(self, path: str) -> Route | None:
        """The route owning `path` (already collapsed), or None: the gateway answers 404 itself."""
        route = self._literal.get(path)
        if route is not None:
            return route
        if "/." in path:  # dot segments never reach a service
            return None
        for route in self._patterns:
            if route.pattern.fullmatch(path):
                return route
        return None
