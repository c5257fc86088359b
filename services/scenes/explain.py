"""``lookout explain``: what the dispatcher would do with a STAC item, without reading a pixel.

What a user runs when a scene "did nothing": the input decision for the configured model (which asset
and bands, at which GSD and resampling, or the named reason for refusing), whether the image URLs may be
read at all (``dispatcher.asset_schemes``/``asset_hosts``), whether reads would be signed, and, for a
query, whether the scene concerns it (collection, AOI, time window, cloud cover).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from services.scenes.assets import asset_href, self_href
from services.scenes.failures import PermanentSceneError
from services.scenes.inputs import SceneInputs
from services.scenes.selection import ModelInput, choose_scene_input


def explain_item(
    item: Mapping[str, Any],
    inputs: SceneInputs,
    model: ModelInput,
    *,
    source: str = "",
    base: str | None = None,
) -> dict[str, Any]:
    """The decision for ``item`` as ``lookout explain --json`` prints it (see the module docstring).

    ``source`` is the STAC API the item came from (for its signing/S3/header options); ``base`` is where
    the item was read from (relative hrefs resolve against it).
    """
    decision = choose_scene_input(item, model, inputs.asset_keys)
    access = inputs.access(source=source, item_href=base or self_href(item))
    result = decision.as_json()
    result["source"] = access.name or None
    try:
        hrefs = [asset_href(item, key, base) for key in decision.assets]
        for key, href in zip(decision.assets, hrefs, strict=True):
            inputs.policy.check(href, f"assets.{key}.href")
    except PermanentSceneError as refused:  # the dispatcher would refuse to read it, for this reason
        result["signed"] = False
        return result | {"decision": "refuse", "code": refused.code, "reason": str(refused)}
    result["signed"] = access.signing != "none" and any(h.startswith(("http://", "https://")) for h in hrefs)
    return result


def format_explanation(result: Mapping[str, Any]) -> str:
    """The decision in lines, for a terminal."""
    lines = [f"decision: {result['decision']}", f"reason:   {result['reason']}"]
    if result.get("bands"):
        lines.append(f"bands:    {', '.join(result['bands'])}")
    if result.get("gsd_m") is not None:
        resample = result.get("resample")
        lines.append(f"gsd:      {result['gsd_m']:g} m" + (f" (resampled x{resample:g})" if resample else ""))
    lines.append(f"signed:   {'yes' if result.get('signed') else 'no'}")
    match = result.get("query")
    if match is not None:
        verdict = "matches" if match["matches"] else f"does not match: {match['reason']}"
        lines.append(f"query:    {match['id']} {verdict}")
    return "\n".join(lines)
