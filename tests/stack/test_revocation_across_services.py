"""A deleted account's access token is refused by every built service within a second, through the real stack."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from pawgle.common.testing.stack import Stack, running_stack, sign_up

ALERTS = "/api/auth/alerts/"
ALERT = {"label": "Home", "center_lat": 48.85, "center_lon": 2.35, "radius_km": 5, "status_filter": ""}


@pytest.fixture
def stack(nats_url: str, tmp_path: Path) -> Iterator[Stack]:
    with running_stack(nats_url=nats_url, data_dir=tmp_path) as running:
        yield running


def refused_everywhere(stack: Stack, headers: dict[str, str]) -> dict[str, int]:
    """What each service answers the token now: a read and a write in notifier, auth's protected route."""
    return {
        "notifier read": httpx.get(stack.url("notifier", ALERTS), headers=headers).status_code,
        "notifier write": httpx.post(stack.url("notifier", ALERTS), json=ALERT, headers=headers).status_code,
        "auth": httpx.delete(stack.url("auth", "/api/auth/account/"), headers=headers).status_code,
    }


def test_a_deleted_accounts_token_is_refused_by_every_service_within_a_second(stack: Stack) -> None:
    headers = {"Authorization": f"Bearer {sign_up(stack)}"}
    bystander = {"Authorization": f"Bearer {sign_up(stack)}"}
    assert httpx.post(stack.url("notifier", ALERTS), json=ALERT, headers=headers).status_code == 201

    assert httpx.delete(stack.url("auth", "/api/auth/account/"), headers=headers).status_code == 204
    deleted_at = time.monotonic()
    answers: dict[str, int] = {}
    while time.monotonic() - deleted_at < 1.0:
        answers = refused_everywhere(stack, headers)
        if set(answers.values()) == {401}:
            break
        time.sleep(0.02)
    assert answers == {"notifier read": 401, "notifier write": 401, "auth": 401}, "still accepted after 1 s"
    body = httpx.get(stack.url("notifier", ALERTS), headers=headers).json()
    assert body["detail"] == "User is inactive or deleted."
    # Another account's token is untouched.
    assert httpx.get(stack.url("notifier", ALERTS), headers=bystander).status_code == 200


def test_a_service_started_after_the_deletion_refuses_the_token_too(
    stack: Stack, nats_url: str, tmp_path: Path
) -> None:
    access = sign_up(stack)
    headers = {"Authorization": f"Bearer {access}"}
    assert httpx.delete(stack.url("auth", "/api/auth/account/"), headers=headers).status_code == 204
    time.sleep(0.5)  # the event is on the bus; a notifier replica that starts now replays it
    late = tmp_path / "late"
    overrides = {"notifier": {"jwks_url": stack.url("auth", "/api/auth/jwks/")}}
    with running_stack(nats_url=nats_url, data_dir=late, services=("notifier",), overrides=overrides) as replica:
        assert httpx.get(replica.url("notifier", ALERTS), headers=headers).status_code == 401
