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
