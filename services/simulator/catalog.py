"""A self-contained static STAC catalog that items are appended to while readers poll it.

Layout (pystac's best-practice layout, relative links):
``catalog.json``, ``<collection>/collection.json``, ``<collection>/<item>/<item>.json`` (+ the item's
assets next to it). Each append writes the item file, then the collection file, each by atomic rename:
a reader sees the catalog before or after the append, never half of it.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pystac

CATALOG_FILE = "catalog.json"


def _write_json_atomically(path: Path, data: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".part")
    partial.write_text(json.dumps(data, indent=1))
    os.replace(partial, path)


def _widen_extent(collection: pystac.Collection, item: pystac.Item) -> None:
    """Grow the collection's spatial and temporal extent to include the item."""
    if item.bbox is not None:
        west, south, east, north = collection.extent.spatial.bboxes[0][:4]
        bbox = item.bbox
        collection.extent.spatial.bboxes[0] = [
            min(west, bbox[0]), min(south, bbox[1]), max(east, bbox[2]), max(north, bbox[3])
        ]  # fmt: skip
    acquired = item.datetime or item.common_metadata.start_datetime
    if acquired is not None:
        start, end = collection.extent.temporal.intervals[0]
        collection.extent.temporal.intervals[0] = [
            acquired if start is None else min(start, acquired),
            acquired if end is None else max(end, acquired),
        ]


class StaticCatalogWriter:
    """Appends items to one collection of a self-contained static catalog under ``root``.

    ``collection`` is the template used when the catalog does not hold that collection yet; an existing
    catalog is reopened and appended to (numbering continues after a restart).
    """

    def __init__(self, root: Path, collection: pystac.Collection, *, catalog_description: str) -> None:
        self.root = Path(root).resolve()
        self.catalog_path = self.root / CATALOG_FILE
        self.collection_id = collection.id
        if self.catalog_path.is_file():
            catalog = pystac.Catalog.from_file(str(self.catalog_path))
            if catalog.get_child(collection.id) is not None:
                return
        else:
            catalog = pystac.Catalog(id=f"{collection.id}-catalog", description=catalog_description)
        catalog.add_child(collection)
        catalog.normalize_hrefs(str(self.root))
        catalog.save(pystac.CatalogType.SELF_CONTAINED)

    def _collection(self) -> pystac.Collection:
        """The collection as stored now (re-read each time: the files are the state)."""
        child = pystac.Catalog.from_file(str(self.catalog_path)).get_child(self.collection_id)
        if not isinstance(child, pystac.Collection):
            raise FileNotFoundError(f"{self.catalog_path}: collection {self.collection_id} is missing")
        return child

    def item_dir(self, item_id: str) -> Path:
        """The folder of an item's JSON and its assets."""
        return self.root / self.collection_id / item_id

    def item_count(self) -> int:
        """How many items the collection holds."""
        return len(self._collection().get_item_links())

    def append(self, item: pystac.Item) -> Path:
        """Add an item (its assets already written) and save; returns the item's JSON path."""
        item_path = self.item_dir(item.id) / f"{item.id}.json"
        if item_path.exists():
            raise ValueError(f"item {item.id}: already in collection {self.collection_id} ({item_path})")
        collection = self._collection()
        collection.add_item(item)
        _widen_extent(collection, item)
        item.set_self_href(str(item_path))
        _write_json_atomically(item_path, item.to_dict(include_self_link=False, transform_hrefs=True))
        _write_json_atomically(
            self.root / self.collection_id / "collection.json",
            collection.to_dict(include_self_link=False, transform_hrefs=True),
        )
        return item_path
