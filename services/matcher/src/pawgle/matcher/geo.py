"""Distances on the globe, and the approximate position shown of someone else's report.

The snapping is the reports service's grid (its `privacy.cell_centre`): the same cell size gives the
same centre every time, so what the matches API shows is what the maps show, and repeated queries learn
nothing more than the cell. (Services share no code but libs/common; the few lines are repeated here.)
"""

from __future__ import annotations

import math

EARTH_RADIUS_KM = 6371.0088
METRES_PER_DEGREE_LAT = 111_320.0
_MIN_COS_LAT = 0.01


def haversine_km(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Great-circle distance between two points, in kilometres."""
    phi1, phi2 = math.radians(lat1), math.radians(lat2)
    dphi, dlmb = math.radians(lat2 - lat1), math.radians(lon2 - lon1)
    a = math.sin(dphi / 2) ** 2 + math.cos(phi1) * math.cos(phi2) * math.sin(dlmb / 2) ** 2
    return 2 * EARTH_RADIUS_KM * math.asin(min(1.0, math.sqrt(a)))


def cell_centre(latitude: float, longitude: float, *, cell_m: float) -> tuple[float, float]:
    """The centre of the fixed grid cell holding the point (never the point itself)."""
    step_lat = cell_m / METRES_PER_DEGREE_LAT
    row = math.floor((latitude + 90.0) / step_lat)
    centre_lat = min(90.0, -90.0 + (row + 0.5) * step_lat)
    step_lon = min(360.0, cell_m / (METRES_PER_DEGREE_LAT * max(math.cos(math.radians(centre_lat)), _MIN_COS_LAT)))
    column = math.floor((longitude + 180.0) / step_lon)
    centre_lon = min(180.0, -180.0 + (column + 0.5) * step_lon)
    shown = round(centre_lat, 6), round(centre_lon, 6)
    if math.isclose(shown[0], latitude, abs_tol=1e-6) and math.isclose(shown[1], longitude, abs_tol=1e-6):
        offset = step_lat / 4 if centre_lat - step_lat / 4 < -90.0 else -step_lat / 4
        shown = round(centre_lat + offset, 6), shown[1]
    return shown
