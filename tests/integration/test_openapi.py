"""/openapi.json describes every response: each route's success and error bodies have schemas, and real
answers of the API (against a real Redis) validate against them."""

from datetime import UTC, datetime

import pytest
from fastapi.testclient import TestClient
from jsonschema import Draft202012Validator

from services.api import create_app
from services.settings import ApiSettings
from services.store import QueryStore
from tests.support.detections import make_detection, write_detections

SQUARE = {"type": "Polygon", "coordinates": [[[10, 50], [10.1, 50], [10.1, 50.1], [10, 50.1], [10, 50]]]}
DETECTION = {
    "type": "Polygon",
    "coordinates": [[[10.01, 50.01], [10.02, 50.01], [10.02, 50.02], [10.01, 50.01]]],
}
GEOJSON = "application/geo+json"
JSON = "application/json"
# Answers that carry no JSON body: a redirect, an empty 204, Prometheus text, a PNG and an event stream.
NOT_JSON = {("get", "/", "303"), ("delete", "/queries/{query_id}", "204"), ("get", "/metrics", "200")}
NOT_JSON_PATHS = {"/queries/{query_id}/detections/{detection_id}/quicklook.png", "/queries/{query_id}/stream"}


@pytest.fixture
def api(stack_settings, redis_client, keys):
    settings = stack_settings.model_copy(update={"api": ApiSettings(collections=None)})
    with TestClient(create_app(settings, redis_client=redis_client, keys=keys)) as client:
        yield client


def _validator(spec: dict, schema: dict) -> Draft202012Validator:
    return Draft202012Validator({**schema, "components": spec["components"]})


def test_every_response_of_every_route_has_a_schema(api):
    spec = api.get("/openapi.json").json()
    Draft202012Validator.check_schema({"components": spec["components"]})
    undocumented = []
    for path, operations in spec["paths"].items():
        for method, operation in operations.items():
            assert any(status.startswith("2") for status in operation["responses"]), (method, path)
            for status, response in operation["responses"].items():
                if (method, path, status) in NOT_JSON or (path in NOT_JSON_PATHS and status.startswith("2")):
                    continue
                content = response.get("content", {})
                schemas = [c.get("schema") for c in content.values()]
                if not schemas or not all(schemas):
                    undocumented.append((method.upper(), path, status))
    assert undocumented == []


def test_errors_are_documented_as_json_and_geojson_routes_as_geojson(api):
    spec = api.get("/openapi.json").json()
    items = spec["paths"]["/collections/{query_id}/items"]["get"]["responses"]
    assert items["200"]["content"][GEOJSON]["schema"] == {"$ref": "#/components/schemas/DetectionPage"}
    assert items["404"]["content"] == {JSON: {"schema": {"$ref": "#/components/schemas/ErrorMessage"}}}
    assert items["422"]["content"] == {JSON: {"schema": {"$ref": "#/components/schemas/FieldErrors"}}}
    queries = spec["paths"]["/queries"]["post"]["responses"]
    assert queries["201"]["content"][JSON]["schema"] == {"$ref": "#/components/schemas/Query"}
    assert "HTTPValidationError" not in spec["components"]["schemas"]  # our 422 body, not FastAPI's


def test_real_answers_validate_against_their_documented_schemas(api, redis_client, keys):
    spec = api.get("/openapi.json").json()
    created = api.post("/queries", json={"text": "ships", "aoi": SQUARE, "collections": ["s2"]})
    assert created.status_code == 201, created.text
    query = QueryStore(redis_client, keys).get(created.json()["id"])
    detection = make_detection(query, "s2", "item-1", DETECTION, acquired=datetime(2026, 5, 1, tzinfo=UTC))
    write_detections(redis_client, keys, query, "s2", "item-1", [detection])

    answers = {
        ("post", "/queries", "201"): created,
        ("get", "/queries", "200"): api.get("/queries"),
        ("get", "/queries/{query_id}/detections", "200"): api.get(f"/queries/{query.id}/detections"),
        ("get", "/collections", "200"): api.get("/collections"),
        ("get", "/collections/{query_id}/items", "200"): api.get(f"/collections/{query.id}/items"),
        ("get", "/collections/{query_id}/items/{detection_id}", "200"): api.get(
            f"/collections/{query.id}/items/{detection.id}"
        ),
        ("get", "/", "200"): api.get("/"),
        ("get", "/healthz", "200"): api.get("/healthz"),
        ("get", "/queries/{query_id}", "404"): api.get("/queries/nope"),
        ("post", "/queries", "422"): api.post("/queries", json={"text": ""}),
    }
    for (method, path, status), response in answers.items():
        assert str(response.status_code) == status, (path, response.text)
        documented = spec["paths"][path][method]["responses"][status]["content"]
        media_type = response.headers["content-type"].split(";")[0]
        _validator(spec, documented[media_type]["schema"]).validate(response.json())
