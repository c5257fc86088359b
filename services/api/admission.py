"""What the service accepts beyond the Query contract: known collections, and webhook and STAC API URLs
that are public addresses (the service calls them on the tenant's word).

The contract (services.contracts.query) checks what a query *is*; these checks depend on the deployment
(``api.collections``, ``api.webhook.allow_hosts``, name resolution), so they run in the API, before
anything is stored, and refuse with a 422 that names the field.
"""

from __future__ import annotations

from services.api.errors import InvalidParameterError
from services.api.webhook_urls import FIELD as WEBHOOK_FIELD
from services.api.webhook_urls import WebhookUrlPolicy, WebhookUrlRefusedError
from services.contracts import Delivery, QueryCreate, QueryUpdate
from services.settings import ApiSettings


class QueryAdmission:
    """Refuses queries naming collections the service does not watch or webhooks it must not call."""

    def __init__(self, settings: ApiSettings) -> None:
        self.collections = None if settings.collections is None else frozenset(settings.collections)
        self.webhooks = WebhookUrlPolicy(settings.webhook.allow_hosts)
        self.stac_apis = WebhookUrlPolicy(
            settings.stac_api_allow_hosts, what="the watcher", allow_setting="api.stac_api_allow_hosts"
        )

    def check(self, body: QueryCreate | QueryUpdate) -> None:
        """InvalidParameterError for the first field this deployment refuses; None when admissible."""
        if body.collections is not None:
            self._check_collections(body.collections)
        if body.delivery is not None:
            self._check_delivery(body.delivery)
        stac_api = getattr(body, "stac_api", None)
        if stac_api is not None:
            try:
                self.stac_apis.check(str(stac_api))
            except WebhookUrlRefusedError as exc:
                raise InvalidParameterError("stac_api", exc.reason) from None

    def _check_collections(self, collections: list[str]) -> None:
        if self.collections is None:
            return
        unknown = [c for c in collections if c not in self.collections]
        if unknown:
            raise InvalidParameterError(
                "collections",
                f"unknown collection(s) {', '.join(unknown)}: this service watches "
                f"{', '.join(sorted(self.collections)) or 'no collection'} (api.collections)",
            )

    def _check_delivery(self, delivery: Delivery) -> None:
        if delivery.webhook_url is None:
            return
        try:
            self.webhooks.check(str(delivery.webhook_url))
        except WebhookUrlRefusedError as exc:
            raise InvalidParameterError(WEBHOOK_FIELD, exc.reason) from None
