"""The segmenter: DANet behind one small interface, in process or on Ray Serve."""

from services.segmenter.protocol import LocalSegmenter, Segmenter

__all__ = ["LocalSegmenter", "Segmenter"]
