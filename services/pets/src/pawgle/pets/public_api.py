"""Thin routers of the public pet routes: the QR landing page (P7), the dashboard (S1) and the count (S3)."""

from __future__ import annotations

from fastapi import APIRouter, Depends

from pawgle.common.db import SessionDep, SessionRoute
from pawgle.common.throttle import Throttle
from pawgle.pets import service
from pawgle.pets.routing import PhotoUrlDep, SettingsDep
from pawgle.pets.schemas import FoundPet, PetCount, PublicPet

router = APIRouter(prefix="/api/auth", route_class=SessionRoute)
# Per client address, whoever is signed in: with unguessable tag ids this makes enumeration hopeless (D5).
FOUND_PAGE_THROTTLE = Throttle("found_page", "60/min", by="ip")


@router.get("/found/{animal_id}/", response_model=FoundPet, dependencies=[Depends(FOUND_PAGE_THROTTLE)])
def found_pet(animal_id: str, session: SessionDep, url: PhotoUrlDep) -> FoundPet:
    """The finder's page of a QR tag: the pet's name, kind and one photo; nothing about its owner."""
    return service.found_pet(session=session, animal_id=animal_id, url=url)


@router.get("/dashboard/pets/", response_model=list[PublicPet])
def dashboard_pets(session: SessionDep, url: PhotoUrlDep, settings: SettingsDep) -> list[PublicPet]:
    """Public pets, newest first, with only id, name, type, breed, category and images."""
    return service.public_pets(session=session, url=url, limit=settings.dashboard_limit)


@router.get("/pets/count/", response_model=PetCount)
def pet_count(session: SessionDep) -> PetCount:
    """How many pets are registered."""
    return PetCount(pet_count=service.count_pets(session=session))
