"""``lookout``: run the service on embedded defaults, run one component, or talk to a running API."""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import signal
import sys
import threading
from pathlib import Path
from typing import TYPE_CHECKING

import httpx

from services.api.tenancy import API_KEY_HEADER, TENANT_HEADER
from services.cli_tenants import add_tenant_commands
from services.embedded.stack import SERVICES, LocalStack
from services.settings import SettingsError

if TYPE_CHECKING:
    from danet.config import DANetConfig
    from services.contracts import Query
    from services.settings import LookoutSettings, SegmenterSettings

DEFAULT_API = "http://127.0.0.1:8080"
API_KEY_ENV_VAR = "LOOKOUT_API_KEY"


def _stop_on_signals() -> threading.Event:
    """An event set by Ctrl-C (SIGINT) or SIGTERM."""
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    return stop


def _wait_for_stop() -> None:
    """Block until Ctrl-C or SIGTERM."""
    stop = _stop_on_signals()
    while not stop.wait(0.5):
        pass


def _stack(args: argparse.Namespace) -> int:
    """Run the embedded Redis / Kafka-protocol broker / STAC API until Ctrl-C."""
    services = args.services.split(",") if args.services else list(SERVICES)
    with LocalStack(services) as stack:
        print("embedded stack running (Ctrl-C to stop); point clients at it with:")
        for key, value in stack.environment().items():
            print(f"export {key}={value}")
        print(f"state and logs: {stack.state_dir}", flush=True)
        _wait_for_stop()
    print("stopped")
    return 0


def _up(args: argparse.Namespace) -> int:
    """The main job on embedded defaults: everything on this machine, a sample query, the API's URL."""
    # Loopback-only local Ray (set before Ray is imported): no auth token file in the home folder; a busy
    # laptop answers Serve's queue-length probes slower than the 0.1 s default, which floods the log.
    os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    os.environ.setdefault("RAY_SERVE_QUEUE_LENGTH_RESPONSE_DEADLINE_S", "1.0")
    from services.embedded.runtime import EmbeddedRuntime
    from services.settings import load_settings

    settings = load_settings()
    if args.port is not None:
        settings = settings.model_copy(update={"api": settings.api.model_copy(update={"port": args.port})})
    print("starting Lookout on embedded defaults (Redis, Kafka-protocol broker, Ray Serve, simulator)...")
    runtime = EmbeddedRuntime(settings).start(ray_cpus=args.ray_cpus)
    try:
        query = runtime.sample_query
        url = runtime.api.url
        print(f"\nLookout is up: API {url}  (OpenAPI docs {url}/docs, health {url}/healthz)")
        print(f'sample standing query {query.id}: "{query.text}" over the SpaceNet Atlanta tile')
        print(f"  dashboard:  {url}/dashboard/  (a map of the queries and their live detections)")
        print(f"  detections: {url}/queries/{query.id}/detections")
        print(f"  live:       lookout subscribe {query.id} --api {url}")
        print(f"  QGIS (OGC API - Features): {url}/collections/{query.id}/items")
        print(f"new simulated scene every {settings.simulator.interval_s:.0f} s. Ctrl-C stops everything.",
              flush=True)  # fmt: skip
        _wait_for_stop()
    finally:
        print("stopping...", flush=True)
        runtime.stop()
    print("stopped")
    return 0


def _subscribe(args: argparse.Namespace) -> int:
    """Print a query's detections as they arrive (Server-Sent Events), one GeoJSON Feature per line."""
    headers = _client_headers(args) | {"Accept": "text/event-stream"}
    params = {"from": "0"} if args.replay else {}
    url = f"{args.api}/queries/{args.query_id}/stream"
    with (
        contextlib.suppress(KeyboardInterrupt),
        httpx.stream(
            "GET", url, headers=headers, params=params, timeout=httpx.Timeout(10.0, read=None)
        ) as response,
    ):
        if response.status_code != 200:
            response.read()
            print(f"{url}: HTTP {response.status_code}: {response.text}", file=sys.stderr)
            return 1
        for line in response.iter_lines():
            if line.startswith("data:"):
                feature = json.loads(line[5:])
                props = feature["properties"]
                if args.json:
                    print(json.dumps(feature), flush=True)
                else:
                    print(
                        f"{props['acquired']}  {props['item_id']}  {props['change']:<10}  score "
                        f"{props['score']:.2f}  {props['area_m2']:.0f} m²  {feature['id']}",
                        flush=True,
                    )
    return 0


def _client_headers(args: argparse.Namespace) -> dict[str, str]:
    """Who the client commands speak for: an API key (the API derives the tenant), else a tenant name."""
    if args.api_key:
        return {API_KEY_HEADER: args.api_key}
    return {TENANT_HEADER: args.tenant}


def _request(args: argparse.Namespace, method: str, path: str, **kwargs: object) -> httpx.Response:
    headers = _client_headers(args)
    response = httpx.request(method, f"{args.api}{path}", headers=headers, timeout=30.0, **kwargs)
    if response.is_error:
        detail = response.json().get("detail") if response.headers.get("content-type", "").startswith(
            "application/json") else response.text  # fmt: skip
        if isinstance(detail, list):
            detail = "; ".join(f"{d.get('field')}: {d.get('message')}" for d in detail)
        raise SystemExit(f"{method} {path}: HTTP {response.status_code}: {detail}")
    return response


def _query_add(args: argparse.Namespace) -> int:
    """Register a standing query."""
    aoi_text = Path(args.aoi).read_text() if Path(args.aoi).is_file() else args.aoi
    aoi = json.loads(aoi_text)
    if aoi.get("type") == "Feature":
        aoi = aoi["geometry"]
    body = {"text": args.text, "aoi": aoi, "collections": args.collections, "threshold": args.threshold}
    if args.start:
        body["start"] = args.start
    query = _request(args, "POST", "/queries", json=body).json()
    print(query["id"])
    return 0


def _query_list(args: argparse.Namespace) -> int:
    """List standing queries."""
    for query in _request(args, "GET", "/queries").json()["queries"]:
        print(f"{query['id']}  {query['status']:<7} v{query['version']}  {','.join(query['collections'])}  "
              f"{query['text']!r}")  # fmt: skip
    return 0


def _query_rm(args: argparse.Namespace) -> int:
    """Delete a standing query."""
    _request(args, "DELETE", f"/queries/{args.query_id}")
    print(f"deleted {args.query_id}")
    return 0


def _component(args: argparse.Namespace) -> int:
    """Run one component against external services (production); settings from configs + LOOKOUT_*."""
    from services.composition import ComponentThreads, Composition, run_until_stopped
    from services.settings import load_settings

    composition = Composition(load_settings())
    stop = _stop_on_signals()
    if args.command == "watch":
        run_until_stopped(composition.watcher(), stop)
    elif args.command == "dispatch":
        run_until_stopped(composition.dispatcher(), stop)
    elif args.command == "serve":
        composition.deploy_segmenter()
        stop.wait()
    elif args.command == "api":
        import uvicorn

        app, webhooks = composition.api_with_webhooks()
        delivering = ComponentThreads(stop)
        delivering.start("webhooks", webhooks)
        try:
            api = composition.settings.api
            uvicorn.run(app, host=api.host, port=api.port)
        finally:
            delivering.stop()
    return 0


def _explain(args: argparse.Namespace) -> int:
    """What the dispatcher would do with a STAC item (a file or URL) for the configured model, and why;
    reads no pixels. With --query, also whether the scene concerns that standing query."""
    from services.dispatcher.matching import mismatch, scene_facts
    from services.scenes import PermanentSceneError, TransientSceneError
    from services.scenes.explain import explain_item, format_explanation
    from services.scenes.inputs import SceneInputs
    from services.scenes.selection import ModelInput
    from services.settings import load_settings

    settings = load_settings()
    inputs = SceneInputs.from_settings(settings.dispatcher, settings.watcher.source_list())
    href = args.item if "://" in args.item else Path(args.item).resolve().as_uri()
    try:
        item = inputs.read_item(href)
    except (PermanentSceneError, TransientSceneError) as exc:
        raise SystemExit(f"lookout explain: {exc}") from None
    cfg, model_name = _model_config(settings.segmenter)
    result = explain_item(item, inputs, ModelInput.from_contract(cfg.input), source=args.source, base=href)
    result["model"] = model_name
    if args.query:
        query = _load_query(args.query, settings)
        facts = scene_facts(str(item.get("collection") or ""), item, args.source)
        reason = mismatch(query, facts, model_name)
        result["query"] = {"id": query.id, "matches": reason is None, "reason": reason}
    print(json.dumps(result, indent=2) if args.json else format_explanation(result))
    return 0


def _model_config(segmenter: SegmenterSettings) -> tuple[DANetConfig, str]:
    """The configured model's config (its input contract) and name, from its checkpoint or preset."""
    from danet.config import load_preset

    if segmenter.checkpoint is None:
        return load_preset(segmenter.preset), segmenter.preset
    from danet.checkpoint import read_checkpoint

    info, _ = read_checkpoint(segmenter.checkpoint)
    return info.config, segmenter.checkpoint.stem


def _load_query(ref: str, settings: LookoutSettings) -> Query:
    """A standing query: a JSON file of one, or its id in the configured Redis."""
    from services.contracts import Query

    path = Path(ref)
    if path.is_file():
        return Query.model_validate_json(path.read_text(encoding="utf-8"))
    from services.adapters.redis_client import make_redis
    from services.store import QueryNotFoundError, QueryStore

    client = make_redis(settings.redis)
    try:
        return QueryStore(client, settings.redis_keys()).get(ref)
    except QueryNotFoundError:
        raise SystemExit(f"lookout explain: --query {ref}: no such query file or query id") from None
    finally:
        client.close()


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with every subcommand."""
    parser = argparse.ArgumentParser(prog="lookout", description=__doc__)
    parser.add_argument("-v", "--verbose", action="store_true", help="log at INFO level")
    sub = parser.add_subparsers(dest="command", required=True)

    up = sub.add_parser("up", help=_up.__doc__)
    up.add_argument("--port", type=int, help="API port (default: api.port from the settings)")
    up.add_argument("--ray-cpus", type=int, default=2, help="CPUs Ray may schedule on")
    up.set_defaults(func=_up)

    explain = sub.add_parser("explain", help=_explain.__doc__.splitlines()[0])
    explain.add_argument("item", help="a STAC item: a JSON file or an http(s)/file URL")
    explain.add_argument("--query", help="a standing query: its id (in the configured Redis) or a JSON file")
    explain.add_argument("--source", default="", help="the STAC API the item came from (its source options)")
    explain.add_argument("--json", action="store_true", help="print the decision as JSON")
    explain.set_defaults(func=_explain)

    stack = sub.add_parser("stack", help=_stack.__doc__)
    stack.add_argument(
        "--services", default="", help=f"comma-separated subset of {','.join(SERVICES)} (default: all)"
    )
    stack.set_defaults(func=_stack)

    def client_options(p: argparse.ArgumentParser) -> None:
        p.add_argument("--api", default=DEFAULT_API, help=f"Lookout API URL (default {DEFAULT_API})")
        p.add_argument(
            "--tenant", default="default", help=f"tenant ({TENANT_HEADER} header; without an API key)"
        )
        p.add_argument(
            "--api-key",
            default=os.environ.get(API_KEY_ENV_VAR),
            help=f"API key when the API runs with auth_mode api_key (default: ${API_KEY_ENV_VAR})",
        )

    subscribe = sub.add_parser("subscribe", help=_subscribe.__doc__)
    subscribe.add_argument("query_id")
    subscribe.add_argument("--replay", action="store_true", help="start from the first stored detection")
    subscribe.add_argument("--json", action="store_true", help="print whole GeoJSON Features")
    client_options(subscribe)
    subscribe.set_defaults(func=_subscribe)

    query = sub.add_parser("query", help="manage standing queries").add_subparsers(
        dest="action", required=True
    )
    add = query.add_parser("add", help=_query_add.__doc__)
    add.add_argument("text", help='the referring expression, e.g. "small airplanes at the airport"')
    add.add_argument(
        "--aoi", required=True, help="GeoJSON Polygon/MultiPolygon (CRS84): a file or inline JSON"
    )
    add.add_argument("--collections", nargs="+", required=True)
    add.add_argument("--threshold", type=float, default=0.5)
    add.add_argument("--start", help="backfill from this RFC 3339 time")
    client_options(add)
    add.set_defaults(func=_query_add)
    ls = query.add_parser("list", help=_query_list.__doc__)
    client_options(ls)
    ls.set_defaults(func=_query_list)
    rm = query.add_parser("rm", help=_query_rm.__doc__)
    rm.add_argument("query_id")
    client_options(rm)
    rm.set_defaults(func=_query_rm)
    add_tenant_commands(sub)

    components = {
        "watch": "the STAC watcher",
        "dispatch": "the Kafka dispatcher",
        "serve": "the Ray Serve segmenter (connects to RAY_ADDRESS)",
        "api": "the HTTP API and the webhook deliveries",
    }
    for name, text in components.items():
        sub.add_parser(name, help=f"run {text} against external services").set_defaults(func=_component)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``lookout`` console script."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    try:
        return int(args.func(args))
    except SettingsError as exc:  # a bad key or value in the config file or a LOOKOUT_* variable
        print(f"lookout: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
