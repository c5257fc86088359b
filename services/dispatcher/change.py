"""Change status of a scene's detections against the previous scene of the same query (pure).

Rule: a detection is ``persisting`` when its polygon overlaps (shares interior area with) any polygon of
the previous scene, else ``new``. Overlap, rather than an IoU threshold, because outlines of the same
object differ between scenes (other tiling, light, view angle, a growing object such as a construction
site); an IoU cut would turn such an object into a stream of "new" alerts. Polygons that only touch
along an edge or at a corner do not count as overlapping.
"""

from __future__ import annotations

from collections.abc import Sequence

from shapely import STRtree
from shapely.geometry.base import BaseGeometry

from services.contracts import ChangeStatus


def change_statuses(
    geometries: Sequence[BaseGeometry], previous: Sequence[BaseGeometry]
) -> list[ChangeStatus]:
    """``persisting`` for each geometry overlapping a previous one, ``new`` for the others."""
    if not previous:
        return [ChangeStatus.new] * len(geometries)
    tree = STRtree(list(previous))
    statuses = []
    for geometry in geometries:
        candidates = tree.query(geometry, predicate="intersects")
        overlapping = any(geometry.intersection(previous[i]).area > 0 for i in candidates)
        statuses.append(ChangeStatus.persisting if overlapping else ChangeStatus.new)
    return statuses
