"""Map cells: a coarse fixed grid over the public positions, so a bounding box reads only its own cells.

Each report stores the cell of its public position (`map_cell`, indexed together with what a map list
needs, so a box is answered from the index alone). A box is turned into the cells it touches; a box
covering too many cells (a continent) is answered by walking the newest reports instead.
"""

from __future__ import annotations

import math

# 0.05 degrees a side: about 5.5 km north-south, 3.4 km east-west at Berlin; a city box is a few dozen.
CELL_DEG = 0.05
_COLUMNS = round(360 / CELL_DEG)  # 7,200 columns per row
_ROWS = round(180 / CELL_DEG)  # 3,600 rows
# Beyond this many cells the box is most of the map: the newest-first walk is cheaper.
MAX_CELLS = 400


def _row(latitude: float) -> int:
    return min(_ROWS - 1, max(0, math.floor((latitude + 90.0) / CELL_DEG)))


def _column(longitude: float) -> int:
    return min(_COLUMNS - 1, max(0, math.floor((longitude + 180.0) / CELL_DEG)))


def cell_of(latitude: float, longitude: float) -> int:
    """The cell holding a (public) position."""
    return _row(latitude) * _COLUMNS + _column(longitude)


def cells_in(west: float, south: float, east: float, north: float) -> list[int] | None:
    """Every cell the box touches (west > east: the box crosses the antimeridian), or None when too many."""
    rows = range(_row(south), _row(north) + 1)
    if west <= east:
        columns = list(range(_column(west), _column(east) + 1))
    else:
        columns = list(range(_column(west), _COLUMNS)) + list(range(0, _column(east) + 1))
    if len(rows) * len(columns) > MAX_CELLS:
        return None
    return [row * _COLUMNS + column for row in rows for column in columns]
