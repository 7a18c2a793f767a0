"""Input the notifier refuses or bounds: ids out of range, loose JSON types, unsafe labels, long lists.

Also: an alert's or a notification's id is never handed out again after a delete.
"""

from __future__ import annotations

from typing import Any

import pytest
from pawgle_notifier_test_factories import create_contact, create_notification, next_id
from sqlalchemy import event
from sqlmodel import select

from pawgle.common.bus.tables import OutboxEvent
from pawgle.notifier import reactions
from pawgle.notifier.models import Notification
from pawgle.notifier.schemas import MAX_RECIPIENTS

ALERTS = "/api/auth/alerts/"
NOTIFICATIONS = "/api/auth/notifications/"
FORWARD = "/api/auth/email/forward-reply/"
HUGE_IDS = ["9223372036854775808", "18446744073709551616", "99999999999999999999999999", "0"]


def alert_body(**overrides: Any) -> dict[str, Any]:
    return {"label": "Home", "center_lat": 48.85, "center_lon": 2.35, "radius_km": 5, **overrides}


def test_a_deleted_alerts_id_is_never_handed_out_again(api) -> None:
    headers = api.tokens.headers(next_id())
    first = api.client.post(ALERTS, json=alert_body(), headers=headers).json()["id"]
    newest = api.client.post(ALERTS, json=alert_body(label="Work"), headers=headers).json()["id"]
    assert api.client.delete(f"{ALERTS}{newest}/", headers=headers).status_code == 204
    again = api.client.post(ALERTS, json=alert_body(label="Park"), headers=headers).json()["id"]
    assert again > newest > first


def test_a_deleted_notifications_id_is_never_handed_out_again(api) -> None:
    user = next_id()
    with api.session() as session:
        newest = create_notification(session, user_id=user).id
        session.commit()
    with api.session() as session:
        session.delete(session.get(Notification, newest))
        session.commit()
    with api.session() as session:
        again = create_notification(session, user_id=user).id
        session.commit()
    assert again is not None
    assert newest is not None
    assert again > newest


@pytest.mark.parametrize("alert_id", HUGE_IDS)
@pytest.mark.parametrize("method", ["GET", "PATCH", "PUT", "DELETE"])
def test_an_alert_id_out_of_range_is_the_404_of_an_unknown_id(api, alert_id: str, method: str) -> None:
    headers = api.tokens.headers(next_id())
    unknown = api.client.request(method, f"{ALERTS}123456789/", json={"label": "x"}, headers=headers)
    response = api.client.request(method, f"{ALERTS}{alert_id}/", json={"label": "x"}, headers=headers)
    assert response.status_code == 404
    assert response.json() == unknown.json()


@pytest.mark.parametrize("notification_id", HUGE_IDS)
def test_a_notification_id_out_of_range_is_the_404_of_an_unknown_id(api, notification_id: str) -> None:
    headers = api.tokens.headers(next_id())
    unknown = api.client.post(f"{NOTIFICATIONS}123456789/read/", headers=headers)
    response = api.client.post(f"{NOTIFICATIONS}{notification_id}/read/", headers=headers)
    assert response.status_code == 404
    assert response.json() == unknown.json() == {**response.json(), "detail": "Notification not found"}


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("center_lat", True),
        ("center_lon", False),
        ("radius_km", True),
        ("center_lat", "48.85"),
        ("radius_km", "5"),
        ("label", 5),
        ("center_lat", None),
    ],
)
def test_json_types_are_strict_and_the_400_names_the_field(api, field: str, value: Any) -> None:
    response = api.client.post(ALERTS, json=alert_body(**{field: value}), headers=api.tokens.headers(next_id()))
    assert response.status_code == 400, response.text
    body = response.json()
    assert field in body
    assert field in body["detail"]
    assert body["detail"] == body["error"] == body["message"]


@pytest.mark.parametrize("value", ["yes", 1, "true", 0])
def test_is_active_must_be_a_json_boolean(api, value: Any) -> None:
    headers = api.tokens.headers(next_id())
    alert = api.client.post(ALERTS, json=alert_body(), headers=headers).json()
    response = api.client.patch(f"{ALERTS}{alert['id']}/", json={"is_active": value}, headers=headers)
    assert response.status_code == 400
    assert "is_active" in response.json()


def test_an_integer_is_a_json_number(api) -> None:
    body = alert_body(center_lat=48, center_lon=2, radius_km=5)
    response = api.client.post(ALERTS, json=body, headers=api.tokens.headers(next_id()))
    assert response.status_code == 201, response.text
    assert response.json()["center_lat"] == 48


@pytest.mark.parametrize(
    "label",
    ["a\u0085b", "a\u009bb", "\u202eevil", "a\u2066b\u2069", "a\u200bb", "\ufeffx", "a\x00b", "a\u2028b", "<b>"],
)
def test_labels_with_control_or_bidi_characters_are_refused(api, label: str) -> None:
    response = api.client.post(ALERTS, json=alert_body(label=label), headers=api.tokens.headers(next_id()))
    assert response.status_code == 400
    assert "label" in response.json()


@pytest.mark.parametrize("label", ["Dwarf Campbell\u2019s", "European (Wild)", "Zoë's café", "家の近く", "👨\u200d👧"])
def test_ordinary_labels_pass(api, label: str) -> None:
    response = api.client.post(ALERTS, json=alert_body(label=label), headers=api.tokens.headers(next_id()))
    assert response.status_code == 201, response.text
    assert response.json()["label"] == label


def test_the_recipient_list_of_an_inbound_reply_is_capped(api) -> None:
    body = {"from": "a@example.org", "to": [f"x{i}@example.org" for i in range(MAX_RECIPIENTS + 1)], "text": "hi"}
    response = api.client.post(FORWARD, json=body, headers={"X-Forward-Secret": api.settings.forward_secret})
    assert response.status_code == 400
    assert "to" in response.json()


def test_the_recipients_of_an_inbound_reply_are_looked_up_in_one_query(api) -> None:
    user, conversation = next_id(), "5b1e0c1e-2f7c-4d5e-9a51-9a3c3b1f0a13"
    with api.session() as session:
        address = reactions.issue_reply_address(
            session, settings=api.settings, conversation_id=conversation, user_id=user
        )
        create_contact(session, user)
        session.commit()
    decoys = [f"reply+{'A' * 20}{i:04d}@reply.pawgle.test" for i in range(MAX_RECIPIENTS - 1)]
    body = {"from": f"user{user}@example.org", "to": [*decoys, address], "text": "Found him!"}
    statements: list[str] = []

    def count(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if "notifier_reply_tokens" in statement:
            statements.append(statement)

    event.listen(api.engine, "before_cursor_execute", count)
    try:
        response = api.client.post(FORWARD, json=body, headers={"X-Forward-Secret": api.settings.forward_secret})
    finally:
        event.remove(api.engine, "before_cursor_execute", count)
    assert response.status_code == 200, response.text
    assert len(statements) == 1
    with api.session() as session:
        sent = session.exec(select(OutboxEvent).where(OutboxEvent.subject == "message.email_reply_received")).all()
    assert len(sent) == 1
