"""Where someone else's lost report is shown: the centre of a fixed grid cell, never the exact point.

A lost report is often filed at the owner's home. Jittering the point per request would let a viewer
average many answers back to it; snapping to a fixed grid gives the same answer every time, so repeated
queries learn nothing more than the cell (a few hundred metres a side).
"""

from __future__ import annotations

from pawgle.common.geo import cell_centre


def public_position(status: str, latitude: float, longitude: float, *, cell_m: float) -> tuple[float, float]:
    """What anyone may see: a lost report's grid cell centre; a found report's exact place (not a home)."""
    if status == "lost":
        return cell_centre(latitude, longitude, cell_m=cell_m)
    return latitude, longitude
