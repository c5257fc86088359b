"""Scenes a query matched that were not segmented: the dispatcher's refusal of the scene's input
(``not_optical``, ``gsd_out_of_range``, ``no_image_asset``) or another permanent failure, with its reason,
as ``GET /queries/{id}`` shows them."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field


class SkippedScene(BaseModel):
    """One scene the query matched and the dispatcher dead-lettered."""

    collection: str
    item_id: str
    code: str = Field(description="machine code, as in the dead-letter topic's ``error`` header")
    reason: str = Field(description="why, in words")
    at: datetime = Field(description="when the dispatcher gave up on the scene")


class SkippedScenes(BaseModel):
    """The scenes a query matched but could not use: counts by code and the most recent ones."""

    total: int = Field(0, ge=0)
    counts: dict[str, int] = Field(default_factory=dict, description="skipped scenes by code")
    recent: list[SkippedScene] = Field(default_factory=list, description="the latest, newest first")
