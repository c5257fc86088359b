"""One scene for its matching queries: read only the windows over scene ∩ AOIs, segment the (tile, query)
pairs in bounded batches, stitch each query's probabilities with overlap blending, vectorize them into
CRS84 polygons clipped to the AOI, and store the detections idempotently.

A query whose result for (query version, scene, model) is already stored is not segmented again: its
stored detections are returned instead, so a redelivered scene costs no model time and writes nothing.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pystac
import rasterio
from affine import Affine
from shapely.geometry import shape

from danet.geo import GeoRasterImage, ProbabilityStitcher, WindowRead, vectorize_probability
from danet.predict import tile_input
from services.contracts import Detection, Query, SceneMessage, detection_id
from services.dispatcher.change import change_statuses
from services.dispatcher.matching import scene_facts
from services.dispatcher.planning import QueryTiles, ScenePlan, batch_pairs, plan_scene
from services.segmenter import Segmenter
from services.settings import DispatcherSettings
from services.store import DetectionStore

log = logging.getLogger(__name__)

# Remote COGs: no directory listing on open (GDAL would probe for sidecar files with extra requests),
# and neighbouring byte ranges merged into one request.
GDAL_OPTIONS = {
    "GDAL_DISABLE_READDIR_ON_OPEN": "EMPTY_DIR",
    "GDAL_HTTP_MERGE_CONSECUTIVE_RANGES": "YES",
    "GDAL_HTTP_MULTIPLEX": "YES",
}


class PermanentSceneError(Exception):
    """A scene that no retry can fix; `code` names the kind (dead-letter header ``error``)."""

    def __init__(self, code: str, reason: str) -> None:
        super().__init__(reason)
        self.code = code


@dataclass(frozen=True)
class QueryResult:
    """A query's detections in one scene; `written` is False when they had been stored before."""

    query: Query
    detections: tuple[Detection, ...]
    written: bool


@dataclass(frozen=True)
class SceneReport:
    """What processing a scene did: per-query results and the work it took."""

    results: tuple[QueryResult, ...]
    asset_href: str | None = None
    windows_read: int = 0
    pixels_read: int = 0
    pairs: int = 0
    segment_calls: int = 0


def load_item(scene: SceneMessage) -> dict[str, Any]:
    """The scene's STAC item: the one in the message, else read from its href (local path or URL)."""
    if scene.item is not None:
        return scene.item
    return json.loads(pystac.StacIO.default().read_text(scene.href))


def self_href(item: Mapping[str, Any]) -> str | None:
    """The item's ``self`` link, if any."""
    for link in item.get("links") or []:
        if link.get("rel") == "self" and link.get("href"):
            return str(link["href"])
    return None


def select_asset(item: Mapping[str, Any], asset_keys: Sequence[str]) -> tuple[str, str]:
    """(key, absolute href) of the first of `asset_keys` the item has; relative hrefs are resolved
    against the item's self link. Raises PermanentSceneError when none is usable."""
    assets = item.get("assets") or {}
    for key in asset_keys:
        asset = assets.get(key)
        if not isinstance(asset, Mapping) or not asset.get("href"):
            continue
        href = str(asset["href"])
        if pystac.utils.is_absolute_href(href):
            return key, href
        base = self_href(item)
        if base is None:
            raise PermanentSceneError(
                "no_usable_asset",
                f"assets.{key}.href {href!r} is relative and the item has no self link to resolve it",
            )
        return key, pystac.utils.make_absolute_href(href, base)
    raise PermanentSceneError(
        "no_usable_asset",
        f"item has none of the asset keys {list(asset_keys)} (it has {sorted(assets)})",
    )


class SceneProcessor:
    """Segments one scene for its matching queries and stores the results."""

    def __init__(
        self,
        segmenter: Segmenter,
        store: DetectionStore,
        *,
        asset_keys: Sequence[str],
        overlap: int | None = None,
        max_pairs_per_call: int = 32,
        max_read_pixels: int = 50_000_000,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        size = segmenter.input_size
        self.overlap = size // 4 if overlap is None else overlap
        if not 0 <= self.overlap < size:
            raise ValueError(f"dispatcher.tile_overlap: must be in [0, {size}) pixels, got {self.overlap}")
        if max_pairs_per_call <= 0:
            raise ValueError(f"dispatcher.max_pairs_per_call: must be positive, got {max_pairs_per_call}")
        self.segmenter = segmenter
        self.store = store
        self.asset_keys = list(asset_keys)
        self.max_pairs_per_call = max_pairs_per_call
        self.max_read_pixels = max_read_pixels
        self.clock = clock or (lambda: datetime.now(UTC))

    @classmethod
    def from_settings(
        cls, segmenter: Segmenter, store: DetectionStore, settings: DispatcherSettings
    ) -> SceneProcessor:
        """A processor configured by the dispatcher settings."""
        return cls(
            segmenter,
            store,
            asset_keys=settings.asset_keys,
            overlap=settings.tile_overlap,
            max_pairs_per_call=settings.max_pairs_per_call,
            max_read_pixels=settings.max_read_pixels,
        )

    def process(self, scene: SceneMessage, item: Mapping[str, Any], queries: Sequence[Query]) -> SceneReport:
        """Detections of every query in `queries` (already matched) for this scene, stored once."""
        model = self.segmenter.model_name
        results: list[QueryResult] = []
        pending: list[Query] = []
        for query in queries:
            stored = self.store.scene_detections(query, scene.collection, scene.item_id, model)
            if stored is None:
                pending.append(query)
            else:
                log.info("scene %s: query %s was processed before; not segmented again", scene.key, query.id)
                results.append(QueryResult(query, tuple(stored), written=False))
        if not pending:
            return SceneReport(tuple(results))

        _, href = select_asset(item, self.asset_keys)
        with rasterio.Env(**GDAL_OPTIONS), GeoRasterImage(href) as image:
            if image.crs is None:
                raise PermanentSceneError("not_georeferenced", f"asset {href} has no CRS")
            plan = plan_scene(
                pending, image.crs, image.transform, image.shape, self.segmenter.input_size, self.overlap
            )
            for query in plan.outside:
                log.info("scene %s: query %s: AOI covers no pixel of %s; skipped", scene.key, query.id, href)
            if plan.read_pixels > self.max_read_pixels:
                raise PermanentSceneError(
                    "over_pixel_budget",
                    f"scene ∩ AOIs of queries {[p.query.id for p in plan.queries]} needs "
                    f"{plan.read_pixels:,} pixels, over dispatcher.max_read_pixels={self.max_read_pixels:,}",
                )
            stitchers, calls = self._segment(image, plan)
            acquired = scene_facts(scene.collection, item).start
            detected_at = self.clock()
            for part, stitcher in zip(plan.queries, stitchers, strict=True):
                detections = self._detections(
                    scene, item, part, stitcher, image, acquired=acquired, detected_at=detected_at
                )
                results.append(self._write(scene, part.query, detections))
        return SceneReport(
            tuple(results),
            asset_href=href,
            windows_read=len(plan.windows),
            pixels_read=plan.read_pixels,
            pairs=sum(len(p.tiles) for p in plan.queries),
            segment_calls=calls,
        )

    def _segment(self, image: GeoRasterImage, plan: ScenePlan) -> tuple[list[ProbabilityStitcher], int]:
        """Run every (window, query) pair through the segmenter, each window read once."""
        stitchers = [ProbabilityStitcher.for_region(p.region, ramp=plan.overlap) for p in plan.queries]
        texts = [p.query.text for p in plan.queries]
        size = self.segmenter.input_size
        reads: dict[int, tuple[WindowRead, np.ndarray]] = {}
        batches = batch_pairs(plan.pairs(), self.max_pairs_per_call)
        for batch in batches:
            for pair in batch:
                if pair.window not in reads:
                    window = plan.windows[pair.window]
                    read = image.read(window)
                    reads[pair.window] = (read, tile_input(read, window))
            inputs = np.stack([reads[pair.window][1] for pair in batch])
            probabilities = np.asarray(self.segmenter.segment(inputs, [texts[p.query] for p in batch]))
            if probabilities.shape != (len(batch), size, size):
                raise RuntimeError(
                    f"segmenter {self.segmenter.model_name} returned shape {probabilities.shape} "
                    f"for {len(batch)} tiles of {size}x{size}"
                )
            for pair, probability in zip(batch, probabilities, strict=True):
                stitchers[pair.query].add(
                    plan.windows[pair.window], probability, valid=reads[pair.window][0].valid
                )
            # Pairs are window-major: only the last window of a batch can have pairs in the next one.
            last = batch[-1].window
            reads = {last: reads[last]}
        return stitchers, len(batches)

    def _detections(
        self,
        scene: SceneMessage,
        item: Mapping[str, Any],
        part: QueryTiles,
        stitcher: ProbabilityStitcher,
        image: GeoRasterImage,
        *,
        acquired: datetime | None,
        detected_at: datetime,
    ) -> list[Detection]:
        """Threshold, vectorize (CRS84, clipped to the AOI) and label one query's stitched map."""
        query = part.query
        stitched = stitcher.result()
        valid = stitched.covered if part.region.mask is None else stitched.covered & part.region.mask
        features = vectorize_probability(
            np.where(valid, stitched.probability, np.float32(np.nan)),
            image.crs,
            image.transform @ Affine.translation(stitched.col_off, stitched.row_off),
            threshold=query.threshold,
            valid=valid,
            min_area_m2=query.min_area_m2,
            aoi=query.geometry,
        )["features"]
        previous = [shape(g) for g in self.store.previous_geometries(query.id)]
        statuses = change_statuses([shape(f["geometry"]) for f in features], previous)
        model = self.segmenter.model_name
        # Scores are blends of float32 probabilities: rounding may overshoot [0, 1] by an ulp.
        return [
            Detection(
                id=detection_id(
                    query.id, query.version, scene.collection, scene.item_id, model, f["geometry"]
                ),
                query_id=query.id,
                query_version=query.version,
                query_text=query.text,
                tenant=query.tenant,
                collection=scene.collection,
                item_id=scene.item_id,
                acquired=acquired,
                detected_at=detected_at,
                model=model,
                score=min(max(f["properties"]["score"], 0.0), 1.0),
                score_max=min(max(f["properties"]["score_max"], 0.0), 1.0),
                area_m2=f["properties"]["area_m2"],
                pixel_count=f["properties"]["pixel_count"],
                geometry=f["geometry"],
                change=status,
                item_href=self_href(item),
            )
            for f, status in zip(features, statuses, strict=True)
        ]

    def _write(self, scene: SceneMessage, query: Query, detections: list[Detection]) -> QueryResult:
        model = self.segmenter.model_name
        result = self.store.write_scene(query, scene.collection, scene.item_id, model, detections)
        if result.written:
            log.info("scene %s: query %s: stored %d detections", scene.key, query.id, len(detections))
            return QueryResult(query, tuple(detections), written=True)
        # Another dispatcher stored this scene first: its detections are the ones delivered.
        stored = self.store.scene_detections(query, scene.collection, scene.item_id, model) or []
        log.info("scene %s: query %s: stored concurrently elsewhere; keeping those", scene.key, query.id)
        return QueryResult(query, tuple(stored), written=False)
