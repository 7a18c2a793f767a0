"""Thin routers of the map: lists (L1-L4), filing (L5), status (L6), renewal, and the public /lost list (X2)."""

from __future__ import annotations

import json
from typing import Annotated, Any
from urllib.parse import parse_qs

from fastapi import APIRouter, Depends, File, Form, Query, Request, Response, UploadFile
from sqlmodel import Session

from pawgle.common.auth import CurrentUserId
from pawgle.common.db import SessionDep, SessionRoute
from pawgle.common.fastpath import fast_read
from pawgle.common.photos import PhotoPipeline, PhotoUpload, StoredPhoto, read_upload
from pawgle.common.schemas import EntityId
from pawgle.common.throttle import Throttle
from pawgle.reports import maplists, service, views
from pawgle.reports.config import Settings
from pawgle.reports.forms import report_form
from pawgle.reports.listcache import ListCache
from pawgle.reports.query_options import map_query
from pawgle.reports.repository import ACTIVE
from pawgle.reports.routing import (
    BlobsDep,
    ListCacheDep,
    PhotosDep,
    SettingsDep,
    bytes_response,
    in_thread,
    json_response,
)

router = APIRouter(prefix="/api/auth", route_class=SessionRoute)
public_router = APIRouter(prefix="/api", route_class=SessionRoute)
REPORT_PET = [Depends(Throttle("report_pet"))]
Text = Annotated[str | None, Form()]
Option = Annotated[str | None, Query(max_length=2000)]
LIST_OPTIONS = "Optional: bbox=west,south,east,north, status, species, limit, cursor (next page: X-Next-Cursor header)."


def _map_list(
    session: Session,
    user_id: int,
    blobs: Any,
    settings: Settings,
    statuses: tuple[str, ...],
    options: dict[str, str | None],
    cache: ListCache,
) -> Response:
    query = map_query(statuses=statuses, cap=settings.list_cap, **options)
    result = maplists.map_list(session=session, query=query, user_id=user_id, cache=cache, url=blobs.url)
    headers = {"X-Next-Cursor": result.next_cursor} if result.next_cursor else None
    return bytes_response(result.body, headers=headers)


@router.get("/pets/locations/", description=LIST_OPTIONS)
@fast_read(cached=True)  # a function of the database alone: see pawgle.common.fastpath
def all_locations(
    session: SessionDep,
    user_id: CurrentUserId,
    blobs: BlobsDep,
    settings: SettingsDep,
    cache: ListCacheDep,
    bbox: Option = None,
    status: Option = None,
    species: Option = None,
    limit: Option = None,
    cursor: Option = None,
) -> Response:
    """L1: lost and found reports on the map, newest first (a bare array)."""
    options = {"bbox": bbox, "status": status, "species": species, "limit": limit, "cursor": cursor}
    return _map_list(session, user_id, blobs, settings, ACTIVE, options, cache)


@router.get("/pets/lost/locations/", description=LIST_OPTIONS)
@fast_read(cached=True)
def lost_locations(
    session: SessionDep,
    user_id: CurrentUserId,
    blobs: BlobsDep,
    settings: SettingsDep,
    cache: ListCacheDep,
    bbox: Option = None,
    species: Option = None,
    limit: Option = None,
    cursor: Option = None,
) -> Response:
    """L2: lost reports."""
    options = {"bbox": bbox, "status": None, "species": species, "limit": limit, "cursor": cursor}
    return _map_list(session, user_id, blobs, settings, ("lost",), options, cache)


@router.get("/pets/found/locations/", description=LIST_OPTIONS)
@fast_read(cached=True)
def found_locations(
    session: SessionDep,
    user_id: CurrentUserId,
    blobs: BlobsDep,
    settings: SettingsDep,
    cache: ListCacheDep,
    bbox: Option = None,
    species: Option = None,
    limit: Option = None,
    cursor: Option = None,
) -> Response:
    """L3: found reports."""
    options = {"bbox": bbox, "status": None, "species": species, "limit": limit, "cursor": cursor}
    return _map_list(session, user_id, blobs, settings, ("found",), options, cache)


@router.get("/user/pet-locations/")
@fast_read(cached=True)
def my_locations(session: SessionDep, user_id: CurrentUserId, blobs: BlobsDep, settings: SettingsDep) -> Response:
    """L4: reports the caller filed or that are linked to their pets, any status; contact fields on their own."""
    rows = service.my_reports(session=session, user_id=user_id, settings=settings)
    viewer = service.viewer_of(session=session, user_id=user_id)
    return json_response([views.location(r, viewer=viewer, url=blobs.url, with_contact=True) for r in rows])


async def _one_photo(image: list[UploadFile] | None, photos: PhotoPipeline, session: Session) -> StoredPhoto | None:
    chosen = [f for f in image or [] if f.filename or (f.size or 0) > 0]
    uploads = [PhotoUpload(await read_upload(f, rules=photos.rules, label="image"), f.filename) for f in chosen]
    # Verified, re-encoded and stored before the first query: no transaction waits on the decoder.
    stored = await photos.accept(
        uploads, prefix=service.PHOTO_PREFIX, limit=1, per="report", field="image", session=session
    )
    return stored[0] if stored else None


@router.post("/pets/report/", status_code=201, dependencies=REPORT_PET)
async def file_report(
    session: SessionDep,
    user_id: CurrentUserId,
    blobs: BlobsDep,
    photos: PhotosDep,
    settings: SettingsDep,
    animal_name: Text = None,
    category: Text = None,
    type: Text = None,  # noqa: A002 - the contract's field name
    breed: Text = None,
    status: Text = None,
    description: Text = None,
    latitude: Text = None,
    longitude: Text = None,
    contact_name: Text = None,
    contact_phone: Text = None,
    contact_email: Text = None,
    last_seen_date: Text = None,
    last_seen_time: Text = None,
    register_pet: Text = None,
    pet_id: Text = None,
    image: Annotated[list[UploadFile] | None, File()] = None,
) -> Response:
    """L5: file a lost or found report (multipart, at most one photo in `image`)."""
    values = {
        "animal_name": animal_name,
        "category": category,
        "type": type,
        "breed": breed,
        "status": status,
        "description": description,
        "latitude": latitude,
        "longitude": longitude,
        "contact_name": contact_name,
        "contact_phone": contact_phone,
        "contact_email": contact_email,
        "last_seen_date": last_seen_date,
        "last_seen_time": last_seen_time,
        "register_pet": register_pet,
        "pet_id": pet_id,
    }
    form = report_form(values, max_description=settings.max_description_chars)
    photo = await _one_photo(image, photos, session)

    def write() -> dict[str, Any]:
        report = service.file_report(session=session, reporter_id=user_id, form=form, photo=photo, settings=settings)
        return views.location(report, viewer=views.Viewer(user_id), url=blobs.url)

    try:
        body = await in_thread(session, write)
    except BaseException:
        if photo is not None:
            await photos.discard([photo])
        raise
    return json_response(body, status_code=201)


async def _status_value(request: Request) -> object:
    """`status` from a JSON body (the web app) or a form body; anything unreadable is no status."""
    raw = await request.body()
    if len(raw) > 10_000:
        return None
    content_type = request.headers.get("content-type", "")
    try:
        if "application/x-www-form-urlencoded" in content_type:
            return parse_qs(raw.decode()).get("status", [None])[0]
        document = json.loads(raw) if raw else None
    except (ValueError, UnicodeDecodeError):
        return None
    return document.get("status") if isinstance(document, dict) else None


@router.api_route("/pets/locations/{location_id:int}/status/", methods=["POST", "PUT"])
async def change_status(
    location_id: EntityId, request: Request, session: SessionDep, user_id: CurrentUserId, blobs: BlobsDep
) -> Response:
    """L6: the reporter or the linked pet's owner sets lost, found or resolved (POST; PUT is an alias)."""
    status = await _status_value(request)
    settings: Settings = request.app.state.settings

    def write() -> dict[str, Any]:
        report = service.change_status(
            session=session, user_id=user_id, report_id=location_id, status=status, settings=settings
        )
        viewer = service.viewer_of(session=session, user_id=user_id)
        return views.location(report, viewer=viewer, url=blobs.url)

    return json_response(await in_thread(session, write))


@router.api_route("/pets/locations/{location_id:int}/renew/", methods=["POST", "PUT"])
def renew(
    location_id: EntityId, session: SessionDep, user_id: CurrentUserId, blobs: BlobsDep, settings: SettingsDep
) -> Response:
    """Keep one of the caller's reports on the map for another full lifetime (new; reporter only)."""
    report = service.renew(session=session, user_id=user_id, report_id=location_id, settings=settings)
    return json_response(views.location(report, viewer=views.Viewer(user_id), url=blobs.url))


@public_router.get("/lost_pets/")
@fast_read(cached=True)
def lost_pets(session: SessionDep, settings: SettingsDep, cache: ListCacheDep) -> Response:
    """X2: the orphan /lost page's list, public: lost reports at their public position only."""
    return bytes_response(maplists.lost_pets(session=session, limit=settings.list_cap, cache=cache))
