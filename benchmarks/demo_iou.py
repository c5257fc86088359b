"""How well the demo's sample query outlines the SpaceNet houses: IoU of its detections vs footprints.

`lookout up` (``bash deploy/up.sh``) registers the standing query "all buildings" over the SpaceNet
Atlanta tile and publishes simulated scenes of it. This script reads the query's detections from the
API (GeoJSON, CRS84), takes those of the newest scene, rasterises them onto the tile's pixel grid and
compares them with the tile's 43 labelled building footprints (solaris ``sample_inst_mask.tif``), inside
the query's AOI. It prints the IoU over the AOI and over the block of columns 600-899 that DANet-lite (v2, v3)
never saw in training (`danet.datagen.real_regions`). From another terminal while the demo runs:

    bash deploy/lookout.sh query list                    # the sample query's id
    bash deploy/netns.sh .venv/bin/python -m benchmarks.demo_iou --query QUERY_ID
"""

from __future__ import annotations

import argparse
import json
from typing import Any

import httpx
import numpy as np
import rasterio
import shapely
from pyproj import Transformer
from rasterio.features import rasterize
from shapely.geometry import mapping, shape

from danet.datagen.real_regions import SPACENET_HELDOUT_COLUMNS
from danet.packages import package_path
from services.simulator.imagery import spacenet_tile

FOOTPRINTS = "data/sample_inst_mask.tif"


def iou(pred: np.ndarray, truth: np.ndarray) -> float:
    """|pred ∧ truth| / |pred ∨ truth| (0 when both are empty)."""
    union = np.logical_or(pred, truth).sum()
    return float(np.logical_and(pred, truth).sum() / union) if union else 0.0


def fetch(api: str, path: str, tenant: str) -> dict[str, Any]:
    """GET a JSON document from the Lookout API."""
    response = httpx.get(f"{api}{path}", headers={"X-Lookout-Tenant": tenant}, timeout=30)
    response.raise_for_status()
    return response.json()


def main() -> None:
    """Print the IoU figures of the sample query's newest scene."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--api", default="http://127.0.0.1:8080")
    parser.add_argument("--query", required=True, help="the sample query's id (lookout query list)")
    parser.add_argument("--tenant", default="default")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args()

    query = fetch(args.api, f"/queries/{args.query}", args.tenant)
    features = fetch(args.api, f"/queries/{args.query}/detections?limit=1000", args.tenant)["features"]
    with rasterio.open(spacenet_tile()) as tile:
        crs, grid, size = tile.crs, tile.transform, (tile.height, tile.width)
    with rasterio.open(package_path("solaris", FOOTPRINTS)) as masks:
        instances = masks.read() > 0  # one band per building
    truth = instances.any(axis=0)
    transformer = Transformer.from_crs("OGC:CRS84", crs, always_xy=True)

    def to_tile(geometry: dict[str, Any]) -> dict[str, Any]:
        def project(xy: np.ndarray) -> np.ndarray:
            return np.column_stack(transformer.transform(xy[:, 0], xy[:, 1]))

        return mapping(shapely.transform(shape(geometry), project))

    inside = rasterize([(to_tile(query["aoi"]), 1)], out_shape=size, transform=grid).astype(bool)
    items = sorted({f["properties"]["item_id"] for f in features})
    newest = None
    if features:
        newest = max(features, key=lambda f: f["properties"].get("acquired") or "")["properties"]["item_id"]
    shapes = [(to_tile(f["geometry"]), 1) for f in features if f["properties"]["item_id"] == newest]
    pred = rasterize(shapes, out_shape=size, transform=grid).astype(bool) if shapes else np.zeros(size, bool)
    heldout = np.zeros(size, dtype=bool)
    heldout[:, SPACENET_HELDOUT_COLUMNS] = True
    figures = {
        "query": args.query,
        "text": query["text"],
        "scenes_with_detections": len(items),
        "scene": newest,
        "polygons": len(shapes),
        "footprints_in_aoi": int((instances & inside).any(axis=(1, 2)).sum()),
        "iou_aoi": iou(pred & inside, truth & inside),
        "iou_heldout_block": iou(pred & inside & heldout, truth & inside & heldout),
    }
    if args.json:
        print(json.dumps(figures, indent=2))
        return
    for key, value in figures.items():
        print(f"{key:>24}: {value:.3f}" if isinstance(value, float) else f"{key:>24}: {value}")


if __name__ == "__main__":
    main()
