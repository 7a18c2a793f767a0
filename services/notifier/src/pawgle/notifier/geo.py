"""The spatial index of alert areas: a fixed grid of cells, and great-circle distance.

An area is indexed under every cell its bounding box touches; a report looks up the one cell it lies in
and checks the haversine distance of those candidates only. The bounding box is a superset of the
spherical cap, so a point inside an area always lies in one of the area's cells, across cell borders,
the antimeridian and the poles (a cap that reaches a pole takes every longitude).
"""

from __future__ import annotations

import math

from pawgle.common.geo import EARTH_RADIUS_KM, haversine_km

__all__ = ["haversine_km"]

# Changing the cell size needs a reindex of alert_area_cells (see repository.reindex_all_cells).
CELL_DEG = 0.5
ROWS = int(round(180 / CELL_DEG))
COLS = int(round(360 / CELL_DEG))
# Widen each box a little so floating-point rounding at its edge can never drop a cell.
_MARGIN = 1.001


def _row(lat: float) -> int:
    return min(max(int(math.floor((lat + 90.0) / CELL_DEG)), 0), ROWS - 1)


def _col(lon: float) -> int:
    return int(math.floor((lon + 180.0) / CELL_DEG)) % COLS


def cell_of(lat: float, lon: float) -> int:
    """The cell a point lies in."""
    return _row(lat) * COLS + _col(lon)


def cells_covering(lat: float, lon: float, radius_km: float) -> list[int]:
    """Every cell that the circle of `radius_km` around (lat, lon) touches (a superset, never fewer)."""
    angular = radius_km / EARTH_RADIUS_KM * _MARGIN
    dlat = math.degrees(angular)
    south, north = lat - dlat, lat + dlat
    if south <= -90.0 or north >= 90.0 or angular >= math.pi / 2:
        cols = range(COLS)
    else:
        # The widest longitude a spherical cap reaches: asin(sin d / cos lat), exact for caps off the pole.
        ratio = math.sin(angular) / math.cos(math.radians(lat))
        dlon = 180.0 if ratio >= 1.0 else math.degrees(math.asin(ratio)) * _MARGIN
        if dlon >= 180.0:
            cols = range(COLS)
        else:
            first, last = (
                int(math.floor((lon - dlon + 180.0) / CELL_DEG)),
                int(math.floor((lon + dlon + 180.0) / CELL_DEG)),
            )
            cols = range(first, last + 1) if last - first + 1 < COLS else range(COLS)
    col_set = sorted({c % COLS for c in cols})
    return [row * COLS + col for row in range(_row(south), _row(north) + 1) for col in col_set]
