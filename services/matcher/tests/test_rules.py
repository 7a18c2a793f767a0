"""The filters and the geometry on their own: species words, distances, the reports service's grid."""

from __future__ import annotations

import random

import pytest

from pawgle.common.geo import cell_centre, haversine_km
from pawgle.matcher.rules import species_compatible, species_of


@pytest.mark.parametrize(
    ("word", "species"),
    [
        ("Dogs", "dog"),
        ("dog", "dog"),
        (" Puppy ", "dog"),
        ("Cats", "cat"),
        ("Kitten", "cat"),
        ("Hens", "hen"),
        ("", ""),
    ],
)
def test_the_web_apps_types_name_one_species(word: str, species: str) -> None:
    assert species_of(word) == species


def test_an_unknown_species_never_rules_a_candidate_out() -> None:
    assert species_compatible("dog", "dog")
    assert species_compatible("", "cat")
    assert not species_compatible("dog", "cat")


def test_distances_are_great_circle_kilometres() -> None:
    assert haversine_km(48.8566, 2.3522, 48.8566, 2.3522) == 0
    assert haversine_km(48.8566, 2.3522, 50.6566, 2.3522) == pytest.approx(200.2, abs=0.5)


def test_approximate_positions_are_the_reports_services_grid_cells() -> None:
    # One grid (pawgle.common.geo) for both services; the same cell size makes the same cells.
    from pawgle.matcher.config import Settings as MatcherSettings
    from pawgle.reports.config import Settings as ReportsSettings

    cell_m = MatcherSettings.model_fields["privacy_cell_m"].default
    assert cell_m == ReportsSettings.model_fields["privacy_cell_m"].default
    rng = random.Random(7)
    for _ in range(500):
        lat, lon = rng.uniform(-89.9, 89.9), rng.uniform(-179.9, 179.9)
        shown = cell_centre(lat, lon, cell_m=cell_m)
        assert shown != (round(lat, 6), round(lon, 6))
