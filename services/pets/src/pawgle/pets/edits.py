"""Pictures saved from the web app's fun page (E1, E2 and their detail routes); no HTTP here."""

from __future__ import annotations

import json
from typing import Any

from sqlmodel import Session

from pawgle.common.db import save
from pawgle.common.errors import BadRequest, NotFound
from pawgle.common.photos import StoredPhoto, thumbnail_key_for
from pawgle.pets import repository
from pawgle.pets.models import EditedImage
from pawgle.pets.schemas import EditedImageRead

EDIT_PREFIX = "edits"
MAX_METADATA_CHARS = 1024 * 1024
UrlOf = Any


class MissingEditedImage(BadRequest):
    def __init__(self) -> None:
        super().__init__(
            "edited_image: This field is required; attach the edited picture.", edited_image=["This field is required."]
        )


def parse_metadata(raw: str | None) -> dict[str, Any]:
    """`edit_metadata` as an object: absent means {}, anything but a JSON object (or over 1 MB) is a 400."""
    if raw is None or not raw.strip():
        return {}
    if len(raw) > MAX_METADATA_CHARS:
        raise BadRequest("edit_metadata is larger than 1 MB; send less.", edit_metadata=["At most 1 MB."])
    try:
        value = json.loads(raw)
    except ValueError:
        raise BadRequest("edit_metadata must be a JSON object.", edit_metadata=["Must be a JSON object."]) from None
    if not isinstance(value, dict):
        raise BadRequest("edit_metadata must be a JSON object.", edit_metadata=["Must be a JSON object."])
    return value


def edit_read(row: EditedImage, *, username: str, url: UrlOf) -> EditedImageRead:
    assert row.id is not None
    try:
        metadata = json.loads(row.edit_metadata)
    except ValueError:
        metadata = {}
    return EditedImageRead(
        id=row.id,
        edit_metadata=metadata if isinstance(metadata, dict) else {},
        created_at=row.created_at,
        owner=username,
        edited_image_url=url(row.image_key),
    )


def username_of(session: Session, user_id: int) -> str:
    row = repository.owner_row(session, user_id)
    return "" if row is None or row.deleted else str(row.username)


def list_edits(*, session: Session, owner_id: int, url: UrlOf) -> list[EditedImageRead]:
    """The caller's saved pictures, newest first."""
    name = username_of(session, owner_id)
    return [edit_read(row, username=name, url=url) for row in repository.edited_images_of(session, owner_id)]


def create_edit(
    *, session: Session, owner_id: int, photo: StoredPhoto, metadata: dict[str, Any], url: UrlOf
) -> EditedImageRead:
    row = save(
        session,
        EditedImage(owner_id=owner_id, image_key=photo.key, edit_metadata=json.dumps(metadata, ensure_ascii=False)),
    )
    return edit_read(row, username=username_of(session, owner_id), url=url)


def _own(session: Session, owner_id: int, edit_id: int) -> EditedImage:
    row = repository.edited_image(session, owner_id=owner_id, edit_id=edit_id)
    if row is None:
        raise NotFound("Not found.")
    return row


def get_edit(*, session: Session, owner_id: int, edit_id: int, url: UrlOf) -> EditedImageRead:
    return edit_read(_own(session, owner_id, edit_id), username=username_of(session, owner_id), url=url)


def update_edit(
    *,
    session: Session,
    owner_id: int,
    edit_id: int,
    metadata: dict[str, Any] | None,
    photo: StoredPhoto | None,
    url: UrlOf,
) -> EditedImageRead:
    """Replace the metadata and/or the picture of one of the caller's saved pictures."""
    row = _own(session, owner_id, edit_id)
    if metadata is not None:
        row.edit_metadata = json.dumps(metadata, ensure_ascii=False)
    if photo is not None:
        repository.queue_blob_deletions(session, [row.image_key, thumbnail_key_for(row.image_key)])
        row.image_key = photo.key
    save(session, row)
    return edit_read(row, username=username_of(session, owner_id), url=url)


def delete_edit(*, session: Session, owner_id: int, edit_id: int) -> None:
    row = _own(session, owner_id, edit_id)
    repository.queue_blob_deletions(session, [row.image_key, thumbnail_key_for(row.image_key)])
    repository.delete_row(session, row)
