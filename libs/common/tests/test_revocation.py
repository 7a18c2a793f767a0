"""The revocation list every service's token check consults, fed by auth's account events on the bus."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi import APIRouter, FastAPI

from pawgle.common.app import create_service_app
from pawgle.common.auth import CurrentUserId
from pawgle.common.config import ServiceSettings
from pawgle.common.events.auth import UserDeleted, UserRegistered, UserUpdated
from pawgle.common.revocation import RevocationList
from pawgle.common.testing.service import RunningService, running_service, service_settings, wait_for


def toy_app(settings: ServiceSettings) -> FastAPI:
    router = APIRouter()

    @router.get("/me/")
    def me(user_id: CurrentUserId) -> dict[str, int]:
        """Needs a valid access token."""
        return {"user_id": user_id}

    return create_service_app(settings, title="toy", routers=[router])


@pytest.fixture
def toy(database_url: str, nats_url: str, data_dir: Path) -> Iterator[RunningService]:
    settings = service_settings(
        ServiceSettings, database_url=database_url, nats_url=nats_url, data_dir=data_dir, service_name="toy"
    )
    with running_service(toy_app(settings), settings) as running:
        yield running


def status(toy: RunningService, headers: dict[str, str]) -> int:
    return toy.client.get("/me/", headers=headers).status_code


def test_a_deactivated_accounts_token_is_refused_and_a_later_one_after_reactivation_works(
    toy: RunningService,
) -> None:
    headers = toy.headers(11)
    assert status(toy, headers) == 200
    toy.publish(UserUpdated(user_id=11, display_name="x", email="x@example.org", email_verified=True, is_active=False))
    wait_for(lambda: status(toy, headers) == 401, timeout_s=2, message="token still accepted")
    assert status(toy, toy.headers(12)) == 200  # other users are untouched
    # Reactivated, the user signs in again: a token issued after the revocation works.
    later = {"Authorization": f"Bearer {toy.tokens.token(11, iat=int(time.time()) + 2)}"}
    assert status(toy, later) == 200


def test_a_deleted_accounts_cached_token_is_refused(toy: RunningService) -> None:
    headers = toy.headers(21)
    assert status(toy, headers) == 200  # verified once: now in the verifier's cache
    toy.publish(UserDeleted(user_id=21))
    wait_for(lambda: status(toy, headers) == 401, timeout_s=2, message="cached token still accepted")
    assert toy.client.get("/me/", headers=headers).json()["detail"] == "User is inactive or deleted."


def test_other_account_events_revoke_nothing() -> None:
    from pawgle.common.events.envelope import encode_event, new_event

    revocations = RevocationList()
    revocations.apply(encode_event(new_event(UserRegistered(user_id=1, display_name="a", email="a@b.c"), producer="t")))
    revocations.apply(
        encode_event(
            new_event(UserUpdated(user_id=2, display_name="b", email="b@c.d", email_verified=True), producer="t")
        )
    )
    revocations.apply(b"not an event")
    assert len(revocations) == 0


def test_old_revocations_are_forgotten_once_every_token_they_concern_has_expired() -> None:
    revocations = RevocationList(window_s=60)
    revocations.revoke(1, at=time.time() - 3600)
    for user_id in range(2, 300):
        revocations.revoke(user_id)
    assert not revocations.is_revoked(1, time.time() - 7200)  # forgotten: such a token expired long ago
    assert revocations.is_revoked(2, time.time() - 10)
