"""One scene for its matching queries: decide which pixels the served model sees (`choose_scene_input` for
its input contract: the asset(s) and bands, the GSD; a refusal is a PermanentSceneError with its code),
read them through the scene's source access (signing, S3 options, headers) on a grid at the model's GSD
(`services.scenes.scene_image`), only the windows over scene ∩ AOIs, run danet's multi-query
predictor (`danet.predict.predict_queries`: shared windows, (tile, query) pairs in bounded batches, overlap
blending per query) with the segmenter service as its model, vectorize each query's map into CRS84 polygons
clipped to the AOI, and store the detections idempotently. Tiles go to the segmenter as uint8 RGB.

A query whose result for (query version, scene, model) is already stored is not segmented again: its
stored detections are returned instead, so a redelivered scene costs no model time and writes nothing.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cached_property
from typing import Any

import numpy as np
from shapely.geometry import shape

from danet.geo import PredictionImage, TileWindow, WindowRead, vectorize_probability
from danet.predict import MultiQueryPrediction, PredictionMap, predict_queries
from services.contracts import Detection, Query, SceneMessage, detection_id
from services.dispatcher.change import change_statuses
from services.dispatcher.matching import scene_facts
from services.dispatcher.planning import QueryTiles, ScenePlan, plan_scene
from services.scenes import (
    PermanentSceneError,
    SceneInputs,
    classified_asset_errors,
    is_local,
    self_href,
)
from services.scenes.assets import asset_href
from services.scenes.scene_image import open_scene_image
from services.scenes.selection import ModelInput, SceneInputDecision, choose_scene_input
from services.segmenter import Segmenter
from services.settings import DispatcherSettings, SourceSettings
from services.store import DetectionStore

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class QueryResult:
    """A query's detections in one scene; `written` is False when they had been stored before."""

    query: Query
    detections: tuple[Detection, ...]
    written: bool


@dataclass(frozen=True)
class SceneReport:
    """What processing a scene did: per-query results and the work it took.

    `pairs` counts the (window, query) pairs sent to the segmenter; windows without any valid pixel
    (nodata, NaN) are read but never segmented (`nodata_windows`). `bands` says how the image's bands
    became RGB.
    """

    results: tuple[QueryResult, ...]
    asset_href: str | None = None
    bands: str | None = None
    windows_read: int = 0
    nodata_windows: int = 0
    pixels_read: int = 0
    pairs: int = 0
    segment_calls: int = 0


class SceneProcessor:
    """Segments one scene for its matching queries and stores the results."""

    def __init__(
        self,
        segmenter: Segmenter,
        store: DetectionStore,
        *,
        inputs: SceneInputs,
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
        self.inputs = inputs
        self.max_pairs_per_call = max_pairs_per_call
        self.max_read_pixels = max_read_pixels
        self.clock = clock or (lambda: datetime.now(UTC))

    @classmethod
    def from_settings(
        cls,
        segmenter: Segmenter,
        store: DetectionStore,
        settings: DispatcherSettings,
        sources: Sequence[SourceSettings] = (),
    ) -> SceneProcessor:
        """A processor configured by the dispatcher settings, reading `sources` (``watcher.sources``) as
        they say (signing, S3 options, headers)."""
        return cls(
            segmenter,
            store,
            inputs=SceneInputs.from_settings(settings, sources),
            overlap=settings.tile_overlap,
            max_pairs_per_call=settings.max_pairs_per_call,
            max_read_pixels=settings.max_read_pixels,
        )

    @cached_property
    def model_input(self) -> ModelInput:
        """The served model's input contract (asked of the segmenter once, at the first scene)."""
        return ModelInput.from_contract(self.segmenter.input_contract)

    def decide(self, item: Mapping[str, Any]) -> SceneInputDecision:
        """Which channels of the item the served model sees (`choose_scene_input` for its contract)."""
        return choose_scene_input(item, self.model_input, self.inputs.asset_keys)

    def process(self, scene: SceneMessage, item: Mapping[str, Any], queries: Sequence[Query]) -> SceneReport:
        """Detections of every query in `queries` (already matched) for this scene, stored once.

        Raises PermanentSceneError for inputs no retry can fix, TransientSceneError (or another
        exception) for failures worth retrying (`services.dispatcher.failures`).
        """
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

        decision = self.decide(item)
        if not decision.accepted:
            raise PermanentSceneError(decision.code or "refused", decision.reason)
        hrefs = {key: asset_href(item, key) for key in decision.assets}
        for key, href in hrefs.items():
            self.inputs.policy.check(href, f"assets.{key}.href")
        access = self.inputs.access(source=scene.source, item_href=self_href(item))
        opened = open_scene_image(
            decision,
            hrefs,
            self.model_input,
            policy=self.inputs.policy,
            access=access,
            timeout_s=self.inputs.timeout_s,
        )
        with opened as scene_image:
            image, href, bands = scene_image.image, scene_image.image.path, scene_image.bands
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
            work = self._segment(image, plan, href)
            acquired = scene_facts(scene.collection, item).start
            detected_at = self.clock()
            for part, prediction in zip(plan.queries, work.maps, strict=True):
                detections = self._detections(
                    scene, item, part, prediction, image, acquired=acquired, detected_at=detected_at
                )
                results.append(self._write(scene, part.query, detections))
        return SceneReport(
            tuple(results),
            asset_href=href,
            bands=bands,
            windows_read=work.windows_read,
            nodata_windows=work.nodata_windows,
            pixels_read=plan.read_pixels,
            pairs=work.pairs,
            segment_calls=work.calls,
        )

    def _segment(self, image: PredictionImage, plan: ScenePlan, href: str) -> MultiQueryPrediction:
        """Every (window, query) pair with valid pixels through the segmenter, each window read once."""
        texts = [p.query.text for p in plan.queries]
        local = is_local(href)

        def read(window: TileWindow) -> WindowRead:
            with classified_asset_errors(href, local=local):
                return image.read(window)

        def segment(tiles: np.ndarray, queries: Sequence[int]) -> np.ndarray:
            return self.segmenter.segment(tiles, [texts[q] for q in queries])

        return predict_queries(
            plan.tiles,
            read,
            segment,
            fill=self.segmenter.input_contract.fill_uint8,
            max_pairs=self.max_pairs_per_call,
        )

    def _detections(
        self,
        scene: SceneMessage,
        item: Mapping[str, Any],
        part: QueryTiles,
        prediction: PredictionMap,
        image: PredictionImage,
        *,
        acquired: datetime | None,
        detected_at: datetime,
    ) -> list[Detection]:
        """Threshold, vectorize (CRS84, clipped to the AOI) and label one query's stitched map."""
        query = part.query
        features = vectorize_probability(
            prediction.probability,
            image.crs,
            prediction.canvas_transform(image.transform),
            threshold=query.threshold,
            valid=prediction.valid,
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
