"""Error -> HTTP status mapping, injected into the app as data (stac-fastapi style).

Response bodies keep FastAPI's ``{"detail": ...}`` envelope:
- 422 (request validation, bad filter parameters): ``{"detail": [{"field": "aoi", "message": "...",
  "type": "value_error"}, ...]}`` -- one item per problem; ``field`` is the dotted path inside the body,
  or the query/header parameter name (``"body"`` for a problem with the body as a whole);
- every other error: ``{"detail": "a sentence"}``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import redis
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from services.api.responses import ErrorMessage, FieldErrors
from services.store import QueryNotFoundError

log = logging.getLogger(__name__)

_SOURCES = ("body", "query", "path", "header", "cookie")


class InvalidParameterError(ValueError):
    """A request parameter the framework accepted but whose value is wrong (e.g. a bbox with 3 numbers)."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


class DetectionNotFoundError(KeyError):
    """No detection with that id in that query."""

    def __init__(self, query_id: str, detection_id: str) -> None:
        super().__init__(detection_id)
        self.query_id = query_id
        self.detection_id = detection_id


@dataclass(frozen=True)
class ErrorRule:
    """How one exception type is answered: a status code and the body built from the exception."""

    status_code: int
    body: Callable[[Exception], dict[str, Any]]


def field_errors(items: Sequence[tuple[str, str, str]]) -> dict[str, Any]:
    """The 422 body for (field, message, type) triples."""
    return {"detail": [{"field": f, "message": m, "type": t} for f, m, t in items]}


def _detail(message: Callable[[Any], str]) -> Callable[[Exception], dict[str, Any]]:
    return lambda exc: {"detail": message(exc)}


DEFAULT_ERROR_RULES: Mapping[type[Exception], ErrorRule] = {
    QueryNotFoundError: ErrorRule(404, _detail(lambda e: f"query {e.args[0]} not found")),
    DetectionNotFoundError: ErrorRule(
        404, _detail(lambda e: f"detection {e.detection_id} not found in query {e.query_id}")
    ),
    InvalidParameterError: ErrorRule(422, lambda e: field_errors([(e.field, e.message, "value_error")])),
    # The cause (with internal addresses) goes to the log, not to the client.
    redis.ConnectionError: ErrorRule(
        503, _detail(lambda e: "the detection store is unreachable; retry later")
    ),
    redis.TimeoutError: ErrorRule(503, _detail(lambda e: "the detection store timed out; retry later")),
}


# What the tenant-scoped routes may answer besides their success (the routes' `responses`, for /openapi.json).
ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorMessage, "description": "No API key, or an unknown or revoked one (api_key mode)"},
    404: {"model": ErrorMessage, "description": "No such query (or detection) for the caller's tenant"},
    422: {"model": FieldErrors, "description": "Invalid request: one item per problem, naming the field"},
    429: {"model": ErrorMessage, "description": "The tenant's rate limit (api.rate_limit) is used up"},
    503: {"model": ErrorMessage, "description": "The detection store is unreachable or timed out"},
}
# The same for routes whose success is GeoJSON: their errors are still JSON, but FastAPI files a `model`
# under the route's own media type, so these name the JSON schema themselves (registered by the routes
# that use ERROR_RESPONSES).
GEOJSON_ROUTE_ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    status: {
        "description": response["description"],
        "content": {
            "application/json": {"schema": {"$ref": f"#/components/schemas/{response['model'].__name__}"}}
        },
    }
    for status, response in ERROR_RESPONSES.items()
}


def validation_field(loc: Sequence[str | int]) -> str:
    """``("body", "delivery", "webhook_url")`` -> ``"delivery.webhook_url"``; a bare source stays."""
    parts = list(loc)
    if len(parts) > 1 and parts[0] in _SOURCES:
        parts = parts[1:]
    return ".".join(str(p) for p in parts)


def validation_message(message: str) -> str:
    """Pydantic's message without its ``Value error, `` prefix (our validators already say the reason)."""
    return message.removeprefix("Value error, ")


def validation_item(error: Mapping[str, Any]) -> tuple[str, str, str]:
    """(field, message, type) of one FastAPI/pydantic validation error."""
    if error["type"] == "json_invalid":  # loc is ("body", character position)
        position = error["loc"][-1]
        reason = error.get("ctx", {}).get("error", "")
        return "body", f"invalid JSON at character {position}: {reason}".rstrip(": "), error["type"]
    return validation_field(error["loc"]), validation_message(error["msg"]), error["type"]


def add_error_handlers(app: FastAPI, rules: Mapping[type[Exception], ErrorRule]) -> None:
    """Answer request validation errors with field-named 422s and each mapped exception by its rule."""

    async def on_validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        items = [validation_item(e) for e in exc.errors()]
        return JSONResponse(field_errors(items), status_code=422)

    app.add_exception_handler(RequestValidationError, on_validation_error)

    for exc_type, rule in rules.items():

        async def on_error(request: Request, exc: Exception, rule: ErrorRule = rule) -> JSONResponse:
            if rule.status_code >= 500:
                log.warning("%s %s failed: %s", request.method, request.url.path, exc)
            return JSONResponse(rule.body(exc), status_code=rule.status_code)

        app.add_exception_handler(exc_type, on_error)
