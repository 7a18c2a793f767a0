"""Events of the pets service (stream PETS)."""

from __future__ import annotations

from pawgle.common.events.envelope import EventData, event_model


class PetSnapshot(EventData):
    """What a pet looks like to other services: no owner contact data."""

    pet_id: int
    owner_id: int
    name: str
    type: str
    breed: str
    category: str
    is_public: bool = False
    image_keys: list[str] = []


@event_model
class PetCreated(PetSnapshot):
    event_type = "pet.created"


@event_model
class PetUpdated(PetSnapshot):
    event_type = "pet.updated"
    # True only when the set of photos changed (an edit's new photo, a restore with other photos, a retry
    # of a failed embedding): the image model re-embeds the pet then, and only then.
    images_changed: bool = False


@event_model
class PetDeleted(EventData):
    # Published when a pet is gone for good: purged after its grace period, or its owner was erased.
    event_type = "pet.deleted"
    pet_id: int
    owner_id: int
