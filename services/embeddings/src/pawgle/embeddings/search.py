"""Image search (contract P5) and the matcher's nearest-candidates query, answered from the vector store."""

from __future__ import annotations

from typing import Any

import numpy as np
from sqlmodel import Session

from pawgle.common.blobs import BlobStore
from pawgle.common.events.embeddings import Candidate, NearestCandidates, NearestCandidatesRequest
from pawgle.embeddings import repository
from pawgle.embeddings.index import ACTIVE_REPORT_STATUSES, VectorIndex
from pawgle.embeddings.models import Subject
from pawgle.embeddings.vectors.port import GeoCircle, Kind, VectorHit, VectorQuery, point_id

MAX_RESULTS = 10
# Asked of the store beyond the 10 shown: a report whose pet is also a hit is folded into that pet's result.
OVERFETCH = 3


def _location(report: Subject | None, blobs: BlobStore) -> dict[str, Any] | None:
    if report is None:
        return None
    image_url = blobs.url(report.image_keys[0]) if report.image_keys else None
    return {
        "id": report.subject_id,
        "status": report.status,
        "latitude": report.latitude,
        "longitude": report.longitude,
        "image_url": image_url,
    }


def _similarity(score: float) -> float:
    return round(min(1.0, max(0.0, score)), 4)


def image_search(
    session: Session,
    *,
    index: VectorIndex,
    blobs: BlobStore,
    vector: np.ndarray,
    threshold: float,
    species: str | None = None,
    near: GeoCircle | None = None,
) -> dict[str, Any]:
    """The P5 body: searchable pets and active reports nearest to `vector`, a pet's report folded into it."""
    query = VectorQuery(
        vector=vector,
        limit=MAX_RESULTS * OVERFETCH,
        statuses={"report": ACTIVE_REPORT_STATUSES},
        species=species,
        near=near,
        near_applies_to=("pet", "report") if near is not None else ("report",),
        min_score=threshold,
    )
    hits = index.store.search(index.collection, query)
    keys: list[tuple[str, int]] = [(str(h.payload["kind"]), int(h.payload["subject_id"])) for h in hits]
    subjects = repository.subjects_by_keys(session, keys)
    pet_ids = {subject_id for kind, subject_id in keys if kind == "pet"}
    reports_of_pets = repository.active_reports_of_pets(session, sorted(pet_ids))
    results: list[dict[str, Any]] = []
    for hit, key in zip(hits, keys, strict=True):
        subject = subjects.get(key)
        if subject is None or len(results) >= MAX_RESULTS:
            continue
        if subject.kind == "pet":
            pet = {
                "id": subject.subject_id,
                "name": subject.name,
                "type": subject.type,
                "breed": subject.breed,
                "images": [blobs.url(k) for k in subject.image_keys],
            }
            location = _location(reports_of_pets.get(subject.subject_id), blobs)
        else:
            if subject.pet_id is not None and subject.pet_id in pet_ids:
                continue  # its pet is a hit already: the report is shown with it, not again
            pet = {"id": None, "name": subject.name, "type": subject.type, "breed": subject.breed, "images": []}
            location = _location(subject, blobs)
        results.append({"pet": pet, "similarity": _similarity(hit.score), "pet_location": location})
    return {
        "success": True,
        "results": results,
        "search_info": {
            "total_items_searched": index.store.count(index.collection, role="mean"),
            "matches_found": len(results),
            "similarity_threshold": threshold,
            "search_feature_dimensions": index.model.dimension,
            "pending_features_count": repository.pending_count(session),
        },
        "message": f"Found {len(results)} similar pets",
    }


def nearest_candidates(session: Session, *, index: VectorIndex, request: NearestCandidatesRequest) -> NearestCandidates:
    """The matcher's query: neighbours of a stored pet's or report's mean vector (itself left out)."""
    own_kind: Kind = request.subject_kind
    own_id = point_id(own_kind, request.subject_id, "mean")
    subject = repository.get_subject(session, own_kind, request.subject_id)
    points = index.store.subject_points(index.collection, own_kind, request.subject_id)
    mean = next((p for p in points if p.payload.get("role") == "mean"), None)
    if subject is None or mean is None:
        return NearestCandidates(model_version=index.model.key, embedded=False)
    near = None
    if request.radius_km is not None and subject.latitude is not None and subject.longitude is not None:
        near = GeoCircle(subject.latitude, subject.longitude, request.radius_km)
    query = VectorQuery(
        vector=mean.vector,
        limit=request.limit,
        kinds=tuple(request.kinds),
        statuses={"report": tuple(request.report_statuses)},
        near=near,
        searchable_only=request.searchable_only,
        exclude_ids=(own_id,),
        min_score=request.min_similarity,
    )
    hits = index.store.search(index.collection, query)
    # Only subjects the service still knows: a vector outliving its pet (deleted while a reindex filled this
    # collection in another process) is never a candidate.
    known = repository.subjects_by_keys(session, [(str(h.payload["kind"]), int(h.payload["subject_id"])) for h in hits])
    alive = [h for h in hits if (str(h.payload["kind"]), int(h.payload["subject_id"])) in known]
    return NearestCandidates(model_version=index.model.key, embedded=True, candidates=[_candidate(h) for h in alive])


def _candidate(hit: VectorHit) -> Candidate:
    payload = hit.payload
    position = payload.get("position") or {}
    return Candidate(
        kind=payload["kind"],
        id=int(payload["subject_id"]),
        similarity=round(hit.score, 4),
        owner_id=int(payload.get("owner_id", 0)),
        status=str(payload.get("status", "")),
        pet_id=payload.get("pet_id"),
        latitude=position.get("lat"),
        longitude=position.get("lon"),
    )
