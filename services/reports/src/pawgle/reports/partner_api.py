"""Partner feeds over HTTP: JSON push and CSV upload of found animals, authenticated by X-Partner-Key."""

from __future__ import annotations

import json
from typing import Annotated, Any

from fastapi import APIRouter, Header, Request, Response
from sqlmodel import Session
from starlette.concurrency import run_in_threadpool

from pawgle.common.db import SessionRoute, read_only, run_with_retries
from pawgle.common.errors import BadRequest
from pawgle.common.photos import StoredPhoto
from pawgle.reports import partners, service
from pawgle.reports.metrics import PARTNER_ROWS
from pawgle.reports.partner_photos import allowed_hosts, fetch_and_store
from pawgle.reports.routing import PhotosDep, SettingsDep, json_response

router = APIRouter(prefix="/api/partners", route_class=SessionRoute)
PartnerKey = Annotated[str | None, Header(alias="X-Partner-Key")]
MAX_JSON_BYTES = 50 * 1024 * 1024
IMPORT_CHUNK = 250


def _import_chunk(
    engine: Any, partner: Any, rows: list[Any], result: partners.FeedResult, settings: Any
) -> list[StoredPhoto]:
    def work() -> tuple[list[StoredPhoto], partners.FeedResult]:
        counts = partners.FeedResult()  # fresh per attempt: a retried chunk is counted once
        with Session(engine, expire_on_commit=False) as writer:
            replaced = partners.import_rows(
                session=writer, partner=partner, rows=rows, result=counts, settings=settings
            )
            writer.commit()
            return replaced, counts

    replaced, counts = run_with_retries(work)
    result.created += counts.created
    result.updated += counts.updated
    result.unchanged += counts.unchanged
    return replaced


async def _import(
    request: Request, key: str | None, rows: list[Any], first_number: int, photos: Any, settings: Any
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
    # Written in chunks, each its own short transaction: a 10,000-row feed must not hold SQLite's one
    # write lock (and with it every other writer, the outbox relay included) for its whole import.
    replaced: list[StoredPhoto] = []
    done = 0
    try:
        for start in range(0, len(accepted), IMPORT_CHUNK):
            chunk = accepted[start : start + IMPORT_CHUNK]
            replaced += await run_in_threadpool(_import_chunk, engine, partner, chunk, result, settings)
            done = start + len(chunk)
    except BaseException:
        await photos.discard([row.photo for row in accepted[done:] if row.photo is not None])
        raise
    await photos.discard(replaced)
    result.errors.sort(key=lambda error: error["row"])
    PARTNER_ROWS.labels("accepted").inc(result.created + result.updated + result.unchanged)
    PARTNER_ROWS.labels("refused").inc(len(result.errors))
    return json_response(result.body())


@router.post("/found/")
async def push_found(request: Request, photos: PhotosDep, settings: SettingsDep, key: PartnerKey = None) -> Response:
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
    return await _import(request, key, rows, 1, photos, settings)


@router.post("/found/csv/")
async def upload_found_csv(
    request: Request, photos: PhotosDep, settings: SettingsDep, key: PartnerKey = None
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
    return await _import(request, key, rows, 2, photos, settings)
