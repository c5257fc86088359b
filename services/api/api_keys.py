"""Per-tenant API keys, stored hashed in Redis and looked up by a non-secret key id.

A key reads ``lk_<key id>_<secret>``: the key id (12 hex digits) names the Redis record, the secret is
32 random bytes (URL-safe base64). Only ``HMAC-SHA256(pepper, "<key id>.<secret>")`` is stored. Why
HMAC and not a slow password hash (scrypt, Argon2): the secret has 256 bits of entropy, so there is
nothing to slow down a guess against -- a slow hash would only cost CPU on every request (and hand an
attacker a cheap way to burn it). The pepper is a server-side secret from the environment, so a copy of
Redis alone does not even let anyone test a candidate key. Comparison is constant-time.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime

import redis

from services.contracts import RedisKeys

KEY_PREFIX = "lk"
_KEY = re.compile(r"^lk_([0-9a-f]{12})_([A-Za-z0-9_-]{43})$")


class ApiKeyError(Exception):
    """An API key that does not authenticate; the message says why (never echoing the secret)."""


@dataclass(frozen=True)
class ApiKeyRecord:
    """What is stored about one key (everything but the key itself)."""

    key_id: str
    tenant: str
    created: datetime
    revoked: datetime | None = None


@dataclass(frozen=True)
class IssuedKey:
    """A new key: the record, and the full key, which is shown once and never stored."""

    record: ApiKeyRecord
    key: str


def parse_key(key: str) -> tuple[str, str]:
    """(key id, secret) of a well-formed key; ApiKeyError otherwise."""
    match = _KEY.match(key.strip())
    if match is None:
        raise ApiKeyError("malformed API key: expected lk_<12 hex digits>_<43 characters>")
    return match.group(1), match.group(2)


def key_digest(pepper: str, key_id: str, secret: str) -> str:
    """Hex HMAC-SHA256 of ``key_id.secret`` keyed with the server's pepper."""
    return hmac.new(pepper.encode(), f"{key_id}.{secret}".encode(), hashlib.sha256).hexdigest()


def _when(raw: bytes) -> datetime:
    return datetime.fromisoformat(raw.decode())


class ApiKeyStore:
    """Issues, lists, revokes and checks API keys."""

    def __init__(self, client: redis.Redis, keys: RedisKeys, pepper: str) -> None:
        self.redis = client
        self.keys = keys
        self._pepper = pepper

    def issue(self, tenant: str) -> IssuedKey:
        """A new key for ``tenant`` (a tenant may hold several, e.g. while rotating)."""
        while True:
            key_id, secret = secrets.token_hex(6), secrets.token_urlsafe(32)
            record = ApiKeyRecord(key_id, tenant, datetime.now(UTC))
            fields = {
                "tenant": tenant,
                "digest": key_digest(self._pepper, key_id, secret),
                "created": record.created.isoformat(),
            }
            # HSETNX on the tenant field claims the id; a (2^-48 unlikely) clash just draws again.
            if self.redis.hsetnx(self.keys.api_key(key_id), "tenant", tenant):
                pipe = self.redis.pipeline(transaction=True)
                pipe.hset(self.keys.api_key(key_id), mapping=fields)
                pipe.sadd(self.keys.api_keys(), key_id)
                pipe.execute()
                return IssuedKey(record, f"{KEY_PREFIX}_{key_id}_{secret}")

    def get(self, key_id: str) -> ApiKeyRecord | None:
        """The record of one key id, or None."""
        raw = self.redis.hgetall(self.keys.api_key(key_id))
        if not raw or b"digest" not in raw:
            return None
        return ApiKeyRecord(
            key_id=key_id,
            tenant=raw[b"tenant"].decode(),
            created=_when(raw[b"created"]),
            revoked=_when(raw[b"revoked"]) if b"revoked" in raw else None,
        )

    def list(self) -> list[ApiKeyRecord]:
        """Every key's record, by tenant then creation time."""
        ids = sorted(i.decode() for i in self.redis.smembers(self.keys.api_keys()))
        records = [r for r in (self.get(i) for i in ids) if r is not None]
        return sorted(records, key=lambda r: (r.tenant, r.created, r.key_id))

    def revoke(self, key_id: str) -> ApiKeyRecord:
        """Mark a key revoked (the record stays, for audit); KeyError for an unknown id."""
        record = self.get(key_id)
        if record is None:
            raise KeyError(key_id)
        if record.revoked is None:
            revoked = datetime.now(UTC)
            self.redis.hset(self.keys.api_key(key_id), "revoked", revoked.isoformat())
            record = ApiKeyRecord(record.key_id, record.tenant, record.created, revoked)
        return record

    def authenticate(self, key: str) -> str:
        """The tenant of a valid, unrevoked key; ApiKeyError saying why otherwise."""
        key_id, secret = parse_key(key)
        stored = self.redis.hmget(self.keys.api_key(key_id), ["tenant", "digest", "revoked"])
        tenant, digest, revoked = stored
        if digest is None or not hmac.compare_digest(
            digest.decode(), key_digest(self._pepper, key_id, secret)
        ):
            raise ApiKeyError(f"unknown API key {KEY_PREFIX}_{key_id}_...")
        if revoked is not None:
            raise ApiKeyError(f"API key {KEY_PREFIX}_{key_id}_... was revoked at {revoked.decode()}")
        return tenant.decode()
