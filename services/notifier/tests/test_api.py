"""The HTTP contract of alerts (R1-R4), notifications (N1-N3) and inbound replies (X1)."""

from __future__ import annotations

from typing import Any

import pytest
from pawgle_notifier_test_factories import create_contact, create_notification, next_id
from sqlmodel import select

from pawgle.common.bus.tables import OutboxEvent
from pawgle.notifier import reactions
from pawgle.notifier.models import AlertAreaCell, Notification

ALERTS = "/api/auth/alerts/"
NOTIFICATIONS = "/api/auth/notifications/"
FORWARD = "/api/auth/email/forward-reply/"
FORWARD_SECRET = "forward-secret-for-tests-0123456789"


def new_alert(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"label": "Home", "center_lat": 48.85, "center_lon": 2.35, "radius_km": 5}
    body["status_filter"] = ""
    body.update(overrides)
    return body


@pytest.mark.parametrize("authorization", [None, "Bearer null", "Bearer undefined", "Bearer not.a.jwt", "Basic abc"])
def test_alerts_without_a_valid_token_are_401_json(api, authorization) -> None:
    headers = {"Authorization": authorization} if authorization else {}
    response = api.client.get(ALERTS, headers=headers)
    assert response.status_code == 401
    assert response.json()["detail"]
    assert response.headers["www-authenticate"].startswith("Bearer")


def test_an_expired_token_is_401(api) -> None:
    token = api.tokens.token(next_id(), expires_in_s=-120)
    response = api.client.get(NOTIFICATIONS, headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 401
    assert response.json()["detail"] == "Token is expired"


def test_create_alert_returns_201_with_radius_as_a_json_number(api) -> None:
    user = next_id()
    response = api.client.post(ALERTS, json=new_alert(radius_km=5), headers=api.tokens.headers(user))
    assert response.status_code == 201, response.text
    body = response.json()
    assert isinstance(body["radius_km"], float | int)
    assert body["radius_km"] == 5
    assert set(body) == {
        "id",
        "label",
        "center_lat",
        "center_lon",
        "radius_km",
        "status_filter",
        "is_active",
        "created_at",
    }
    assert body["is_active"] is True
    assert body["status_filter"] == ""
    assert body["created_at"].endswith("Z")
    assert len(body["created_at"]) == len("2025-04-01T09:15:02.123456Z")


def test_creating_an_alert_indexes_it_in_grid_cells(api) -> None:
    response = api.client.post(ALERTS, json=new_alert(radius_km=100), headers=api.tokens.headers(next_id()))
    with api.session() as session:
        cells = session.exec(select(AlertAreaCell).where(AlertAreaCell.alert_id == response.json()["id"])).all()
    assert len(cells) > 4


def test_alerts_are_listed_newest_first_and_only_the_callers(api) -> None:
    user, other = next_id(), next_id()
    first = api.client.post(ALERTS, json=new_alert(label="first"), headers=api.tokens.headers(user)).json()
    second = api.client.post(ALERTS, json=new_alert(label="second"), headers=api.tokens.headers(user)).json()
    api.client.post(ALERTS, json=new_alert(label="theirs"), headers=api.tokens.headers(other))
    listed = api.client.get(ALERTS, headers=api.tokens.headers(user)).json()
    assert [a["id"] for a in listed] == [second["id"], first["id"]]


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("center_lat", 90.5),
        ("center_lat", -91),
        ("center_lon", 180.01),
        ("center_lon", "east"),
        ("radius_km", 0),
        ("radius_km", -3),
        ("radius_km", 100.5),
        ("label", "x" * 65),
        ("label", "<script>"),
        ("label", 'say "hi"'),
        ("status_filter", "resolved"),
    ],
)
def test_invalid_alert_fields_are_400_naming_the_field(api, field, value) -> None:
    response = api.client.post(ALERTS, json=new_alert(**{field: value}), headers=api.tokens.headers(next_id()))
    assert response.status_code == 400
    assert field in response.json()["detail"]


def test_a_missing_body_is_400_not_500(api) -> None:
    response = api.client.post(ALERTS, headers=api.tokens.headers(next_id()))
    assert response.status_code == 400
    assert response.json()["detail"]


def test_an_eleventh_alert_is_refused_with_a_detail(api) -> None:
    headers = api.tokens.headers(next_id())
    for i in range(10):
        assert api.client.post(ALERTS, json=new_alert(label=f"a{i}"), headers=headers).status_code == 201
    response = api.client.post(ALERTS, json=new_alert(), headers=headers)
    assert response.status_code == 400
    assert response.json()["detail"] == "You can have at most 10 alert subscriptions."


def test_get_patch_put_and_delete_an_own_alert(api) -> None:
    headers = api.tokens.headers(next_id())
    alert = api.client.post(ALERTS, json=new_alert(), headers=headers).json()
    url = f"{ALERTS}{alert['id']}/"
    assert api.client.get(url, headers=headers).json() == alert
    patched = api.client.patch(url, json={"is_active": False, "radius_km": 12.5}, headers=headers).json()
    assert patched["is_active"] is False
    assert patched["radius_km"] == 12.5
    assert patched["label"] == "Home"
    put = api.client.put(url, json={"status_filter": "found", "label": ""}, headers=headers).json()
    assert put["status_filter"] == "found"
    assert put["label"] == ""
    assert put["radius_km"] == 12.5
    response = api.client.delete(url, headers=headers)
    assert response.status_code == 204
    assert response.content == b""
    assert api.client.get(url, headers=headers).status_code == 404


def test_patch_validates_like_create(api) -> None:
    headers = api.tokens.headers(next_id())
    alert = api.client.post(ALERTS, json=new_alert(), headers=headers).json()
    response = api.client.patch(f"{ALERTS}{alert['id']}/", json={"radius_km": 1000}, headers=headers)
    assert response.status_code == 400
    assert "radius_km" in response.json()["detail"]


@pytest.mark.parametrize("method", ["get", "patch", "put", "delete"])
def test_someone_elses_alert_is_404(api, method) -> None:
    alert = api.client.post(ALERTS, json=new_alert(), headers=api.tokens.headers(next_id())).json()
    kwargs: dict[str, Any] = {"json": {"label": "mine now"}} if method in ("patch", "put") else {}
    response = getattr(api.client, method)(f"{ALERTS}{alert['id']}/", headers=api.tokens.headers(next_id()), **kwargs)
    assert response.status_code == 404
    assert response.json()["detail"] == "Not found."


def test_a_non_numeric_alert_id_is_a_json_404(api) -> None:
    response = api.client.get(f"{ALERTS}abc/", headers=api.tokens.headers(next_id()))
    assert response.status_code == 404
    assert response.json()["detail"]


def test_notifications_list_the_newest_50_with_an_uncapped_unread_count(api) -> None:
    user = next_id()
    with api.session() as session:
        rows = [create_notification(session, user, description=f"n{i}") for i in range(60)]
        create_notification(session, user, is_read=True)
        create_notification(session, next_id())
        session.commit()
    body = api.client.get(NOTIFICATIONS, headers=api.tokens.headers(user)).json()
    assert body["unread_count"] == 60
    assert len(body["notifications"]) == 50
    assert body["notifications"][0]["is_read"] is True  # the newest one
    assert body["notifications"][1]["description"] == "n59"
    assert set(body["notifications"][1]) == {
        "id",
        "verb",
        "description",
        "target_id",
        "target_name",
        "is_read",
        "created_at",
    }
    assert rows[0].id not in {n["id"] for n in body["notifications"]}


@pytest.mark.parametrize("method", ["post", "put"])
def test_mark_one_notification_read_without_a_body(api, method) -> None:
    user = next_id()
    with api.session() as session:
        row = create_notification(session, user)
        create_notification(session, user)
        session.commit()
    response = getattr(api.client, method)(f"{NOTIFICATIONS}{row.id}/read/", headers=api.tokens.headers(user))
    assert response.status_code == 200
    assert response.json() == {"detail": "Marked as read"}
    assert api.client.get(NOTIFICATIONS, headers=api.tokens.headers(user)).json()["unread_count"] == 1


def test_someone_elses_notification_is_404(api) -> None:
    with api.session() as session:
        row = create_notification(session, next_id())
        session.commit()
    response = api.client.post(f"{NOTIFICATIONS}{row.id}/read/", headers=api.tokens.headers(next_id()))
    assert response.status_code == 404
    assert response.json()["detail"] == "Notification not found"
    with api.session() as session:
        assert session.get(Notification, row.id).is_read is False


@pytest.mark.parametrize("method", ["post", "put"])
def test_read_all_marks_only_the_callers_notifications(api, method) -> None:
    user, other = next_id(), next_id()
    with api.session() as session:
        for _ in range(3):
            create_notification(session, user)
        create_notification(session, other)
        session.commit()
    response = getattr(api.client, method)(f"{NOTIFICATIONS}read-all/", headers=api.tokens.headers(user))
    assert response.json() == {"detail": "All notifications marked as read"}
    assert api.client.get(NOTIFICATIONS, headers=api.tokens.headers(user)).json()["unread_count"] == 0
    assert api.client.get(NOTIFICATIONS, headers=api.tokens.headers(other)).json()["unread_count"] == 1


# --- X1 -------------------------------------------------------------------------------------------


def reply_address(api, *, user_id: int, conversation_id: str) -> str:
    with api.session() as session:
        address = reactions.issue_reply_address(
            session, settings=api.settings, conversation_id=conversation_id, user_id=user_id
        )
        create_contact(session, user_id)
        session.commit()
    return address


def inbound(to: str, sender: str, text: str = "Yes, that is my dog!\n\nOn Mon, PawGle wrote:\n> old") -> dict:
    return {"from": f"Someone <{sender}>", "to": [to], "subject": "Re: new message", "text": text, "html": ""}


@pytest.mark.parametrize("secret", [None, "", "wrong"])
def test_forward_reply_without_the_secret_is_401(api, secret) -> None:
    headers = {"X-Forward-Secret": secret} if secret is not None else {}
    response = api.client.post(FORWARD, json={}, headers=headers)
    assert response.status_code == 401
    assert response.json()["success"] is False
    assert response.json()["error"] == "Unauthorized"


def test_forward_reply_posts_the_new_text_into_the_chat_as_the_token_holder(api) -> None:
    user, conversation = next_id(), "5b1e0c1e-2f7c-4d5e-9a51-9a3c3b1f0a11"
    to = reply_address(api, user_id=user, conversation_id=conversation)
    response = api.client.post(
        FORWARD, json=inbound(to, f"user{user}@example.org"), headers={"X-Forward-Secret": api.settings.forward_secret}
    )
    assert response.status_code == 200, response.text
    assert response.json() == {"success": True, "message": "Forwarded"}
    with api.session() as session:
        events = session.exec(select(OutboxEvent).where(OutboxEvent.subject == "message.email_reply_received")).all()
    assert len(events) == 1
    assert '"body":"Yes, that is my dog!"' in events[0].payload
    assert f'"sender_id":{user}' in events[0].payload
    assert conversation in events[0].payload


@pytest.mark.parametrize("case", ["spoofed sender", "unknown token", "empty text"])
def test_forward_reply_refuses_what_it_cannot_attribute(api, case) -> None:
    user = next_id()
    to = reply_address(api, user_id=user, conversation_id="5b1e0c1e-2f7c-4d5e-9a51-9a3c3b1f0a12")
    sender, text = f"user{user}@example.org", "hello"
    if case == "spoofed sender":
        sender = "attacker@example.org"
    elif case == "unknown token":
        to = "reply+AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA@reply.pawgle.test"
    else:
        text = "> only a quote"
    response = api.client.post(FORWARD, json=inbound(to, sender, text), headers={"X-Forward-Secret": FORWARD_SECRET})
    assert response.status_code == 400
    assert response.json()["success"] is False
    assert response.json()["error"]
