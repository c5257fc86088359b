"""The HTTP API (FastAPI): queries CRUD, detections, SSE stream, OGC API - Features, health, metrics;
and the webhook dispatcher that delivers each query's detections."""

from services.api.app import create_app
from services.api.webhooks import WebhookDispatcher

__all__ = ["WebhookDispatcher", "create_app"]
