"""One filter builder for both engines: qdrant-client's models and Qdrant Edge's share their class names."""

from __future__ import annotations

from types import ModuleType
from typing import Any

from pawgle.embeddings.vectors.port import GEO_FIELD, Kind, VectorQuery


def _match(models: ModuleType, key: str, value: Any) -> Any:
    return models.FieldCondition(key=key, match=models.MatchValue(value=value))


def subject_filter(models: ModuleType, kind: Kind, subject_id: int) -> Any:
    """Every point of one pet or report."""
    return models.Filter(must=[_match(models, "kind", kind), _match(models, "subject_id", subject_id)])


def role_kind_filter(models: ModuleType, role: str | None, kind: str | None) -> Any:
    """Points of one role and/or kind (None: no filter at all)."""
    must = [_match(models, key, value) for key, value in (("role", role), ("kind", kind)) if value is not None]
    return models.Filter(must=must) if must else None


def query_filter(models: ModuleType, query: VectorQuery, has_id: Any) -> Any:
    """The payload filter of a search: mean vectors only, the wanted kinds, statuses, species and area."""
    must: list[Any] = [_match(models, "role", "mean")]
    if query.searchable_only:
        must.append(_match(models, "visibility", "searchable"))
    if query.species is not None:
        must.append(_match(models, "species", query.species))
    per_kind = []
    for kind in query.kinds:
        conditions = [_match(models, "kind", kind)]
        statuses = query.statuses.get(kind)
        if statuses is not None:
            conditions.append(models.FieldCondition(key="status", match=models.MatchAny(any=list(statuses))))
        if query.near is not None and kind in query.near_applies_to:
            centre = models.GeoPoint(lon=query.near.longitude, lat=query.near.latitude)
            radius = models.GeoRadius(center=centre, radius=query.near.radius_km * 1000.0)
            conditions.append(models.FieldCondition(key=GEO_FIELD, geo_radius=radius))
        per_kind.append(models.Filter(must=conditions))
    if len(per_kind) == 1:
        must.extend(per_kind[0].must)
        should = None
    else:
        should = per_kind
    must_not = [has_id(list(query.exclude_ids))] if query.exclude_ids else None
    return models.Filter(must=must, should=should, must_not=must_not)
