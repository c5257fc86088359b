"""Standing queries in Redis: one JSON document per query plus id sets (all, per tenant)."""

from __future__ import annotations

import redis

from services.contracts import Query, QueryCreate, QueryStatus, QueryUpdate, RedisKeys


class QueryNotFoundError(KeyError):
    """No query with that id (for that tenant)."""


class QueryStore:
    """CRUD of standing queries, scoped by tenant."""

    def __init__(self, client: redis.Redis, keys: RedisKeys | None = None) -> None:
        self.redis = client
        self.keys = keys or RedisKeys()

    def create(self, body: QueryCreate, *, tenant: str = "default") -> Query:
        """Register a query; returns it with its id, version 1 and timestamps."""
        query = Query.model_validate(body.model_dump() | {"tenant": tenant})
        self._save(query)
        return query

    def _save(self, query: Query) -> None:
        pipe = self.redis.pipeline(transaction=True)
        pipe.set(self.keys.query(query.id), query.stored())
        pipe.sadd(self.keys.queries(), query.id)
        pipe.sadd(self.keys.tenant_queries(query.tenant), query.id)
        pipe.execute()

    def get(self, query_id: str, *, tenant: str | None = None) -> Query:
        """The query, or QueryNotFoundError (also when it belongs to another tenant)."""
        raw = self.redis.get(self.keys.query(query_id))
        if raw is None:
            raise QueryNotFoundError(query_id)
        query = Query.model_validate_json(raw)
        if tenant is not None and query.tenant != tenant:
            raise QueryNotFoundError(query_id)
        return query

    def list(self, *, tenant: str | None = None, status: QueryStatus | None = None) -> list[Query]:
        """Queries of a tenant (or all), oldest first, optionally by status."""
        key = self.keys.queries() if tenant is None else self.keys.tenant_queries(tenant)
        ids = sorted(i.decode() for i in self.redis.smembers(key))
        raws = self.redis.mget([self.keys.query(i) for i in ids]) if ids else []
        queries = [Query.model_validate_json(raw) for raw in raws if raw is not None]
        if status is not None:
            queries = [q for q in queries if q.status == status]
        return sorted(queries, key=lambda q: (q.created, q.id))

    def active(self) -> list[Query]:
        """Every active query of every tenant (what the watcher and the dispatcher match against)."""
        return self.list(status=QueryStatus.active)

    def update(self, query_id: str, update: QueryUpdate, *, tenant: str | None = None) -> Query:
        """Apply a partial update; the version is bumped when detection semantics change."""
        updated = self.get(query_id, tenant=tenant).apply(update)
        self._save(updated)
        return updated

    def delete(self, query_id: str, *, tenant: str | None = None) -> None:
        """Remove a query. Its detections stay in Redis until ``store.detection_retention_days`` has
        passed since its last scene (for ever without a retention), but no route serves them any more:
        every read of detections looks the query up first."""
        query = self.get(query_id, tenant=tenant)
        pipe = self.redis.pipeline(transaction=True)
        pipe.delete(self.keys.query(query.id))
        pipe.srem(self.keys.queries(), query.id)
        pipe.srem(self.keys.tenant_queries(query.tenant), query.id)
        pipe.execute()
