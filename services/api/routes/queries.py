"""Standing queries CRUD: ``/queries`` (scoped to the caller's tenant)."""

# Annotations are evaluated eagerly (no __future__ import): FastAPI resolves the closure's Tenant alias.

import logging
from typing import Annotated

from fastapi import APIRouter, Depends, Request, Response

from services.api.admission import QueryAdmission
from services.api.context import ApiContext
from services.api.errors import ERROR_RESPONSES
from services.api.links import api_url
from services.api.responses import ErrorMessage, QueryDetail, QueryList
from services.contracts import Query, QueryCreate, QueryStatus, QueryUpdate

log = logging.getLogger(__name__)


def build_router(ctx: ApiContext) -> APIRouter:
    """Routes to register, list, read, update (pause/resume via ``status``) and delete queries."""
    router = APIRouter(prefix="/queries", tags=["queries"], responses=ERROR_RESPONSES)
    too_large = {413: {"model": ErrorMessage, "description": "Body over api.max_body_bytes"}}
    Tenant = Annotated[str, Depends(ctx.tenant)]
    admission = QueryAdmission(ctx.settings)

    @router.post("", status_code=201, responses=too_large)
    def create_query(body: QueryCreate, tenant: Tenant, request: Request, response: Response) -> Query:
        """Register a standing query; answers 201 with the query (webhook secret masked)."""
        admission.check(body)
        query = ctx.queries.create(body, tenant=tenant)
        log.info("query %s registered by tenant %s: %r", query.id, tenant, query.text)
        response.headers["Location"] = api_url(request, ctx.settings.base_url, f"queries/{query.id}")
        return query

    @router.get("")
    def list_queries(tenant: Tenant, status: QueryStatus | None = None) -> QueryList:
        """The tenant's queries, oldest first, optionally only ``active`` or ``paused`` ones."""
        return QueryList(queries=ctx.queries.list(tenant=tenant, status=status))

    @router.get("/{query_id}")
    def get_query(query_id: str, tenant: Tenant) -> QueryDetail:
        """One query, with the scenes it matched that were not segmented (``skipped``: counts by code
        and the latest, with reasons)."""
        query = ctx.queries.get(query_id, tenant=tenant)
        return QueryDetail.model_validate(query.model_dump() | {"skipped": ctx.skipped.summary(query.id)})

    @router.patch("/{query_id}", responses=too_large)
    def update_query(query_id: str, body: QueryUpdate, tenant: Tenant) -> Query:
        """Change any editable field; the version is bumped when what the query detects changes."""
        admission.check(body)
        query = ctx.queries.update(query_id, body, tenant=tenant)
        log.info("query %s updated to version %d (status %s)", query.id, query.version, query.status)
        return query

    @router.delete("/{query_id}", status_code=204)
    def delete_query(query_id: str, tenant: Tenant) -> Response:
        """Remove a query; its stored detections are kept in Redis but no longer served."""
        ctx.queries.delete(query_id, tenant=tenant)
        log.info("query %s deleted by tenant %s", query_id, tenant)
        return Response(status_code=204)

    return router
