"""Thin routers of the pet routes: profile (P1), add (P2), edit (P3), delete (P4), QR (P6), poster, status."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, File, Form, Query, Request, Response, UploadFile
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile as StarletteUpload

from pawgle.common.auth import CurrentUserId
from pawgle.common.db import SessionDep, SessionRoute
from pawgle.common.errors import BadRequest, JSONResponseUTF8
from pawgle.common.fastpath import fast_read
from pawgle.common.photos import parse_existing_images
from pawgle.common.schemas import EntityId, SafeTextOrEmpty
from pawgle.common.throttle import Throttle
from pawgle.pets import service
from pawgle.pets.forms import pet_fields
from pawgle.pets.poster import lost_pet_poster_pdf
from pawgle.pets.qrtag import pet_tag_png
from pawgle.pets.routing import BlobsDep, PhotosDep, SettingsDep, in_thread, read_uploads, stored_then
from pawgle.pets.schemas import FeatureRetry, FeatureStatus, OwnerRead, PetAdded, PetRead, Profile

router = APIRouter(prefix="/api/auth", route_class=SessionRoute)
PET_WRITE = [Depends(Throttle("pet_write"))]
Files = Annotated[list[UploadFile] | None, File()]
Text = Annotated[str | None, Form()]
_OWNER_POLL_S = 0.1


@router.get("/profile/", response_model=Profile)
@fast_read(cached=True)  # a function of the database alone (the owner projection included)
async def profile(
    request: Request, session: SessionDep, user_id: CurrentUserId, settings: SettingsDep
) -> JSONResponseUTF8:
    """The caller and their pets, newest first."""
    url = request.app.state.photo_url

    def read() -> tuple[OwnerRead | None, list[dict[str, Any]]]:
        return (
            service.owner_of(session=session, user_id=user_id),
            service.owner_pets(session=session, owner_id=user_id, url=url),
        )

    owner, pets = await in_thread(session, read)
    # Right after a first sign-in the user.* event may still be on its way: wait a moment for it, then
    # answer with the id alone rather than fail (never anyone else's data).
    deadline = time.monotonic() + settings.owner_wait_s
    while owner is None and time.monotonic() < deadline:
        await asyncio.sleep(_OWNER_POLL_S)
        owner = await in_thread(session, lambda: service.owner_of(session=session, user_id=user_id))
    user = owner or OwnerRead(id=user_id, username="", email="")
    # Serialized here (the shape of Profile): validating 25 pets again on the way out would double the cost.
    return JSONResponseUTF8({"user": user.model_dump(), "pets": pets})


@router.post("/pets/add/", response_model=PetAdded, status_code=201, dependencies=PET_WRITE)
async def add_pet(
    session: SessionDep,
    user_id: CurrentUserId,
    blobs: BlobsDep,
    photos: PhotosDep,
    settings: SettingsDep,
    name: Text = None,
    category: Text = None,
    type: Text = None,  # noqa: A002 - the contract's field name
    breed: Text = None,
    isPublic: Text = None,  # noqa: N803 - the contract's field name
    additionalInfo: Text = None,  # noqa: N803
    existing_images: Text = None,
    images: Files = None,
    image: Files = None,
    file: Files = None,
    files: Files = None,
    pet_image: Files = None,
) -> PetAdded:
    """Register a pet with its photos (multipart; `images` repeatable), or restore the one just deleted (D6)."""
    values = {"name": name, "category": category, "type": type, "breed": breed}
    fields = pet_fields({**values, "isPublic": isPublic, "additionalInfo": additionalInfo}, partial=False)
    existing = parse_existing_images(existing_images, max_items=settings.max_photos_per_pet)
    chosen = next((group for group in (images, image, file, files, pet_image) if _real_files(group)), [])
    uploads = await read_uploads(_real_files(chosen), photos)
    # Photos are decoded and stored before the first query: no transaction waits on the decoder.
    stored = await photos.accept(
        uploads,
        prefix=service.PHOTO_PREFIX,
        limit=settings.max_photos_per_pet,
        per="pet",
        existing=len(existing),
        minimum=1,
        session=session,
    )
    written = await stored_then(
        photos,
        stored,
        session,
        lambda: service.add_pet(
            session=session,
            owner_id=user_id,
            fields=fields,
            existing=existing,
            new_photos=stored,
            store=blobs,
            settings=settings,
        ),
    )
    return PetAdded(pet=service.pet_read(written.pet, written.keys, blobs.url))


def _real_files(group: list[UploadFile] | None) -> list[UploadFile]:
    """The files actually chosen (a browser sends an empty part with no file name for an empty input)."""
    return [f for f in group or [] if f.filename or (f.size or 0) > 0]


_EDIT_FIELDS: dict[str, Any] = {
    "name": {"type": "string", "maxLength": 100},
    "type": {"type": "string", "maxLength": 100},
    "breed": {"type": "string", "maxLength": 100},
    "category": {"type": "string", "enum": ["Domestic", "Wild", "Poultry", "Livestock"]},
}
_EDIT_BODY = {
    "requestBody": {
        "content": {
            "application/json": {
                "schema": {
                    "type": "object",
                    "properties": {
                        **_EDIT_FIELDS,
                        "isPublic": {"type": "boolean"},
                        "additionalInfo": {"type": "object"},
                    },
                }
            },
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "properties": {
                        **_EDIT_FIELDS,
                        "isPublic": {"type": "string", "enum": ["true", "false"]},
                        "additionalInfo": {"type": "string", "description": "a JSON object"},
                        "image": {"type": "string", "format": "binary"},
                    },
                }
            },
        }
    }
}


@router.api_route(
    "/pets/{pet_id:int}/edit/",
    methods=["PUT", "PATCH"],
    response_model=PetRead,
    dependencies=PET_WRITE,
    openapi_extra=_EDIT_BODY,
)
async def edit_pet(
    pet_id: EntityId, request: Request, session: SessionDep, user_id: CurrentUserId, blobs: BlobsDep, photos: PhotosDep
) -> PetRead:
    """Change some of a pet's fields (JSON or multipart); a multipart `image` replaces its photos."""
    values, upload = await _edit_values(request, photos)
    fields = pet_fields(values, partial=True)
    stored = []
    if upload is not None:
        stored = await photos.accept([upload], prefix=service.PHOTO_PREFIX, limit=1, per="edit", field="image")
    written = await stored_then(
        photos,
        stored,
        session,
        lambda: service.edit_pet(
            session=session, owner_id=user_id, pet_id=pet_id, fields=fields, new_photo=stored[0] if stored else None
        ),
    )
    return service.pet_read(written.pet, written.keys, blobs.url)


async def _edit_values(request: Request, photos: PhotosDep) -> tuple[dict[str, Any], Any]:
    """The fields of a P3 request and its photo, from a JSON object or a multipart form."""
    content_type = request.headers.get("content-type", "")
    if content_type.startswith(("multipart/form-data", "application/x-www-form-urlencoded")):
        async with request.form(max_files=2, max_fields=50) as form:
            values = {key: value for key, value in form.items() if isinstance(value, str)}
            image = form.get("image")
            if isinstance(image, StarletteUpload) and (image.filename or image.size):
                (upload,) = await read_uploads([image], photos)
                return values, upload
            return values, None
    raw = await request.body()
    if not raw.strip():
        return {}, None
    try:
        body = json.loads(raw)
    except ValueError:
        raise BadRequest("The body must be a JSON object of the pet's fields, or a multipart form.") from None
    if not isinstance(body, dict):
        raise BadRequest("The body must be a JSON object of the pet's fields.")
    return body, None


@router.delete("/pets/{pet_id:int}/delete/", status_code=204, dependencies=PET_WRITE)
def delete_pet(pet_id: EntityId, session: SessionDep, user_id: CurrentUserId) -> Response:
    """Delete a pet (restorable for a grace period by adding it again, D6)."""
    service.delete_pet(session=session, owner_id=user_id, pet_id=pet_id)
    return Response(status_code=204)


@router.get(
    "/pets/{pet_id:int}/qr/",
    response_class=Response,
    responses={200: {"content": {"image/png": {}}, "description": "The QR tag as a PNG"}},
)
def pet_qr(pet_id: EntityId, request: Request, session: SessionDep, user_id: CurrentUserId) -> Response:
    """The pet's QR tag (PNG) leading to its public found page."""
    animal_id = service.tag_id_of(session=session, owner_id=user_id, pet_id=pet_id)
    png = pet_tag_png(request.app.state.settings.frontend_origin, animal_id)
    return Response(
        png,
        media_type="image/png",
        headers={
            "Content-Disposition": f'attachment; filename="pawgle-{animal_id}.png"',
            "Cache-Control": "private, max-age=3600",
        },
    )


def _key(key: str) -> str:
    return key


PosterText = Annotated[SafeTextOrEmpty, Query(max_length=300)]


@router.get(
    "/pets/{pet_id:int}/poster/",
    response_class=Response,
    responses={200: {"content": {"application/pdf": {}}, "description": "A one-page lost-pet poster"}},
)
async def pet_poster(
    pet_id: EntityId,
    session: SessionDep,
    user_id: CurrentUserId,
    blobs: BlobsDep,
    settings: SettingsDep,
    page_size: Literal["A4", "letter"] = "A4",
    note: PosterText = "",
    phone: Annotated[SafeTextOrEmpty, Query(max_length=40)] = "",
    address: PosterText = "",
) -> Response:
    """A printable lost-pet poster (PDF); the phone and address appear only when sent in this request."""
    pet = await in_thread(session, lambda: service.read_pet(session=session, owner_id=user_id, pet_id=pet_id, url=_key))

    def render() -> bytes:
        photo = blobs.get(pet.images[0]) if pet.images else None
        return lost_pet_poster_pdf(
            name=pet.name,
            breed=pet.breed,
            pet_type=pet.type,
            animal_id=pet.animal_id,
            frontend_origin=settings.frontend_origin,
            note=note,
            photo=photo,
            phone=phone or None,
            address=address or None,
            page_size=page_size,
        )

    pdf = await run_in_threadpool(render)
    return Response(
        pdf,
        media_type="application/pdf",
        headers={
            "Content-Disposition": f'attachment; filename="pawgle-poster-{pet.animal_id}.pdf"',
            "Cache-Control": "private, no-store",
        },
    )


@router.get("/pets/{pet_id:int}/feature-status/", response_model=FeatureStatus)
def feature_status(pet_id: EntityId, session: SessionDep, user_id: CurrentUserId) -> FeatureStatus:
    """Where the pet's photo embedding stands (owner only)."""
    return FeatureStatus(feature_status=service.feature_status(session=session, owner_id=user_id, pet_id=pet_id))


@router.post("/pets/{pet_id:int}/retry-features/", response_model=FeatureRetry, dependencies=PET_WRITE)
def retry_features(pet_id: EntityId, session: SessionDep, user_id: CurrentUserId) -> FeatureRetry:
    """Queue a failed embedding again (owner only, only when it failed)."""
    pet = service.retry_features(session=session, owner_id=user_id, pet_id=pet_id)
    return FeatureRetry(feature_status=pet.feature_status, detail="Feature extraction restarted.")
