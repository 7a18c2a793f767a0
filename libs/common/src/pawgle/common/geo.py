"""Geometry every service shares: great-circle distance, and the fixed grid that hides an exact position.

A lost report is often filed at the owner's home. Jittering the point per request would let a viewer
average many answers back to it; snapping to a fixed grid gives the same answer every time, so repeated
queries learn nothing more than the cell (a few hundred metres a side). The reports service shows
someone else's lost report this way, and the matcher shows the same cell, so the two never disagree.
"""

from __future__ import annotations

import math

EARTH_RADIUS_KM = 6371.0088


def haversine_km(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Great-circle distance between two WGS-84 points, in kilometres."""
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * EARTH_RADIUS_KM * math.asin(min(1.0, math.sqrt(a)))


METRES_PER_DEGREE_LAT = 111_320.0
# Near the poles a cell of fixed width would span most of the longitudes; its width is capped there.
_MIN_COS_LAT = 0.01


def cell_centre(latitude: float, longitude: float, *, cell_m: float) -> tuple[float, float]:
    """The centre of the grid cell holding the point (rows of equal height, each cut into near-squares)."""
    step_lat = cell_m / METRES_PER_DEGREE_LAT
    row = math.floor((latitude + 90.0) / step_lat)
    centre_lat = min(90.0, -90.0 + (row + 0.5) * step_lat)
    # The width of a row's cells depends only on the row, so every point of a cell maps to one centre.
    step_lon = min(360.0, cell_m / (METRES_PER_DEGREE_LAT * max(math.cos(math.radians(centre_lat)), _MIN_COS_LAT)))
    column = math.floor((longitude + 180.0) / step_lon)
    centre_lon = min(180.0, -180.0 + (column + 0.5) * step_lon)
    shown = round(centre_lat, 6), round(centre_lon, 6)
    if math.isclose(shown[0], latitude, abs_tol=1e-6) and math.isclose(shown[1], longitude, abs_tol=1e-6):
        # A point at the very centre would be given away by it: show another point of the same cell.
        offset = step_lat / 4 if centre_lat - step_lat / 4 < -90.0 else -step_lat / 4
        shown = round(centre_lat + offset, 6), shown[1]
    return shown
