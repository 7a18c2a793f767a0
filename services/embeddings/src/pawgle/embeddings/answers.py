"""Request-reply subjects the embeddings service answers (the endpoints live in pawgle.common.events.embeddings)."""

from __future__ import annotations

from fastapi import FastAPI
from sqlmodel import Session

from pawgle.common.bus.rpc import Responders
from pawgle.common.events.embeddings import NEAREST_CANDIDATES, NearestCandidates, NearestCandidatesRequest
from pawgle.embeddings import metrics, search

responders = Responders("embeddings")


@responders.answer(NEAREST_CANDIDATES)
def nearest_candidates(session: Session, request: NearestCandidatesRequest, app: FastAPI) -> NearestCandidates:
    with metrics.SEARCH_LATENCY.labels(query="candidates").time():
        return search.nearest_candidates(session, index=app.state.index, request=request)
