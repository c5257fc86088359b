"""Bytes read for a small AOI over a large scene ÷ the scene's size: the dispatcher's range reads.

Writes one large RGB COG (the SpaceNet Atlanta tile mosaicked N x N with varied radiometry, written by
the service's own COG writer: 256 px DEFLATE blocks with overviews), serves it over HTTP with Range
support (Starlette, counting response bytes), and lets the real ``SceneProcessor`` process it for one
standing query whose square AOI covers a given share of the scene. Prints, per AOI share, the share of
pixels in the windows read (overlapping windows count twice) and of the file's bytes actually read.
Bytes should track the AOI's share (plus block granularity, tile overlap and the COG header), not the
scene's size.

No Ray is involved; an embedded Redis stores the detections:

    .venv/bin/python -m benchmarks.bytes_read [--repeat 5] [--shares 0.1 1 5 20]
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import uuid
from datetime import UTC, datetime
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import numpy as np
import pystac
import shapely
from affine import Affine
from pyproj import CRS, Transformer
from shapely.geometry import box, mapping

from danet.geo import raster_footprint_crs84
from services.adapters.redis_client import make_redis
from services.contracts import Query, QueryCreate, RedisKeys, SceneMessage
from services.dispatcher import SceneProcessor
from services.embedded.stack import LocalStack
from services.settings import DispatcherSettings
from services.simulator.cog import write_rgb_cog
from services.simulator.imagery import load_scene, spacenet_tile, vary_radiometry
from services.store import DetectionStore, QueryStore
from tests.support.http_files import serve_folder
from tests.support.segmenters import tiny_segmenter


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--repeat", type=int, default=5, help="mosaic the 900 px tile N x N")
    parser.add_argument(
        "--shares", type=float, nargs="+", default=[0.1, 1.0, 5.0, 20.0], help="AOI area, %% of the scene"
    )
    return parser.parse_args(argv)


def write_mosaic(path: Path, repeat: int) -> tuple[Path, Affine, str, tuple[int, int]]:
    """The SpaceNet tile repeated ``repeat`` x ``repeat`` times (radiometry varied per copy) as a COG."""
    scene = load_scene(spacenet_tile())
    rows = [
        np.concatenate([vary_radiometry(scene.rgb, seed=r * repeat + c) for c in range(repeat)], axis=2)
        for r in range(repeat)
    ]
    mosaic = np.concatenate(rows, axis=1)
    write_rgb_cog(path, mosaic, scene.crs, scene.transform)
    return path, scene.transform, scene.crs.to_string(), mosaic.shape[1:]


def square_aoi(share: float, transform: Affine, crs: str, shape: tuple[int, int]) -> dict:
    """A CRS84 square centred on the scene covering ``share`` % of its area."""
    height, width = shape
    side = np.sqrt(share / 100 * height * width)
    rows = (height - side) / 2, (height + side) / 2
    cols = (width - side) / 2, (width + side) / 2
    (x0, y0), (x1, y1) = transform * (cols[0], rows[0]), transform * (cols[1], rows[1])
    to_lonlat = Transformer.from_crs(crs, "OGC:CRS84", always_xy=True)
    square = box(min(x0, x1), min(y0, y1), max(x0, x1), max(y0, y1)).segmentize(10.0)
    return mapping(shapely.transform(square, lambda xy: np.column_stack(to_lonlat.transform(*xy.T))))


def scene_item(href: str, transform: Affine, crs: str, shape: tuple[int, int], item_id: str) -> dict:
    """A STAC item of the mosaic (footprint from its grid) with the COG as ``visual``."""
    footprint = raster_footprint_crs84(CRS.from_user_input(crs), transform, shape)
    return {
        "type": "Feature",
        "stac_version": "1.1.0",
        "id": item_id,
        "collection": "bench",
        "geometry": mapping(footprint),
        "bbox": list(footprint.bounds),
        "properties": {"datetime": datetime.now(UTC).isoformat()},
        "assets": {"visual": {"href": href, "type": str(pystac.MediaType.COG)}},
        "links": [],
    }


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and print the figures."""
    args = parse_args(argv)
    segmenter = tiny_segmenter("danet-tiny@bench", batch_size=32)
    with tempfile.TemporaryDirectory(prefix="lookout-bytes-") as folder, LocalStack(["redis"]) as stack:
        root = Path(folder)
        cog, transform, crs, shape = write_mosaic(root / "mosaic.tif", args.repeat)
        size = cog.stat().st_size
        redis_client = make_redis(stack.connected_settings().redis)
        keys = RedisKeys(prefix=f"bytes-{uuid.uuid4().hex[:8]}:")
        queries, detections = QueryStore(redis_client, keys), DetectionStore(redis_client, keys)
        processor = SceneProcessor.from_settings(segmenter, detections, DispatcherSettings())
        print(
            f"scene: {shape[1]} x {shape[0]} px RGB uint8 COG, {size / 2**20:.1f} MiB "
            f"(256 px DEFLATE blocks + overviews); model input 64 px, overlap 16 px"
        )
        header = ("AOI share", "window px", "bytes read", "windows", "HTTP responses")
        print("  {:>9} {:>12} {:>11} {:>8} {:>15}".format(*header))
        with serve_folder(root) as (base_url, served):
            for share in args.shares:
                # Each measurement reads its own copy: GDAL caches byte ranges per URL for the process.
                name = f"mosaic-{share:g}.tif"
                shutil.copy(cog, root / name)
                query: Query = queries.create(
                    QueryCreate(
                        text="all buildings",
                        aoi=square_aoi(share, transform, crs, shape),
                        collections=["bench"],
                        threshold=0.5,
                    )
                )
                item = scene_item(f"{base_url}/{name}", transform, crs, shape, f"mosaic-{share:g}")
                scene = SceneMessage(
                    collection="bench", item_id=item["id"], item=item, observed_at=datetime.now(UTC)
                )
                bytes_before, responses_before = served["bytes"], served["responses"]
                report = processor.process(scene, item, [query])
                read = served["bytes"] - bytes_before
                print(
                    f"  {share:8.1f}% {report.pixels_read / (shape[0] * shape[1]):12.1%} {read / size:11.1%} "
                    f"{report.windows_read:8d} {served['responses'] - responses_before:15d}"
                )
        redis_client.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
