"""Thin routers of the matches API (behind the gateway's /api/auth/matches/)."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Query, Request

from pawgle.common.auth import CurrentUserId
from pawgle.common.db import SessionDep, SessionRoute
from pawgle.common.schemas import EntityId
from pawgle.matcher import service
from pawgle.matcher.schemas import MatchConfirm, MatchList, MatchRead

router = APIRouter(prefix="/api/auth/matches", route_class=SessionRoute)


@router.get("/", response_model=MatchList)
def list_matches(
    request: Request,
    session: SessionDep,
    user_id: CurrentUserId,
    status: Annotated[Literal["pending", "confirmed", "dismissed"] | None, Query()] = None,
) -> MatchList:
    """The caller's matches as owner or finder (pending and confirmed; or ?status=), best first."""
    rows = service.list_matches(session, settings=request.app.state.settings, user_id=user_id, status=status)
    return MatchList(matches=rows, count=len(rows))


@router.get("/{match_id:int}/", response_model=MatchRead)
def get_match(match_id: EntityId, request: Request, session: SessionDep, user_id: CurrentUserId) -> MatchRead:
    """One of the caller's matches."""
    return service.get_match(session, settings=request.app.state.settings, user_id=user_id, match_id=match_id)


@router.post("/{match_id:int}/confirm/", response_model=MatchRead)
def confirm_match(
    match_id: EntityId,
    request: Request,
    session: SessionDep,
    user_id: CurrentUserId,
    data: MatchConfirm | None = None,
) -> MatchRead:
    """Confirm a match; the owner may add {"pet_home": true} (their lost report is then resolved)."""
    pet_home = data.pet_home if data is not None else False
    settings = request.app.state.settings
    return service.confirm_match(session, settings=settings, user_id=user_id, match_id=match_id, pet_home=pet_home)


@router.post("/{match_id:int}/dismiss/", response_model=MatchRead)
def dismiss_match(match_id: EntityId, request: Request, session: SessionDep, user_id: CurrentUserId) -> MatchRead:
    """Dismiss a match: the pair is never matched again."""
    return service.dismiss_match(session, settings=request.app.state.settings, user_id=user_id, match_id=match_id)
