"""What makes a candidate a match: species, distance, time, status and model, before the score counts."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from pawgle.common.geo import haversine_km
from pawgle.matcher.models import KnownPet, KnownReport

ACTIVE = {"lost", "found"}
# The web app offers plural types ("Dogs"); reports may say "Dog", "dog", "Puppy".
_SPECIES_WORDS = {
    "dog": "dog",
    "dogs": "dog",
    "puppy": "dog",
    "cat": "cat",
    "cats": "cat",
    "kitten": "cat",
    "rabbit": "rabbit",
    "rabbits": "rabbit",
    "hamster": "hamster",
    "hamsters": "hamster",
}


def species_of(animal_type: str) -> str:
    """The species a free-text type names ("Dogs" -> "dog"); other words lower-cased, singular when easy."""
    word = animal_type.strip().lower()
    if word in _SPECIES_WORDS:
        return _SPECIES_WORDS[word]
    return word[:-1] if word.endswith("s") and len(word) > 3 else word


def species_compatible(a: str, b: str) -> bool:
    """The same species, or one side does not say (an empty type never rules a candidate out)."""
    return not a or not b or a == b


@dataclass(frozen=True)
class LostSide:
    """What was lost: a registered pet (with its active lost report, if any) or a lost report alone.

    A lost report linked to a pet is that pet's side: the pair key is the pet, so the pet's photos and its
    report's photo finding the same found report make one match.
    """

    user_id: int
    species: str
    name: str
    pet_id: int | None = None
    pet_model_version: str = ""
    report: KnownReport | None = None

    @property
    def key(self) -> str:
        if self.pet_id is not None:
            return f"pet:{self.pet_id}"
        assert self.report is not None
        return f"report:{self.report.report_id}"

    @property
    def lost_report_id(self) -> int | None:
        return self.report.report_id if self.report is not None else None


def lost_side(*, pet: KnownPet | None, report: KnownReport | None) -> LostSide | None:
    """The lost side made of a pet and/or its active lost report (None when neither is known)."""
    if pet is not None:
        return LostSide(
            user_id=pet.owner_id,
            species=pet.species or (report.species if report else ""),
            name=pet.name,
            pet_id=pet.pet_id,
            pet_model_version=pet.model_version,
            report=report,
        )
    if report is None:
        return None
    return LostSide(
        user_id=report.pet_owner_id or report.reporter_id,
        species=report.species,
        name=report.animal_name,
        pet_id=report.pet_id,
        report=report,
    )


@dataclass(frozen=True)
class Verdict:
    ok: bool
    reason: str = ""
    distance_km: float | None = None


def judge(
    found: KnownReport,
    lost: LostSide,
    *,
    model_version: str,
    max_distance_km: float,
) -> Verdict:
    """Whether (found report, lost side) may be a match, whatever their similarity."""
    if found.status != "found":
        return Verdict(False, "found report not active")
    if lost.report is not None and lost.report.status != "lost":
        return Verdict(False, "lost report not active")
    if found.reporter_id == lost.user_id:
        return Verdict(False, "same person")
    if not species_compatible(found.species, lost.species):
        return Verdict(False, "species")
    if found.model_version and found.model_version != model_version:
        return Verdict(False, "model version")
    if lost.pet_model_version and lost.pet_model_version != model_version:
        return Verdict(False, "model version")
    distance = None
    if lost.report is not None:
        distance = haversine_km(found.latitude, found.longitude, lost.report.latitude, lost.report.longitude)
        if distance > max_distance_km:
            return Verdict(False, "distance", distance)
        if found.reported_at < lost.report.reported_at:
            return Verdict(False, "found before the loss", distance)
    return Verdict(True, distance_km=distance)


def same_trail(a: KnownReport, b: KnownReport, *, max_km: float, max_days: float) -> bool:
    """Two found reports close enough in space and time to be sightings of one animal (looks aside)."""
    if a.status != "found" or b.status != "found" or not species_compatible(a.species, b.species):
        return False
    if abs(a.reported_at - b.reported_at) > timedelta(days=max_days):
        return False
    return haversine_km(a.latitude, a.longitude, b.latitude, b.longitude) <= max_km


def naive(moment: datetime) -> datetime:
    """Datetimes are stored naive in UTC (SQLite keeps no zone)."""
    return moment if moment.tzinfo is None else moment.astimezone(UTC).replace(tzinfo=None)
