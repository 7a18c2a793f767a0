"""The route table: every contract path has exactly one owner, whatever the order of the rows."""

from __future__ import annotations

import random

import pytest

from pawgle.gateway.routes import ROUTE_TABLE, SERVICES, RouteTable

# Contract section 2 (and the optional original routes the brief keeps), with the owner decided for the mesh.
CONTRACT_PATHS = [
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
    ("/api/auth/account/", "auth"),
    ("/api/auth/jwks/", "auth"),
    ("/api/auth/profile/", "pets"),
    ("/api/auth/pets/add/", "pets"),
    ("/api/auth/pets/17/edit/", "pets"),
    ("/api/auth/pets/17/delete/", "pets"),
    ("/api/auth/pets/17/qr/", "pets"),
    ("/api/auth/pets/17/feature-status/", "pets"),
    ("/api/auth/pets/17/retry-features/", "pets"),
    ("/api/auth/found/ANIk3J9x_-Qz0aBcDeFgHiJ/", "pets"),
    ("/api/auth/dashboard/pets/", "pets"),
    ("/api/auth/pets/count/", "pets"),
    ("/api/auth/edited-pet-images/", "pets"),
    ("/api/auth/edited-pet-images/5/", "pets"),
    ("/api/auth/pets/locations/", "reports"),
    ("/api/auth/pets/lost/locations/", "reports"),
    ("/api/auth/pets/found/locations/", "reports"),
    ("/api/auth/user/pet-locations/", "reports"),
    ("/api/auth/pets/report/", "reports"),
    ("/api/auth/pets/locations/42/status/", "reports"),
    ("/api/lost_pets/", "reports"),
    ("/api/auth/pets/search/", "embeddings"),
    ("/api/auth/chat/conversations/", "chat"),
    ("/api/auth/chat/conversations/start/", "chat"),
    ("/api/auth/chat/conversations/0b9c6f1e-3a52-4d47-9f0e-6f1d2b3c4a5e/", "chat"),
    ("/api/auth/chat/conversations/0b9c6f1e-3a52-4d47-9f0e-6f1d2b3c4a5e/messages/", "chat"),
    ("/api/auth/chat/conversations/not-a-uuid/messages/", "chat"),
    ("/api/auth/pets/contact-owner/", "chat"),
    ("/api/auth/matches/", "matcher"),
    ("/api/auth/matches/12/confirm/", "matcher"),
    ("/api/auth/alerts/", "notifier"),
    ("/api/auth/alerts/3/", "notifier"),
    ("/api/auth/notifications/", "notifier"),
    ("/api/auth/notifications/8/read/", "notifier"),
    ("/api/auth/notifications/read-all/", "notifier"),
    ("/api/auth/email/forward-reply/", "notifier"),
]

NOT_ROUTED = [
    "/",
    "/api/",
    "/api/token/",  # returns a refresh token in the body: never exposed (contract D13)
    "/api/auth/api/auth/conversations/share-info/",  # unauthenticated consent flags (D3c)
    "/api/auth/pets/0/edit/",
    "/api/auth/pets/-3/edit/",
    "/api/auth/pets/abc/edit/",
    "/api/auth/pets/17/",
    "/api/auth/found/ANI/../x/",
    "/api/auth/found/a.b/",
    "/api/auth/chat/../profile/",
    "/api/auth/pets/locations/7/",
    "/api/auth/loginx/",
    "/api/auth/chatroom/",
    "/admin/",
]


def sample_path(template: str) -> str:
    """A concrete path for a template."""
    path = template.replace("{id}", "73").replace("{animal_id}", "ANIabc_DEF-123").replace("{segment}", "seg")
    return path.replace("/**", "/some/thing/")


@pytest.mark.parametrize(("path", "owner"), CONTRACT_PATHS)
def test_every_contract_path_resolves_to_its_owner_with_or_without_the_trailing_slash(path: str, owner: str) -> None:
    table = RouteTable()
    with_slash, without_slash = table.resolve(path), table.resolve(path.rstrip("/"))
    assert with_slash is not None
    assert with_slash.service == owner
    assert without_slash == with_slash


@pytest.mark.parametrize("path", NOT_ROUTED)
def test_paths_outside_the_contract_have_no_owner(path: str) -> None:
    assert RouteTable().resolve(path) is None


def test_no_two_rows_match_the_same_path() -> None:
    table = RouteTable()
    for template, _owner in ROUTE_TABLE:
        for path in (sample_path(template), sample_path(template).rstrip("/")):
            matching = [route.template for route in table.routes if route.pattern.fullmatch(path)]
            assert matching == [template], path


def test_the_order_of_the_table_does_not_change_any_answer() -> None:
    shuffled = list(ROUTE_TABLE)
    random.Random(7).shuffle(shuffled)
    original, reordered = RouteTable(), RouteTable(tuple(shuffled))
    for path, _owner in CONTRACT_PATHS:
        assert original.resolve(path) == reordered.resolve(path)


def test_every_owner_is_a_known_service_and_every_service_owns_something() -> None:
    owners = {owner for _template, owner in ROUTE_TABLE}
    assert owners == set(SERVICES)


def test_an_unknown_placeholder_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown placeholder"):
        RouteTable((("/api/auth/pets/{pet}/", "pets"),))
