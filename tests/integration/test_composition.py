"""The composition root against the real servers: every component built from one settings object shares
its namespace (Redis keys, Kafka topics) and its retention, and the API shares its metrics with the
webhook deliveries, as ``lookout up``, the component commands, the benchmarks and the end-to-end test
get them."""

import uuid
from datetime import timedelta

import httpx

from services.composition import Composition
from services.contracts import QueryCreate
from services.settings import NamespaceSettings, StoreSettings
from tests.support.segmenters import tiny_segmenter

SQUARE = {"type": "Polygon", "coordinates": [[[10, 50], [10.1, 50], [10.1, 50.1], [10, 50.1], [10, 50]]]}


def test_every_component_is_built_from_the_same_settings(stack_settings):
    tag = uuid.uuid4().hex[:8]
    settings = stack_settings.model_copy(
        update={
            "namespace": NamespaceSettings(topic_prefix=f"comp{tag}-", redis_prefix=f"comp-{tag}:"),
            "store": StoreSettings(detection_retention_days=30),
            "api": stack_settings.api.model_copy(update={"port": 0, "collections": None}),
        }
    )
    keys, topics, retention = settings.redis_keys(), settings.topics(), timedelta(days=30)
    composition = Composition(settings)
    stores = composition.stores()
    watcher = composition.watcher()
    dispatcher = composition.dispatcher(tiny_segmenter("danet-tiny@composition"))
    app, webhooks = composition.api_with_webhooks(components={"watcher": watcher.status})
    try:
        assert watcher.topics == dispatcher.topics == topics
        layouts = [stores.queries.keys, watcher.queries.keys, dispatcher.queries.keys, webhooks.keys]
        assert layouts == [keys] * 4
        assert app.state.context.keys == keys
        assert stores.detections.retention == dispatcher.processor.store.retention == retention
        assert dispatcher.publisher.marker_ttl_ms == retention.total_seconds() * 1000
        assert webhooks.metrics is app.state.context.metrics  # delivery counters on the API's /metrics

        query = stores.queries.create(QueryCreate(text="ships", aoi=SQUARE, collections=["s2"]))
        assert [q.id for q in watcher.queries.active()] == [query.id]
        with composition.api_server(app) as server:
            assert httpx.get(f"{server.url}/queries/{query.id}").json()["text"] == "ships"
            health = httpx.get(f"{server.url}/healthz").json()
        assert set(health["components"]) == {"redis", "watcher"}
    finally:
        webhooks.close()
        dispatcher.close()
        watcher.close()
        stores.close()
