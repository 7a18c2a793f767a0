"""Response models of the pets routes (contract section 4 and 7) and the additionalInfo normal form."""

from __future__ import annotations

from typing import Any

import orjson
from pydantic import Field

from pawgle.common.schemas import ResponseModel, Timestamp

MAX_ADDITIONAL_INFO_CHARS = 8 * 1024
MAX_SUB_NOTES = 50
MAX_SUB_NOTE_CHARS = 500

# A tuple, not `dict | list`: that expression builds a new union object each time it runs (per pet, per load).
_CONTAINERS = (dict, list)


def additional_info(raw: object) -> dict[str, Any]:
    """Any stored or sent additionalInfo as the web app needs it: weight, height (strings), subNotes (list).

    The edit page crashes without subNotes (contract, Pet object), so the three keys are always there;
    other keys (ai_classification...) are kept as they are.
    """
    value: object = raw
    if isinstance(raw, str):
        try:
            value = orjson.loads(raw) if raw.strip() else {}  # read on every profile load: orjson
        except ValueError:
            value = {}
    info: dict[str, Any] = dict(value) if isinstance(value, dict) else {}
    for key in ("weight", "height"):
        item = info.get(key)
        info[key] = "" if item is None or isinstance(item, _CONTAINERS) else str(item)
    notes = info.get("subNotes")
    if isinstance(notes, str):
        notes = [notes] if notes else []
    if not isinstance(notes, list):
        notes = []
    info["subNotes"] = [
        note if type(note) is str and len(note) <= MAX_SUB_NOTE_CHARS else str(note)[:MAX_SUB_NOTE_CHARS]
        for note in notes[:MAX_SUB_NOTES]
        if not isinstance(note, _CONTAINERS)
    ]
    return info


class PetRead(ResponseModel):
    """The Pet object of P1, P2 and P3. Never embeddings: `features` is always empty (D3f)."""

    id: int
    name: str
    type: str
    category: str
    breed: str
    isPublic: bool
    additionalInfo: dict[str, Any]
    animal_id: str
    registered_at: Timestamp
    images: list[str]
    feature_status: str
    owner: int
    features: list[Any] = Field(default_factory=list)


class OwnerRead(ResponseModel):
    id: int
    username: str
    email: str


class Profile(ResponseModel):
    user: OwnerRead
    pets: list[PetRead]


class PetAdded(ResponseModel):
    success: bool = True
    pet: PetRead
    message: str = "Pet added successfully. Features are being extracted in the background."


class FoundPet(ResponseModel):
    """The public found page (P7): the tag's pet, nothing about its owner or where it lives."""

    animal_id: str
    name: str
    type: str
    breed: str
    category: str
    images: list[str]
    has_owner: bool


class PublicPet(ResponseModel):
    """A public pet on the dashboard (S1): only these six fields (D3e)."""

    id: int
    name: str
    type: str
    breed: str
    category: str
    images: list[str]


class PetCount(ResponseModel):
    pet_count: int


class FeatureStatus(ResponseModel):
    feature_status: str


class FeatureRetry(ResponseModel):
    feature_status: str
    detail: str


class EditedImageRead(ResponseModel):
    """A saved fun-page picture (E1, E2); `edit_metadata` as a parsed object."""

    id: int
    edit_metadata: dict[str, Any]
    created_at: Timestamp
    owner: str
    edited_image_url: str
