"""The message on the ``scenes`` topic: one new STAC item, never pixels; and how an item's times read."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator
from pystac.utils import str_to_datetime

SCENE_SCHEMA_VERSION = 1


def item_time(properties: Mapping[str, Any], field: str) -> datetime | None:
    """``properties[field]`` of a STAC item (``datetime``, ``start_datetime``, ...) as an aware UTC
    datetime; None when absent, null or empty. The one parser of item times (the watcher's and dispatcher's).

    RFC 3339, read by pystac (lower-case ``t``/``z`` and any number of fractional digits are accepted);
    a value without an offset is read as UTC rather than local time.

    Raises:
        ValueError: the value is not a date-time (the message names the field).
    """
    value = properties.get(field)
    if value is None or value == "":
        return None
    try:
        parsed = str_to_datetime(str(value))
    except ValueError as exc:
        raise ValueError(f"properties.{field}: {value!r} is not an RFC 3339 date-time ({exc})") from None
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


class SceneMessage(BaseModel):
    """A new STAC item seen by the watcher: the item JSON itself, or an href to it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    schema_version: Literal[1] = SCENE_SCHEMA_VERSION
    collection: str = Field(min_length=1)
    item_id: str = Field(min_length=1)
    item: dict[str, Any] | None = None
    href: str | None = None
    source: str = Field("", description="The STAC API URL or static catalog the item came from.")
    observed_at: datetime

    @model_validator(mode="after")
    def _item_or_href(self) -> SceneMessage:
        if self.item is None and not self.href:
            raise ValueError("a scene message needs the STAC item or an href to it")
        if self.item is not None and self.item.get("id") not in (None, self.item_id):
            raise ValueError(f"item.id {self.item.get('id')!r} differs from item_id {self.item_id!r}")
        return self

    @property
    def key(self) -> str:
        """The Kafka key: ``collection/item_id`` (ordering per item)."""
        return f"{self.collection}/{self.item_id}"

    def to_bytes(self) -> bytes:
        """JSON bytes for the topic."""
        return self.model_dump_json().encode()

    @classmethod
    def from_bytes(cls, data: bytes) -> SceneMessage:
        """Parse a topic value (raises pydantic.ValidationError on a malformed message)."""
        return cls.model_validate_json(data)
