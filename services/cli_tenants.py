"""``lookout tenant``: the tenants' API keys, managed directly in the service's Redis.

``add NAME`` issues a key (printed once, on stdout; only its HMAC is stored), ``list`` shows every key's
id, tenant, creation time and status, ``revoke KEY_ID`` stops a key from authenticating. Settings come
from configs + ``LOOKOUT_*`` like every component: ``LOOKOUT_REDIS__URL`` names the Redis and
``LOOKOUT_API__KEY_PEPPER`` must be the API's own pepper, else its keys would not authenticate.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
from collections.abc import Iterator

from services.adapters.redis_client import make_redis
from services.api.api_keys import ApiKeyStore
from services.api.tenancy import TENANT_RULE, is_valid_tenant


@contextlib.contextmanager
def _key_store() -> Iterator[ApiKeyStore]:
    from services.settings import load_settings

    settings = load_settings()
    if settings.api.key_pepper is None:
        raise SystemExit(
            "api.key_pepper is not set: export LOOKOUT_API__KEY_PEPPER with the API's value "
            "(keys are stored as HMACs keyed with it)"
        )
    client = make_redis(settings.redis)
    try:
        yield ApiKeyStore(client, settings.redis_keys(), settings.api.key_pepper.get_secret_value())
    finally:
        client.close()


def _tenant_add(args: argparse.Namespace) -> int:
    """Issue an API key for a tenant; the key is printed once and cannot be shown again."""
    if not is_valid_tenant(args.name):
        raise SystemExit(f"tenant {args.name!r}: {TENANT_RULE}")
    with _key_store() as store:
        issued = store.issue(args.name)
    print(issued.key, flush=True)
    print(
        f"key id {issued.record.key_id} for tenant {args.name}: store the key above now, it is not shown "
        "again; clients send it in the X-API-Key header",
        file=sys.stderr,
    )
    return 0


def _tenant_list(args: argparse.Namespace) -> int:
    """List every API key: id, tenant, creation time, status (the keys themselves are not stored)."""
    with _key_store() as store:
        records = store.list()
    for r in records:
        status = f"revoked {r.revoked.isoformat(timespec='seconds')}" if r.revoked else "active"
        print(f"{r.key_id}  {r.tenant:<20}  {r.created.isoformat(timespec='seconds')}  {status}")
    return 0


def _tenant_revoke(args: argparse.Namespace) -> int:
    """Revoke an API key by its id (as `lookout tenant list` shows it)."""
    with _key_store() as store:
        try:
            record = store.revoke(args.key_id)
        except KeyError:
            raise SystemExit(f"no API key with id {args.key_id!r} (see `lookout tenant list`)") from None
    print(f"revoked key {record.key_id} of tenant {record.tenant}")
    return 0


def add_tenant_commands(sub: argparse._SubParsersAction) -> None:
    """Register ``lookout tenant add|list|revoke`` on the ``lookout`` parser's subcommands."""
    tenant = sub.add_parser("tenant", help="manage the tenants' API keys (api.auth_mode: api_key)")
    actions = tenant.add_subparsers(dest="action", required=True)
    add = actions.add_parser("add", help=_tenant_add.__doc__)
    add.add_argument("name", help=f"the tenant: {TENANT_RULE}")
    add.set_defaults(func=_tenant_add)
    actions.add_parser("list", help=_tenant_list.__doc__).set_defaults(func=_tenant_list)
    revoke = actions.add_parser("revoke", help=_tenant_revoke.__doc__)
    revoke.add_argument("key_id", help="the key id (12 hex digits)")
    revoke.set_defaults(func=_tenant_revoke)
