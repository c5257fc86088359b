"""Typed service settings: the one place that reads the environment.

Values come from (highest priority first) keyword arguments, ``LOOKOUT_*`` environment variables
(nested with ``__``, e.g. ``LOOKOUT_REDIS__URL``), then the YAML file named by ``LOOKOUT_CONFIG``
(default: ``service.yaml`` shipped in the package, ``services/configs/``, which in the repository is
a link to ``configs/service.yaml``). Every section refuses keys it does not know: a misspelt key is an
error naming the key and where it was set, never silently ignored.
"""

from __future__ import annotations

import os
import re
import types
import typing
from datetime import timedelta
from importlib import resources
from pathlib import Path
from typing import Any, Literal, Self
from urllib.parse import urlsplit

import yaml
from limits import parse_many
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    YamlConfigSettingsSource,
)

from services.backoff import Backoff
from services.contracts import RedisKeys, Topics

# The folder holding the packages: the repository, or site-packages when installed from a wheel (where
# danet/checkpoints/ is package data too, so paths relative to it hold in both).
REPO_ROOT = Path(__file__).resolve().parents[1]
# Packages are installed as folders (wheels are unpacked), so the resource is a file on disk.
DEFAULT_CONFIG_FILE = Path(str(resources.files("services").joinpath("configs", "service.yaml")))
CONFIG_ENV_VAR = "LOOKOUT_CONFIG"
ENV_PREFIX = "LOOKOUT_"
ENV_NESTED_DELIMITER = "__"


class SettingsError(ValueError):
    """Settings that cannot be loaded: the message names each bad key, why, and where it was set."""


class RedisSettings(BaseModel):
    """Where Redis is and how patiently to talk to it."""

    model_config = ConfigDict(extra="forbid")

    url: str = "redis://127.0.0.1:6379/0"
    socket_timeout_s: float = Field(5.0, gt=0)
    health_check_interval_s: int = Field(15, ge=0)


class KafkaSettings(BaseModel):
    """Kafka-protocol broker connection and consumer-group behaviour."""

    model_config = ConfigDict(extra="forbid")

    bootstrap_servers: str = "127.0.0.1:9092"
    client_id: str = "lookout"
    # Short session/heartbeat timeouts make the first group assignment take ~3 s instead of ~23 s
    # (measured against Tansu with kafka-python); max_poll_interval must exceed the slowest scene a
    # dispatcher processes.
    session_timeout_ms: int = Field(6000, gt=0)
    heartbeat_interval_ms: int = Field(1000, gt=0)
    max_poll_interval_ms: int = Field(300_000, gt=0)
    # GPU work is slow: a small batch per poll keeps processing well inside max_poll_interval.
    max_poll_records: int = Field(4, gt=0)
    request_timeout_ms: int = Field(30_000, gt=0)
    # Topics a component finds missing are created with this replication factor; -1: the broker's
    # default (clusters where Strimzi KafkaTopics or an operator own the topics' settings).
    topic_replication_factor: int = Field(
        1, ge=-1, description="replication of created topics; -1 broker default"
    )

    @field_validator("topic_replication_factor")
    @classmethod
    def _replication(cls, factor: int) -> int:
        if factor == 0:
            raise ValueError("0 replicas cannot hold a topic: use 1 or more, or -1 for the broker's default")
        return factor


class StacSettings(BaseModel):
    """STAC API access (production sources; the embedded default uses a local static catalog)."""

    model_config = ConfigDict(extra="forbid")

    api_url: str | None = None
    timeout_s: float = Field(30.0, gt=0)
    max_retries: int = Field(3, ge=0)


class NamespaceSettings(BaseModel):
    """Names that let several deployments share one Kafka cluster and one Redis."""

    model_config = ConfigDict(extra="forbid")

    topic_prefix: str = Field("", pattern=r"^[A-Za-z0-9._-]*$", description="prefix of every Kafka topic")
    redis_prefix: str = Field("lookout:", min_length=1, description="prefix of every Redis key")


class StoreSettings(BaseModel):
    """How long Redis keeps what the dispatcher stores."""

    model_config = ConfigDict(extra="forbid")

    # A detection (its entry in the query's hash and Stream, its scene's markers) is kept at least this
    # long after it was stored; it goes when the query's next scene is stored, or with all of the query's
    # detections once no scene has come for this long. None: kept for ever (Redis grows with them).
    detection_retention_days: float | None = Field(
        None, gt=0, description="Days Redis keeps a detection after storing it (null: for ever)"
    )

    def detection_retention(self) -> timedelta | None:
        """``detection_retention_days`` as a duration, or None."""
        days = self.detection_retention_days
        return None if days is None else timedelta(days=days)


class EmbeddedSettings(BaseModel):
    """Where the embedded stack finds its programs and keeps its data."""

    model_config = ConfigDict(extra="forbid")

    stac_venv: Path = REPO_ROOT / ".venv-stac"
    postgres_bin: Path | None = None
    state_dir: Path | None = None
    keep_logs: bool = False


class DispatcherSettings(BaseModel):
    """How the dispatcher consumes scenes, reads imagery and calls the segmenter."""

    model_config = ConfigDict(extra="forbid")

    group_id: str = Field("lookout-dispatcher", min_length=1)
    # STAC asset keys tried in order; the first one present is the image that is segmented, and the one
    # the API's quicklooks show (asset_* below also rule what the API reads: services.scenes).
    asset_keys: list[str] = Field(["visual", "image", "data"], min_length=1)
    # Tile overlap in pixels; None means a quarter of the segmenter's input size (as danet's Predictor).
    tile_overlap: int | None = Field(None, ge=0)
    # Upper bound of (tile, query) pairs per Segmenter.segment call (memory per call stays bounded).
    max_pairs_per_call: int = Field(32, gt=0)
    # A scene whose tiles over scene ∩ AOIs exceed this many pixels goes to the dead-letter topic.
    max_read_pixels: int = Field(50_000_000, gt=0)
    # URL schemes scene items (href) and image assets may be read from; "file" covers local paths.
    # Without it no local file is ever opened: the shipped config adds it for the embedded default's
    # simulator; production should allow https only (and name its hosts in asset_hosts).
    asset_schemes: list[str] = Field(["http", "https"], min_length=1)
    # Hosts of those URLs; empty: any host. An entry is a host name or address, or ".example.com" for
    # every subdomain of example.com.
    asset_hosts: list[str] = []
    # Per request of an asset or item read over HTTP (connect and transfer): a hanging object store
    # becomes a retried failure instead of a dispatcher stuck past the consumer's max_poll_interval.
    asset_timeout_s: float = Field(30.0, gt=0)
    # Attempts after the first failed one before a scene goes to the dead-letter topic.
    max_retries: int = Field(3, ge=0)
    # Before a failed scene is tried again, and between tries while Redis is down. The consumer waits
    # inside its poll loop: max_s + jitter_s must stay far below kafka.max_poll_interval_ms.
    backoff: Backoff = Backoff(initial_s=2.0, max_s=60.0, jitter_s=1.0)
    poll_timeout_ms: int = Field(1000, gt=0)

    @field_validator("asset_schemes")
    @classmethod
    def _url_schemes(cls, schemes: list[str]) -> list[str]:
        lowered = [scheme.lower() for scheme in schemes]
        for scheme in lowered:
            if not re.fullmatch(r"[a-z][a-z0-9+.-]*", scheme):
                raise ValueError(f"{scheme!r} is not a URL scheme (write https, not https://)")
        return lowered

    @field_validator("asset_hosts")
    @classmethod
    def _host_names(cls, hosts: list[str]) -> list[str]:
        lowered = [host.lower() for host in hosts]
        for host in lowered:
            if not host.strip(".") or "/" in host:
                raise ValueError(f"{host!r} is not a host name (write example.com, no scheme or path)")
        return lowered


class AutoscalingSettings(BaseModel):
    """Ray Serve autoscaling of the segmenter replicas (on ongoing requests per replica)."""

    model_config = ConfigDict(extra="forbid")

    min_replicas: int = Field(1, ge=0)
    max_replicas: int = Field(1, ge=1)
    # A replica batches only what is queued at it: a target near max_batch_size lets batches fill
    # before the autoscaler adds replicas (Serve's default of 2 would keep batches small).
    target_ongoing_requests: float = Field(8.0, gt=0)

    @model_validator(mode="after")
    def _min_not_above_max(self) -> Self:
        if self.min_replicas > self.max_replicas:
            raise ValueError(f"min_replicas={self.min_replicas} exceeds max_replicas={self.max_replicas}")
        return self


class TextCacheSettings(BaseModel):
    """The text-embedding cache: Redis, with an in-process LRU in front."""

    model_config = ConfigDict(extra="forbid")

    enabled: bool = True
    # None keeps entries: keys carry the encoder version, so a model change never reads stale ones.
    ttl_s: int | None = Field(None, gt=0)
    local_entries: int = Field(1024, ge=0)


class SegmenterSettings(BaseModel):
    """The DANet segmenter on Ray Serve: which model, where it runs, how it batches and scales.

    The model is ``checkpoint`` when set (it names its own preset), else ``preset`` built with its
    ``pretrained`` weights (randomly initialised parts are seeded, so every replica agrees).
    Replicas: a fixed ``num_replicas``, or ``autoscaling``; neither means one replica.
    """

    model_config = ConfigDict(extra="forbid")

    app_name: str = "segmenter"
    checkpoint: Path | None = None
    preset: str = "tiny"
    pretrained: bool = True
    device: Literal["auto", "cpu", "cuda"] = "auto"
    num_gpus: float = Field(0.0, ge=0)
    num_cpus: float = Field(1.0, gt=0)
    max_batch_size: int = Field(8, gt=0)
    batch_wait_timeout_s: float = Field(0.01, ge=0)
    num_replicas: int | None = Field(None, ge=1)
    autoscaling: AutoscalingSettings | None = None
    text_cache: TextCacheSettings = TextCacheSettings()

    @field_validator("checkpoint")
    @classmethod
    def _relative_to_repository(cls, path: Path | None) -> Path | None:
        # configs/service.yaml names the shipped checkpoint relative to the repository root.
        return REPO_ROOT / path if path is not None and not path.is_absolute() else path

    @model_validator(mode="after")
    def _one_way_to_scale(self) -> Self:
        if self.num_replicas is not None and self.autoscaling is not None:
            raise ValueError("num_replicas and autoscaling are exclusive: set one of them, or neither")
        return self


class WebhookSettings(BaseModel):
    """How the webhook dispatcher delivers detections (signed POSTs, retried with backoff)."""

    model_config = ConfigDict(extra="forbid")

    max_attempts: int = Field(5, ge=1, description="POSTs per pass before a delivery counts as failed")
    backoff: Backoff = Backoff(initial_s=1.0, max_s=60.0, jitter_s=1.0)  # between attempts of a pass
    timeout_s: float = Field(10.0, gt=0, description="HTTP timeout of one attempt")
    # A delivery that failed every attempt stays pending in Redis and is tried again after this idle time.
    redeliver_after_s: float = Field(300.0, gt=0)
    # Also bounds the blocking stream read, so it must stay under redis.socket_timeout_s.
    poll_interval_s: float = Field(1.0, gt=0)
    # Webhook hosts (as written in the URL: a name or an IP address) that may be loopback, link-local
    # or private. Any other host must resolve to public addresses only (checked at registration and
    # again at each delivery, against DNS rebinding).
    allow_hosts: list[str] = []


class QuicklookSettings(BaseModel):
    """Scene quicklooks under the dashboard's detections: rendered from the scene's image, cached.

    The image is the one the dispatcher segments, read under the same rules: ``dispatcher.asset_keys``,
    ``asset_schemes``, ``asset_hosts`` and ``asset_timeout_s``."""

    model_config = ConfigDict(extra="forbid")

    max_side_px: int = Field(1024, ge=64, le=4096, description="Longer side of a quicklook, pixels")
    cache_ttl_s: int = Field(86_400, gt=0, description="How long Redis keeps a rendered quicklook")


class ApiSettings(BaseModel):
    """The HTTP API: where it listens, who may call it and how much, what it accepts, webhook delivery."""

    model_config = ConfigDict(extra="forbid")

    host: str = "127.0.0.1"
    port: int = Field(8080, ge=0, le=65535, description="0 picks a free port")
    base_url: str | None = Field(None, description="Public URL for links (default: from the request)")
    sse_keepalive_s: float = Field(15.0, gt=0, description="Seconds between SSE keep-alive comments")
    # open: the tenant is the X-Lookout-Tenant header (no authentication; the embedded default).
    # api_key: an X-API-Key header is required and names the tenant (`lookout tenant add`).
    auth_mode: Literal["open", "api_key"] = "open"
    # Server-side key of the HMAC that API keys are stored under; a secret: set it only through the
    # environment (LOOKOUT_API__KEY_PEPPER, e.g. from a Kubernetes Secret). Needed by api_key mode and
    # by `lookout tenant`.
    key_pepper: SecretStr | None = None
    # Requests per tenant, in `limits` notation ("600/minute", "10/second;600/minute"); None: no limit.
    rate_limit: str | None = "600/minute"
    max_body_bytes: int = Field(1_048_576, gt=0, description="Larger request bodies are refused (413)")
    # The STAC collections queries may name; None: any valid collection id.
    collections: list[str] | None = None
    # Hosts a query's own `stac_api` may name although they are loopback or private (the watcher polls
    # it); any other host must resolve to public addresses only.
    stac_api_allow_hosts: list[str] = []
    webhook: WebhookSettings = WebhookSettings()
    quicklook: QuicklookSettings = QuicklookSettings()

    @field_validator("rate_limit")
    @classmethod
    def _rate_limit_notation(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                parse_many(value)
            except ValueError:
                raise ValueError(
                    f"{value!r} is not a rate limit such as '600/minute' or '10/second;600/minute'"
                ) from None
        return value

    @field_validator("key_pepper")
    @classmethod
    def _long_pepper(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and len(value.get_secret_value()) < 32:
            raise ValueError("must be at least 32 characters, e.g. from `openssl rand -base64 32`")
        return value

    @model_validator(mode="after")
    def _pepper_with_api_keys(self) -> Self:
        if self.auth_mode == "api_key" and self.key_pepper is None:
            raise ValueError(
                "auth_mode api_key needs key_pepper: set LOOKOUT_API__KEY_PEPPER to a random secret of "
                "at least 32 characters (the same value `lookout tenant` uses)"
            )
        return self


_HEADER_NAME = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")  # an HTTP token (RFC 9110)
_ENV_VAR_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def _headers_by_env_var(headers: dict[str, str]) -> dict[str, str]:
    for header, variable in headers.items():
        if not _HEADER_NAME.match(header):
            raise ValueError(f"{header!r} is not an HTTP header name")
        if not _ENV_VAR_NAME.match(variable):
            raise ValueError(
                f"{header}: {variable!r} is not an environment variable name (the value is read from "
                "that variable; secrets never sit in the config)"
            )
    return headers


class S3Settings(BaseModel):
    """How a source's images at ``s3://`` hrefs are read, through GDAL's own S3 configuration
    (``services.scenes.access``). Credentials, when requests are signed, are GDAL's usual ones from the
    environment (AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, AWS_PROFILE, a web identity token), never here."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    # True: anonymous requests, for public buckets (AWS_NO_SIGN_REQUEST). False: signed with credentials.
    no_sign_request: bool = True
    # The requester pays for the transfer (AWS_REQUEST_PAYER=requester); needs signed requests.
    requester_pays: bool = False
    region: str | None = Field(None, pattern=r"^[a-z0-9-]+$", description="Bucket region, e.g. us-west-2")
    # An S3-compatible object store instead of AWS: its base URL (scheme, host, port; no path), reached
    # with path-style requests.
    endpoint: str | None = None

    @field_validator("endpoint")
    @classmethod
    def _endpoint_url(cls, endpoint: str | None) -> str | None:
        if endpoint is not None:
            parts = urlsplit(endpoint)
            if parts.scheme not in ("http", "https") or not parts.hostname or parts.path.strip("/"):
                raise ValueError(f"{endpoint!r} is not a base URL such as https://minio.example.com:9000")
        return endpoint

    @model_validator(mode="after")
    def _payer_signs(self) -> Self:
        if self.requester_pays and self.no_sign_request:
            raise ValueError(
                "requester_pays needs signed requests: set no_sign_request: false and give AWS credentials "
                "through the environment"
            )
        return self


class SourceSettings(BaseModel):
    """One watched source and how its items and images are read.

    In ``watcher.sources`` a plain string is the ``url`` of a source with the defaults below. The
    dispatcher and the API's quicklooks read these too: a scene's ``source`` (and an item's href) names
    the entry whose options apply to its reads.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    # A STAC API URL (http/https) or the path of a static catalog (catalog.json or its folder).
    url: str = Field(min_length=1)
    # planetary-computer: asset hrefs on Azure Blob Storage are signed with a SAS token right before
    # each read (the `planetary-computer` package; its own PC_SDK_SUBSCRIPTION_KEY is read from the
    # environment by that package). Items are never signed: tokens expire, and items travel on topics.
    signing: Literal["none", "planetary-computer"] = "none"
    s3: S3Settings = S3Settings()
    # HTTP headers of the STAC API requests (searches, item reads): header name -> the environment
    # variable holding its value, e.g. {X-API-Key: EXAMPLE_API_KEY}.
    headers_from_env: dict[str, str] = {}
    # HTTP headers of image reads over http(s) (GDAL_HTTP_HEADERS), same form. They go to every asset
    # host, so these need dispatcher.asset_hosts.
    asset_headers_from_env: dict[str, str] = {}

    @field_validator("headers_from_env", "asset_headers_from_env")
    @classmethod
    def _header_names(cls, headers: dict[str, str]) -> dict[str, str]:
        return _headers_by_env_var(headers)

    @model_validator(mode="after")
    def _api_headers_for_apis(self) -> Self:
        if self.headers_from_env and urlsplit(self.url).scheme.lower() not in ("http", "https"):
            raise ValueError(f"headers_from_env: {self.url!r} is a static catalog, not a STAC API over HTTP")
        return self

    def api_headers(self) -> dict[str, str]:
        """``headers_from_env`` with their values, read from the environment now.

        Raises:
            SettingsError: a variable is unset or empty, or its value spans lines.
        """
        return self._from_environment(self.headers_from_env, "headers_from_env")

    def asset_headers(self) -> dict[str, str]:
        """``asset_headers_from_env`` with their values, read from the environment now (see api_headers)."""
        return self._from_environment(self.asset_headers_from_env, "asset_headers_from_env")

    def _from_environment(self, headers: dict[str, str], key: str) -> dict[str, str]:
        values: dict[str, str] = {}
        for header, variable in headers.items():
            value = os.environ.get(variable, "")
            where = f"watcher.sources ({self.url}) {key}.{header}"
            if not value:
                raise SettingsError(f"{where}: environment variable {variable} is not set")
            if "\r" in value or "\n" in value:
                raise SettingsError(f"{where}: environment variable {variable} holds a line break")
            values[header] = value
        return values


class WatcherSettings(BaseModel):
    """The STAC watcher: what it watches, how often, how far back, and when a feed counts as stale."""

    model_config = ConfigDict(extra="forbid")

    # Sources watched by queries without their own stac_api: STAC API URLs (http/https) or paths of
    # static catalogs (catalog.json or its folder), each a plain string or a `SourceSettings` object
    # (signing, S3 options, headers). Empty: the STAC API of stac.api_url, if set.
    sources: list[SourceSettings] = []
    poll_interval_s: float = Field(30.0, gt=0)
    # Searches by acquisition time start this long before the high-water mark (the latest acquisition
    # seen), so an item published up to this long after its acquisition is still found; dedup drops the
    # ones already published. Items with a publication time are also found later than that (below).
    overlap_s: float = Field(86_400.0, ge=0)
    # overlap_s per collection id, for collections published later than overlap_s allows whose items
    # carry no publication time, e.g. {naip: 15552000}: Planetary Computer adds NAIP months after the
    # flight. Each poll re-reads that much of the collection over the AOIs.
    collection_overlap_s: dict[str, float] = {}
    # The item property telling when the catalog published an item: STAC's `created` (Earth Search sets
    # it; Planetary Computer and Maxar's open data items lack it), or e.g. the Timestamps extension's
    # `published`. Where the API can filter by a property (CQL2-JSON filter or the Query extension) and
    # the items found by acquisition time carry it, each poll also searches by it, from the latest
    # publication seen minus publication_overlap_s: such items are found however long after their
    # acquisition they come. null: acquisition time only.
    publication_field: str | None = Field("created", min_length=1)
    # Catalogs make items searchable a while after stamping them, and not in stamp order.
    publication_overlap_s: float = Field(3_600.0, ge=0)
    page_size: int = Field(100, gt=0, le=10_000, description="Items per page of a STAC API search")
    max_items_per_poll: int = Field(1000, gt=0, description="Per (source, collection) and poll")
    # Must exceed the feed's normal quiet time over the watched AOIs (revisit time, e.g. 5 days for a
    # single Sentinel-2 satellite at the equator), else a healthy feed is reported stale.
    stale_after_s: float = Field(259_200.0, gt=0)
    # Before a failing source is polled again.
    backoff: Backoff = Backoff(initial_s=5.0, max_s=300.0, jitter_s=5.0)
    publish_timeout_s: float = Field(30.0, gt=0, description="Broker acknowledgement timeout per poll")

    @field_validator("collection_overlap_s")
    @classmethod
    def _overlaps_not_negative(cls, overlaps: dict[str, float]) -> dict[str, float]:
        for collection, seconds in overlaps.items():
            if seconds < 0:
                raise ValueError(f"{collection}: {seconds} s is negative")
        return overlaps

    @field_validator("sources", mode="before")
    @classmethod
    def _plain_urls(cls, sources: Any) -> Any:
        if isinstance(sources, list):
            return [{"url": entry} if isinstance(entry, str) else entry for entry in sources]
        return sources

    @field_validator("sources")
    @classmethod
    def _distinct_sources(cls, sources: list[SourceSettings]) -> list[SourceSettings]:
        seen: dict[str, int] = {}
        for index, source in enumerate(sources):
            key = source.url.rstrip("/")
            if key in seen:
                raise ValueError(f"entries {seen[key]} and {index} are the same source {source.url!r}")
            seen[key] = index
        return sources

    def source_list(self) -> list[SourceSettings]:
        """``sources`` as SourceSettings; an entry set as a plain string after validation (``model_copy``
        does not validate) is read as the URL of a source with default options."""
        return [s if isinstance(s, SourceSettings) else SourceSettings(url=str(s)) for s in self.sources]


class SimulatorSettings(BaseModel):
    """The scene simulator that feeds the embedded default's static catalog with real imagery."""

    model_config = ConfigDict(extra="forbid")

    # Where the static catalog and its COGs are written; None: the caller picks (lookout up: its
    # state folder).
    catalog_dir: Path | None = None
    interval_s: float = Field(60.0, gt=0, description="Seconds between simulated scenes")
    # Asset hrefs become <asset_base_url>/<path under catalog_dir> (served with HTTP Range support);
    # None: absolute file paths.
    asset_base_url: str | None = None


class LookoutSettings(BaseSettings):
    """All settings of the Lookout services."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX, env_nested_delimiter=ENV_NESTED_DELIMITER, extra="forbid"
    )

    namespace: NamespaceSettings = NamespaceSettings()
    redis: RedisSettings = RedisSettings()
    store: StoreSettings = StoreSettings()
    kafka: KafkaSettings = KafkaSettings()
    stac: StacSettings = StacSettings()
    embedded: EmbeddedSettings = EmbeddedSettings()
    api: ApiSettings = ApiSettings()
    segmenter: SegmenterSettings = SegmenterSettings()
    dispatcher: DispatcherSettings = DispatcherSettings()
    watcher: WatcherSettings = WatcherSettings()
    simulator: SimulatorSettings = SimulatorSettings()

    @model_validator(mode="after")
    def _asset_headers_to_named_hosts(self) -> Self:
        # Items name their image hrefs: with any host allowed, a source's credentials would go wherever
        # an item points.
        sending = [s.url for s in self.watcher.source_list() if s.asset_headers_from_env]
        if sending and not self.dispatcher.asset_hosts:
            raise ValueError(
                f"watcher.sources {sending}: asset_headers_from_env sends credentials with image reads, so "
                "dispatcher.asset_hosts must name the hosts that may receive them (it is empty: any host)"
            )
        return self

    def topics(self) -> Topics:
        """This deployment's Kafka topics (``namespace.topic_prefix``)."""
        return Topics(prefix=self.namespace.topic_prefix)

    def redis_keys(self) -> RedisKeys:
        """This deployment's Redis key layout (``namespace.redis_prefix``)."""
        return RedisKeys(prefix=self.namespace.redis_prefix)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """Keyword arguments, then environment, then the YAML config file."""
        return (
            init_settings,
            env_settings,
            YamlConfigSettingsSource(settings_cls, yaml_file=config_file()),
        )


def config_file() -> Path:
    """The YAML config file: ``$LOOKOUT_CONFIG``, else the one shipped in the package."""
    path = Path(os.environ.get(CONFIG_ENV_VAR, DEFAULT_CONFIG_FILE))
    if not path.is_file():
        raise FileNotFoundError(f"{CONFIG_ENV_VAR}: config file {path} does not exist")
    return path


def load_settings(**overrides: object) -> LookoutSettings:
    """Load settings from keyword overrides, ``LOOKOUT_*`` variables and the YAML config file.

    Raises:
        SettingsError: a value is invalid or a key unknown; the message names each key, the reason and
            the source (environment variable, config file or keyword argument).
        FileNotFoundError: the config file does not exist.
    """
    try:
        return LookoutSettings(**overrides)
    except ValidationError as exc:
        raise SettingsError(_explain(exc, overrides)) from exc


def _explain(error: ValidationError, overrides: dict[str, object]) -> str:
    path = config_file()
    from_file = yaml.safe_load(path.read_text()) or {}
    lines = [f"invalid settings ({error.error_count()} error(s)):"]
    for item in error.errors():
        loc = [str(part) for part in item["loc"]]
        reason = item["msg"]
        if item["type"] == "extra_forbidden":
            section, known = ".".join(loc[:-1]) or "the top level", _section_fields(loc[:-1])
            reason = f"unknown key; {section} takes {known}" if known else "unknown key"
        if not loc:  # a check across sections: its message names the keys
            lines.append(f"  {reason.removeprefix('Value error, ')}")
            continue
        lines.append(f"  {'.'.join(loc)}: {reason} ({_source(loc, overrides, from_file, path)})")
    return "\n".join(lines)


def _source(loc: list[str], overrides: dict[str, object], from_file: Any, path: Path) -> str:
    """Where the value at ``loc`` was set: the source that won for a single value; for a section (its
    own validator failed), every source that set part of it; "default" if none did."""
    sources = ["keyword argument"] if _holds(overrides, loc) else []
    name = ENV_PREFIX + ENV_NESTED_DELIMITER.join(loc).upper()
    # The key itself or keys under it (LOOKOUT_WATCHER__BACKOFF__INITIAL_S for watcher.backoff), or a
    # section above it given whole, as JSON (LOOKOUT_REDIS for redis.urll).
    sections = {ENV_PREFIX + ENV_NESTED_DELIMITER.join(loc[:depth]).upper() for depth in range(1, len(loc))}
    sources += [
        f"environment variable {env}"
        for env in sorted(n.upper() for n in os.environ)
        if env == name or env.startswith(name + ENV_NESTED_DELIMITER) or env in sections
    ]
    if _holds(from_file, loc):
        sources.append(f"config file {path.resolve()}")
    if not _section_fields(loc):
        sources = sources[:1]  # sources are in priority order: the first one's value was checked
    return "; ".join(sources) or "default"


def _holds(data: Any, loc: list[str]) -> bool:
    for part in loc:
        if isinstance(data, list) and part.isdigit() and int(part) < len(data):
            data = data[int(part)]
        elif isinstance(data, dict) and part in data:
            data = data[part]
        else:
            return False
    return True


def _section_fields(loc: list[str]) -> str:
    """The keys the settings section at ``loc`` accepts, comma-separated ('' if not a section). A number
    in ``loc`` is an entry of a list of sections (``watcher.sources.0``)."""
    annotation: Any = LookoutSettings
    for part in loc:
        if part.isdigit():
            lists = [m for m in _members(annotation) if typing.get_origin(m) is list]
            annotation = typing.get_args(lists[0])[0] if lists else None
        else:
            model = _model(annotation)
            field = model.model_fields.get(part) if model is not None else None
            annotation = field.annotation if field is not None else None
        if annotation is None:
            return ""
    model = _model(annotation)
    return ", ".join(model.model_fields) if model is not None else ""


def _model(annotation: Any) -> type[BaseModel] | None:
    nested = [t for t in _members(annotation) if isinstance(t, type) and issubclass(t, BaseModel)]
    return nested[0] if nested else None


def _members(annotation: Any) -> tuple[Any, ...]:
    if isinstance(annotation, types.UnionType) or typing.get_origin(annotation) is typing.Union:
        return typing.get_args(annotation)
    return (annotation,)
