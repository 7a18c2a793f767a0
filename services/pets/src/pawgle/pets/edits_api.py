"""Thin routers of the fun page's saved pictures (E1, E2) and their detail routes (own only)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, File, Form, Response, UploadFile

from pawgle.common.auth import CurrentUserId
from pawgle.common.db import SessionDep, SessionRoute
from pawgle.common.photos import PhotoPipeline, StoredPhoto
from pawgle.common.schemas import EntityId
from pawgle.pets import edits
from pawgle.pets.routing import BlobsDep, PhotosDep, read_uploads, stored_then
from pawgle.pets.schemas import EditedImageRead

router = APIRouter(prefix="/api/auth", route_class=SessionRoute)
ImageFile = Annotated[UploadFile | None, File()]
Metadata = Annotated[str | None, Form()]


async def _store(photos: PhotoPipeline, file: UploadFile | None) -> list[StoredPhoto]:
    if file is None or not (file.filename or file.size):
        return []
    uploads = await read_uploads([file], photos)
    return await photos.accept(uploads, prefix=edits.EDIT_PREFIX, limit=1, per="picture", field="edited_image")


@router.get("/edited-pet-images/", response_model=list[EditedImageRead])
def list_edited_images(session: SessionDep, user_id: CurrentUserId, blobs: BlobsDep) -> list[EditedImageRead]:
    """The caller's saved pictures, newest first."""
    return edits.list_edits(session=session, owner_id=user_id, url=blobs.url)


@router.post("/edited-pet-images/", response_model=EditedImageRead, status_code=201)
async def create_edited_image(
    session: SessionDep,
    user_id: CurrentUserId,
    blobs: BlobsDep,
    photos: PhotosDep,
    edited_image: ImageFile = None,
    edit_metadata: Metadata = None,
) -> EditedImageRead:
    """Save an edited picture (multipart `edited_image`) with its `edit_metadata` (a JSON object)."""
    metadata = edits.parse_metadata(edit_metadata)
    if edited_image is None or not (edited_image.filename or edited_image.size):
        raise edits.MissingEditedImage()
    stored = await _store(photos, edited_image)
    return await stored_then(
        photos,
        stored,
        session,
        lambda: edits.create_edit(session=session, owner_id=user_id, photo=stored[0], metadata=metadata, url=blobs.url),
    )


@router.get("/edited-pet-images/{edit_id:int}/", response_model=EditedImageRead)
def get_edited_image(
    edit_id: EntityId, session: SessionDep, user_id: CurrentUserId, blobs: BlobsDep
) -> EditedImageRead:
    """One of the caller's saved pictures."""
    return edits.get_edit(session=session, owner_id=user_id, edit_id=edit_id, url=blobs.url)


@router.api_route("/edited-pet-images/{edit_id:int}/", methods=["PUT", "PATCH"], response_model=EditedImageRead)
async def update_edited_image(
    edit_id: EntityId,
    session: SessionDep,
    user_id: CurrentUserId,
    blobs: BlobsDep,
    photos: PhotosDep,
    edited_image: ImageFile = None,
    edit_metadata: Metadata = None,
) -> EditedImageRead:
    """Replace the metadata and/or the picture of one of the caller's saved pictures (multipart)."""
    metadata = edits.parse_metadata(edit_metadata) if edit_metadata is not None else None
    stored = await _store(photos, edited_image)
    return await stored_then(
        photos,
        stored,
        session,
        lambda: edits.update_edit(
            session=session,
            owner_id=user_id,
            edit_id=edit_id,
            metadata=metadata,
            photo=stored[0] if stored else None,
            url=blobs.url,
        ),
    )


@router.delete("/edited-pet-images/{edit_id:int}/", status_code=204)
def delete_edited_image(edit_id: EntityId, session: SessionDep, user_id: CurrentUserId) -> Response:
    """Delete one of the caller's saved pictures."""
    edits.delete_edit(session=session, owner_id=user_id, edit_id=edit_id)
    return Response(status_code=204)
