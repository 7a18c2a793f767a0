"""Request and response models of the matches API (the other side's card carries no contact data)."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, StrictBool


class ReportCard(BaseModel):
    """A report as the other side may see it: someone else's position is its grid cell's centre."""

    id: int
    status: str
    animal_name: str
    type: str
    breed: str
    latitude: float
    longitude: float
    reported_at: datetime
    is_mine: bool


class PetCard(BaseModel):
    id: int
    name: str
    type: str
    breed: str


class Sighting(BaseModel):
    """One found report of the trail (approximate position, no reporter)."""

    report_id: int
    latitude: float
    longitude: float
    reported_at: datetime
    matched: bool


class TrailRead(BaseModel):
    id: int
    sightings: list[Sighting]


class MatchRead(BaseModel):
    id: int
    status: Literal["pending", "confirmed", "dismissed"]
    # The caller's side: "owner" (the pet's owner or the lost report's reporter) or "finder".
    role: Literal["owner", "finder"]
    score: float
    distance_km: float | None
    via: str
    created_at: datetime
    confirmed_by_me: bool
    confirmed_by_other: bool
    pet_home: bool
    found_report: ReportCard | None
    lost_report: ReportCard | None
    pet: PetCard | None
    # The sightings of the trail the found report belongs to (shown to the owner side only).
    trail: TrailRead | None


class MatchList(BaseModel):
    matches: list[MatchRead]
    count: int


class MatchConfirm(BaseModel):
    """Optional body of a confirmation: the owner says the pet is home (its lost report is then resolved)."""

    model_config = ConfigDict(extra="forbid")

    pet_home: StrictBool = False
