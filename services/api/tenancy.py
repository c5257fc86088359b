"""Who is calling: the tenant dependency every tenant-scoped route uses.

The app receives the dependency as data (``create_app(..., tenant=...)``); :func:`tenant_dependency`
builds the one ``api.auth_mode`` asks for, with the per-tenant rate limit in front of the route:

- ``open``: the tenant named by the ``X-Lookout-Tenant`` header (``default`` without it); not
  authenticated -- the embedded default, on a loopback-only machine.
- ``api_key``: the ``X-API-Key`` header is required and names the tenant (401 when it is missing,
  malformed, unknown or revoked); an ``X-Lookout-Tenant`` header, if sent, must name the same tenant
  (403 otherwise), so a client that thinks it acts for another tenant is told rather than silently
  served its own data.
"""

# Annotations are evaluated eagerly (no __future__ import): FastAPI resolves the closures' aliases.

import re
from collections.abc import Callable
from typing import Annotated, Any

from fastapi import Depends, Header, HTTPException
from fastapi.security import APIKeyHeader

from services.api.api_keys import ApiKeyError, ApiKeyStore
from services.api.errors import InvalidParameterError
from services.api.request_limits import RateLimitExceededError, TenantRateLimiter
from services.settings import ApiSettings

TENANT_HEADER = "X-Lookout-Tenant"
API_KEY_HEADER = "X-API-Key"
DEFAULT_TENANT = "default"
TENANT_RULE = "1-64 letters, digits, '.', '_' or '-', starting with a letter or digit"
_TENANT = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")

TenantDependency = Callable[..., Any]


def is_valid_tenant(name: str) -> bool:
    """Whether ``name`` can name a tenant (it becomes part of Redis keys and log lines)."""
    return bool(_TENANT.match(name))


def tenant_from_header(
    x_lookout_tenant: Annotated[str, Header(alias=TENANT_HEADER)] = DEFAULT_TENANT,
) -> str:
    """The tenant named by the ``X-Lookout-Tenant`` header (``default`` without it); not authenticated."""
    if not is_valid_tenant(x_lookout_tenant):
        raise InvalidParameterError(TENANT_HEADER, f"{x_lookout_tenant!r}: {TENANT_RULE}")
    return x_lookout_tenant


def _unauthorized(message: str) -> HTTPException:
    return HTTPException(401, message, headers={"WWW-Authenticate": f'ApiKey header="{API_KEY_HEADER}"'})


def tenant_from_api_key(store: ApiKeyStore) -> TenantDependency:
    """The dependency of ``api_key`` mode: the tenant of the caller's ``X-API-Key``."""
    # APIKeyHeader documents the scheme in the OpenAPI definition (the /docs "Authorize" button).
    scheme = APIKeyHeader(
        name=API_KEY_HEADER, auto_error=False, description="a key from `lookout tenant add NAME`"
    )

    def authenticated_tenant(
        api_key: Annotated[str | None, Depends(scheme)],
        claimed: Annotated[str | None, Header(alias=TENANT_HEADER)] = None,
    ) -> str:
        if not api_key:
            raise _unauthorized(f"missing API key: send it in the {API_KEY_HEADER} header")
        try:
            tenant = store.authenticate(api_key)
        except ApiKeyError as exc:
            raise _unauthorized(str(exc)) from None
        if claimed is not None and claimed != tenant:
            raise HTTPException(
                403, f"{TENANT_HEADER} {claimed!r} does not match the tenant of the API key ({tenant!r})"
            )
        return tenant

    return authenticated_tenant


def rate_limited(identify: TenantDependency, limiter: TenantRateLimiter) -> TenantDependency:
    """``identify``, then one request counted against the tenant's limit (429 with Retry-After)."""

    def limited_tenant(tenant: Annotated[str, Depends(identify)]) -> str:
        try:
            limiter.hit(tenant)
        except RateLimitExceededError as exc:
            raise HTTPException(429, str(exc), headers={"Retry-After": str(exc.retry_after_s)}) from None
        return tenant

    return limited_tenant


def tenant_dependency(
    settings: ApiSettings, *, key_store: ApiKeyStore | None, limiter: TenantRateLimiter | None
) -> TenantDependency:
    """The tenant dependency ``settings.auth_mode`` asks for, rate limited when ``limiter`` is given."""
    if settings.auth_mode == "api_key":
        if key_store is None:
            raise ValueError("api.auth_mode api_key needs an ApiKeyStore")
        identify = tenant_from_api_key(key_store)
    else:
        identify = tenant_from_header
    return identify if limiter is None else rate_limited(identify, limiter)
