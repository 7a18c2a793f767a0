"""GET notifications builds its body from rows without a model per row: it must be byte-identical to the model's."""

from __future__ import annotations

from datetime import datetime
from types import SimpleNamespace

from pawgle.common.errors import JSONResponseUTF8
from pawgle.notifier.api import _notification
from pawgle.notifier.schemas import NotificationList, NotificationRead


def test_the_row_shape_is_the_models_json() -> None:
    rows = [
        SimpleNamespace(
            id=7,
            verb="A lost pet was reported near you",
            description="Rex, a Beagle ‘Dwarf’ 🐶, 3 km away",
            target_id=None if n else 12,
            target_name=None if n else "Rex",
            is_read=bool(n),
            created_at=datetime(2025, 1, 2, 3, 4, 5, n * 1001),
        )
        for n in range(3)
    ]
    model = NotificationList(notifications=[NotificationRead.model_validate(r) for r in rows], unread_count=2)
    fast = JSONResponseUTF8({"notifications": [_notification(r) for r in rows], "unread_count": 2})
    assert fast.body == model.model_dump_json().encode()


def test_the_alert_row_shape_is_the_models_json() -> None:
    from pydantic import TypeAdapter

    from pawgle.notifier.api import _alert_object
    from pawgle.notifier.schemas import AlertRead

    coordinates = [(48.85, 2.35, 5.0), (-33.868820, 151.209290, 0.1), (1e-7, -179.999999, 100), (0.0, 0, 12.345678901)]
    rows = [
        SimpleNamespace(
            id=n + 1,
            label=["", "Home ‘Zoë’", "a" * 64, "🐶 park"][n],
            center_lat=lat,
            center_lon=lon,
            radius_km=radius,
            status_filter=["", "lost", "found", ""][n],
            is_active=n != 2,
            created_at=datetime(2025, 6, 7, 8, 9, 10, n * 123457),
        )
        for n, (lat, lon, radius) in enumerate(coordinates)
    ]
    model = TypeAdapter(list[AlertRead]).dump_json([AlertRead.model_validate(r) for r in rows])
    assert JSONResponseUTF8([_alert_object(r) for r in rows]).body == model
