"""A DANet checkpoint described as a STAC Item with the Machine Learning Model extension (``mlm:``, v1.5.0).

Everything comes from the checkpoint's own record (`danet.checkpoint.CheckpointInfo`): architecture and
preset, parameter counts, the pretrained towers it builds on (package + SHA-256), library versions,
the input contract (size, normalisation, ground sample distance) and the metrics the model card reports.
A catalog of models (or a Lookout deployment choosing one) can then search and run it like any asset.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

from danet.checkpoint import read_checkpoint

MLM_SCHEMA = "https://stac-extensions.github.io/mlm/v1.5.0/schema.json"
FILE_SCHEMA = "https://stac-extensions.github.io/file/v2.1.0/schema.json"
# The whole world: a referring model is not tied to a place (its training imagery is named in the card).
WORLD = {"type": "Polygon", "coordinates": [[[-180, -90], [180, -90], [180, 90], [-180, 90], [-180, -90]]]}


def model_item(
    checkpoint: Path,
    *,
    item_id: str,
    gsd_m: float | None = None,
    description: str,
    metrics: dict[str, Any] | None = None,
    card: str | None = None,
) -> dict[str, Any]:
    """The STAC Item (a dict, JSON-ready) of a checkpoint; ``checkpoint`` is referenced by its file name.

    Size and normalisation come from the checkpoint's input contract (``config.input``); so does the GSD
    unless ``gsd_m`` is given.

    Raises:
        ValueError: no ``gsd_m`` given and the checkpoint's contract states none.
    """
    info, tensors = read_checkpoint(checkpoint)
    cfg = info.config
    contract = cfg.input
    size = contract.size
    gsd_m = contract.gsd_m if gsd_m is None else gsd_m
    if gsd_m is None:
        raise ValueError(f"gsd_m: {checkpoint} states no input.gsd_m, so the GSD must be given")
    trained = sum(t.numel() for t in tensors.values() if t.is_floating_point())
    digest = hashlib.sha256(Path(checkpoint).read_bytes()).hexdigest()
    properties: dict[str, Any] = {
        "datetime": None,
        "start_datetime": "1900-01-01T00:00:00Z",
        "end_datetime": "9999-12-31T23:59:59Z",
        "description": description,
        "mlm:name": item_id,
        "mlm:architecture": f"DANet ({cfg.backbone.kind} backbone, LAVT skeleton, reconstructed alignments)",
        "mlm:tasks": ["segmentation", "semantic-segmentation"],
        "mlm:framework": "pytorch",
        "mlm:framework_version": info.versions.get("torch", ""),
        "mlm:memory_size": Path(checkpoint).stat().st_size,
        "mlm:total_parameters": trained,
        "mlm:pretrained": True,
        "mlm:pretrained_source": ", ".join(f"{k}: sha256 {v}" for k, v in sorted(info.pretrained.items())),
        "mlm:batch_size_suggestion": cfg.optim.batch_size,
        "mlm:accelerator": "amd64",
        "mlm:accelerator_constrained": False,
        "mlm:input": [
            {
                "name": "RGB image tile",
                "bands": ["red", "green", "blue"],
                "input": {
                    "shape": [-1, 3, size, size],
                    "dim_order": ["batch", "bands", "height", "width"],
                    "data_type": "float32",
                },
                "description": (
                    "RGB scaled to [0, 1], then z-score with the statistics below; the text input is a "
                    f"referring expression of up to {cfg.text.max_tokens} word pieces (BERT tokenizer)."
                ),
                "value_scaling": [
                    {"type": "z-score", "mean": m * 255, "stddev": s * 255}
                    for m, s in zip(contract.mean, contract.std, strict=True)
                ],
                "resize_type": "interpolation-linear",
            }
        ],
        "mlm:output": [
            {
                "name": "referent logits",
                "tasks": ["semantic-segmentation"],
                "result": {
                    "shape": [-1, 2, size, size],
                    "dim_order": ["batch", "channel", "height", "width"],
                    "data_type": "float32",
                },
                "classification:classes": [
                    {"value": 0, "name": "background", "description": "not what the expression names"},
                    {"value": 1, "name": "referent", "description": "what the expression names"},
                ],
                "post_processing_function": None,
            }
        ],
        "gsd": gsd_m,
        "danet:preset": cfg.name,
        "danet:versions": info.versions,
        "danet:step": info.step,
    }
    if metrics:
        properties["danet:metrics"] = metrics
    links = [{"rel": "describedby", "href": card, "type": "text/markdown"}] if card else []
    return {
        "type": "Feature",
        "stac_version": "1.1.0",
        "stac_extensions": [MLM_SCHEMA, FILE_SCHEMA],
        "id": item_id,
        "geometry": WORLD,
        "bbox": [-180, -90, 180, 90],
        "properties": properties,
        "links": links,
        "assets": {
            "weights": {
                "href": f"./{Path(checkpoint).name}",
                "type": "application/octet-stream; application=pytorch",
                "title": f"{item_id} (danet-checkpoint, kind {info.kind})",
                "roles": ["mlm:model", "mlm:weights"],
                "mlm:artifact_type": "torch.save",
                "file:size": Path(checkpoint).stat().st_size,
                "file:checksum": "1220" + digest,  # multihash: sha2-256, 32 bytes
            }
        },
    }
