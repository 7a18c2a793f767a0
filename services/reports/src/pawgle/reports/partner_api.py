"""Partner feeds over HTTP: JSON push and CSV upload of found animals, authenticated by X-Partner-Key."""

from __future__ import annotations

import json
from typing import Annotated, Any

from fastapi import APIRouter, Header, Request, Response
from sqlmodel import Session

from pawgle.common.db import SessionDep, SessionRoute, read_only
from pawgle.common.errors import BadRequest
from pawgle.common.photos import StoredPhoto
from pawgle.reports import partners, service
from pawgle.reports.metrics import PARTNER_ROWS
from pawgle.reports.partner_photos import allowed_hosts, fetch_and_store
from pawgle.reports.routing import PhotosDep, SettingsDep, in_thread, json_response

router = APIRouter(prefix="/api/partners", route_class=SessionRoute)
PartnerKey = Annotated[str | None, Header(alias="X-Partner-Key")]
MAX_JSON_BYTES = 50 * 1024 * 1024


async def _import(
    request: Request, session: Session, key: str | None, rows: list[Any], first_number: int, photos: Any, settings: Any
) -> Response:
    engine = request.app.state.engine
    # Who is calling and what they sent before: a short read, never held while photos are fetched.
    with Session(read_only(engine)) as reader:
        partner = partners.authenticate(reader, key)
        valid, result = partners.check_rows(rows, settings=settings, first_number=first_number)
        assert partner.id is not None
        known = partners.known_rows(reader, partner.id, [row.external_id for row in valid])
    wanted = [
        row
        for row in valid
        if row.photo_url and (row.external_id not in known or known[row.external_id].photo_url != row.photo_url)
    ]
    outcomes = await fetch_and_store(
        [row.photo_url for row in wanted],
        hosts=allowed_hosts(partner.photo_hosts),
        photos=photos,
        timeout_s=settings.partner_photo_timeout_s,
        concurrency=settings.partner_photo_concurrency,
        prefix=service.PHOTO_PREFIX,
    )
    refused_numbers = set()
    for row, outcome in zip(wanted, outcomes, strict=True):
        if isinstance(outcome, StoredPhoto):
            row.photo = outcome
        else:
            result.refuse(row.number, row.external_id, outcome)
            refused_numbers.add(row.number)
    accepted = [row for row in valid if row.number not in refused_numbers]
    new_photos = [row.photo for row in accepted if row.photo is not None]
    try:
        replaced = await in_thread(
            session,
            lambda: partners.import_rows(
                session=session, partner=partner, rows=accepted, result=result, settings=settings
            ),
        )
    except BaseException:
        await photos.discard(new_photos)
        raise
    await photos.discard(replaced)
    result.errors.sort(key=lambda error: error["row"])
    PARTNER_ROWS.labels("accepted").inc(result.created + result.updated + result.unchanged)
    PARTNER_ROWS.labels("refused").inc(len(result.errors))
    return json_response(result.body())


@router.post("/found/")
async def push_found(
    request: Request, session: SessionDep, photos: PhotosDep, settings: SettingsDep, key: PartnerKey = None
) -> Response:
    """JSON push: `{"rows": [row, ...]}`, each row with the columns of partners.COLUMNS."""
    raw = await request.body()
    if len(raw) > MAX_JSON_BYTES:
        raise BadRequest("The feed is larger than 50 MB; split it.")
    try:
        document = json.loads(raw)
    except ValueError:
        raise BadRequest('The body must be JSON: {"rows": [...]}.') from None
    rows = document.get("rows") if isinstance(document, dict) else None
    if not isinstance(rows, list):
        raise BadRequest('The body must be JSON: {"rows": [...]}.')
    return await _import(request, session, key, rows, 1, photos, settings)


@router.post("/found/csv/")
async def upload_found_csv(
    request: Request, session: SessionDep, photos: PhotosDep, settings: SettingsDep, key: PartnerKey = None
) -> Response:
    """CSV upload (the body as text/csv, or a multipart `file`); rows are numbered by their line in the file."""
    if request.headers.get("content-type", "").startswith("multipart/form-data"):
        form = await request.form()
        upload = form.get("file")
        if upload is None or isinstance(upload, str):
            raise BadRequest("Send the CSV as the multipart field `file`.")
        raw = await upload.read(partners.MAX_CSV_BYTES + 1)
    else:
        raw = await request.body()
    rows = partners.rows_from_csv(raw)
    # Line 1 is the header: the first data row is line 2.
    return await _import(request, session, key, rows, 2, photos, settings)
