"""Kafka topic names."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Topics:
    """The topics of one deployment; ``prefix`` lets several deployments share a cluster."""

    prefix: str = ""

    @property
    def scenes(self) -> str:
        """New STAC items to process (key ``collection/item_id``, value a SceneMessage)."""
        return f"{self.prefix}scenes"

    @property
    def detections(self) -> str:
        """Delivered detections (key ``query_id``, value a Detection as a GeoJSON Feature)."""
        return f"{self.prefix}detections"

    @staticmethod
    def dead_letter(topic: str) -> str:
        """The dead-letter topic of an input topic."""
        return f"{topic}.dlq"

    def all(self) -> list[str]:
        """Every topic a deployment needs, dead-letter topics included."""
        return [self.scenes, self.detections, self.dead_letter(self.scenes)]
