"""Settings of the matcher service (env prefix MATCHER_; the automatch thresholds also as AUTOMATCH_*)."""

from pydantic import AliasChoices, Field
from pydantic_settings import SettingsConfigDict

from pawgle.common.config import ServiceSettings


def _named(name: str) -> AliasChoices:
    # The contract names the two thresholds AUTOMATCH_*; MATCHER_AUTOMATCH_* works too.
    return AliasChoices(name, f"MATCHER_{name}", name.lower())


class Settings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="MATCHER_", extra="ignore", populate_by_name=True)

    service_name: str = "matcher"

    # Cosine similarity a candidate must reach: the identity model's calibrated automatch threshold
    # (services/embeddings README, model efficientnet-lite0-dogid-2: 0.59, a false-match rate of 0.0096%,
    # about 1 in 10,400 pairs of different dogs on the validation split).
    automatch_min_similarity: float = Field(0.59, ge=-1, le=1, validation_alias=_named("AUTOMATCH_MIN_SIMILARITY"))
    automatch_max_distance_km: float = Field(
        50.0, gt=0, le=20_000, validation_alias=_named("AUTOMATCH_MAX_DISTANCE_KM")
    )
    # At most this many matches per report and per lost side in one matching run, best first.
    max_candidates: int = Field(10, ge=1, le=50)
    # Sightings of one unknown animal: found reports alike, this close in space and in time, form a trail.
    trail_max_distance_km: float = Field(5.0, gt=0, le=500)
    trail_max_days: float = Field(7.0, gt=0, le=365)
    # Someone else's report is shown at the centre of its grid cell (as the reports service shows lost ones).
    privacy_cell_m: float = Field(500.0, ge=100, le=5000)
    # The matching worker: jobs per step, retries while the embeddings service does not answer.
    jobs_per_step: int = Field(16, ge=1, le=256)
    retry_base_s: float = Field(0.25, gt=0, le=600)
    retry_max_s: float = Field(60.0, gt=0, le=3600)
    poll_interval_s: float = Field(1.0, gt=0, le=60)
