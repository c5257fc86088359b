"""The shipped checkpoint described as a STAC Item with the Machine Learning Model extension."""

from __future__ import annotations

import json
from pathlib import Path

import pystac

from danet.checkpoint import read_checkpoint
from danet.model_item import MLM_SCHEMA, model_item

CHECKPOINTS = Path(__file__).resolve().parents[2] / "danet" / "checkpoints"


def test_item_describes_the_checkpoint_with_the_required_mlm_fields():
    checkpoint = CHECKPOINTS / "danet-lite-v1.pt"
    item = model_item(checkpoint, item_id="danet-lite-v1", gsd_m=0.5, description="test", metrics={"x": 1.0})
    parsed = pystac.Item.from_dict(json.loads(json.dumps(item)))
    assert MLM_SCHEMA in parsed.stac_extensions
    props = parsed.properties
    for field in ("mlm:name", "mlm:architecture", "mlm:tasks", "mlm:input", "mlm:output"):
        assert props[field], field
    info, _ = read_checkpoint(checkpoint)
    size = info.config.input_size
    assert props["mlm:input"][0]["input"]["shape"] == [-1, 3, size, size]
    assert props["mlm:output"][0]["result"]["shape"] == [-1, 2, size, size]
    asset = parsed.assets["weights"]
    assert "mlm:model" in asset.roles
    assert asset.extra_fields["file:size"] == checkpoint.stat().st_size
    assert props["gsd"] == 0.5
    assert props["danet:metrics"] == {"x": 1.0}
