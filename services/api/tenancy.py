"""Who is calling: the tenant dependency.

The app receives the dependency as data (``create_app(..., tenant=...)``), so API keys (issue 8) can
replace this header-based one without touching a route. A tenant dependency is any FastAPI dependency
that returns the caller's tenant id.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Annotated, Any

from fastapi import Header

from services.api.errors import InvalidParameterError

TENANT_HEADER = "X-Lookout-Tenant"
DEFAULT_TENANT = "default"
_TENANT = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")

TenantDependency = Callable[..., Any]


def tenant_from_header(
    x_lookout_tenant: Annotated[str, Header(alias=TENANT_HEADER)] = DEFAULT_TENANT,
) -> str:
    """The tenant named by the ``X-Lookout-Tenant`` header (``default`` without it); not authenticated."""
    if not _TENANT.match(x_lookout_tenant):
        raise InvalidParameterError(
            TENANT_HEADER, f"{x_lookout_tenant!r}: 1-64 letters, digits, '.', '_' or '-', starting alnum"
        )
    return x_lookout_tenant
