"""The image search route (contract P5): one photo in, the nearest searchable pets and active reports out."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import math
from typing import Annotated, Any

from fastapi import APIRouter, Depends, File, Form, Request, UploadFile
from sqlmodel import Session

from pawgle.common.auth import CurrentUserId
from pawgle.common.errors import AppError, BadRequest
from pawgle.common.photos.decode import decode_photo
from pawgle.common.photos.pipeline import read_upload
from pawgle.common.photos.rules import DEFAULT_RULES, PhotoRejected
from pawgle.common.throttle import Throttle
from pawgle.embeddings import metrics, search
from pawgle.embeddings.model.port import InvalidImageError, ModelError
from pawgle.embeddings.vectors.port import GeoCircle

log = logging.getLogger(__name__)
router = APIRouter(tags=["search"])
SPECIES = ("dog", "cat", "other")
DEFAULT_THRESHOLD = 0.3
# The query photo is verified by the shared rules and decoded once, straight to a size the model can use
# (JPEG draft decoding): never re-encoded, never decoded a second time by the model.
QUERY_RULES = dataclasses.replace(DEFAULT_RULES, max_side=512)


class SearchFailed(AppError):
    status_code = 500


def _number(name: str, raw: str | None, low: float, high: float) -> float | None:
    if raw is None or raw.strip() == "":
        return None
    try:
        value = float(raw)
    except ValueError:
        raise BadRequest(f"{name} must be a number.", **{name: [f"{name} must be a number."]}) from None
    if not math.isfinite(value) or not low <= value <= high:
        message = f"{name} must be between {low:g} and {high:g}."
        raise BadRequest(message, **{name: [message]})
    return value


def _near(latitude: str | None, longitude: str | None, radius_km: str | None) -> GeoCircle | None:
    lat = _number("latitude", latitude, -90, 90)
    lon = _number("longitude", longitude, -180, 180)
    radius = _number("radius_km", radius_km, 0.001, 20_000)
    given = [value is not None for value in (lat, lon, radius)]
    if not any(given):
        return None
    if not all(given):
        raise BadRequest("latitude, longitude and radius_km go together: send all three or none.")
    assert lat is not None
    assert lon is not None
    assert radius is not None
    return GeoCircle(lat, lon, radius)


@router.post("/api/auth/pets/search/", dependencies=[Depends(Throttle("pet_search"))])
async def search_by_image(
    request: Request,
    user_id: CurrentUserId,
    image: Annotated[UploadFile | None, File()] = None,
    species: Annotated[str | None, Form()] = None,
    latitude: Annotated[str | None, Form()] = None,
    longitude: Annotated[str | None, Form()] = None,
    radius_km: Annotated[str | None, Form()] = None,
) -> dict[str, Any]:
    """Searchable pets and active reports whose photos look most like the uploaded one."""
    if image is None or not image.filename and image.size == 0:
        raise BadRequest("No image provided")
    wanted_species = (species or "").strip().lower() or None
    if wanted_species is not None and wanted_species not in SPECIES:
        raise BadRequest("species must be dog, cat or other.", species=["species must be dog, cat or other."])
    near = _near(latitude, longitude, radius_km)
    state = request.app.state
    with metrics.SEARCH_LATENCY.labels(query="image").time():
        data = await read_upload(image)
        if not data:
            raise BadRequest("No image provided")
        try:
            picture = await asyncio.to_thread(decode_photo, data, rules=QUERY_RULES, label="the image")
            embedding = await state.batcher.embed(picture)
        except (PhotoRejected, InvalidImageError) as exc:
            raise BadRequest(f"Failed to extract features from search image: {exc}") from exc
        except ModelError:
            log.warning("search: the model failed on the query photo", exc_info=True)
            raise SearchFailed("Search failed") from None
        threshold = state.settings.search_min_similarity or state.index.model.search_min_similarity or DEFAULT_THRESHOLD
        try:
            return await asyncio.to_thread(_search, state, embedding.vector, float(threshold), wanted_species, near)
        except Exception:
            log.exception("search failed")
            raise SearchFailed("Search failed") from None


def _search(state: Any, vector: Any, threshold: float, species: str | None, near: GeoCircle | None) -> dict[str, Any]:
    with Session(state.engine) as session:
        return search.image_search(
            session,
            index=state.index,
            blobs=state.blobs,
            vector=vector,
            threshold=threshold,
            species=species,
            near=near,
        )
