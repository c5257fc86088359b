"""The monitoring dashboard: the page, the npm libraries it imports, and scene quicklooks for its map.

- ``/dashboard/``: the page (``services/api/dashboard/public``); it calls this API from the browser.
- ``/dashboard/vendor/{package}/...``: the files of the npm packages the page imports, served from
  ``services/api/dashboard/node_modules`` (installed by :data:`INSTALL_COMMAND`). Nothing is fetched
  from the internet at run time.
- ``/queries/{id}/detections/{detection_id}/quicklook``: where the quicklook of the detection's scene
  lies (CRS84 bounds and corners) and a link to its PNG (``.../quicklook.png``); see
  :mod:`services.api.quicklook`.

The page and libraries are public (the page asks for an API key when the API answers 401); quicklooks
are scoped to the caller's tenant like the detections they belong to.
"""

# Annotations are evaluated eagerly (no __future__ import): FastAPI resolves the closure's Tenant alias.

import logging
import os
from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Request, Response
from fastapi.responses import FileResponse, RedirectResponse
from starlette.staticfiles import StaticFiles

from services.api.context import ApiContext
from services.api.errors import ERROR_RESPONSES, DetectionNotFoundError
from services.api.links import api_url, link
from services.api.quicklook import (
    Quicklook,
    QuicklookCache,
    QuicklookUnavailableError,
    SceneReadError,
)
from services.api.responses import ErrorMessage, QuicklookDocument
from services.contracts import Detection

log = logging.getLogger(__name__)

DASHBOARD_DIR = Path(__file__).resolve().parents[1] / "dashboard"
PUBLIC_DIR = DASHBOARD_DIR / "public"
NODE_MODULES = DASHBOARD_DIR / "node_modules"
INSTALL_COMMAND = "npm ci --prefix services/api/dashboard"
# URL name -> folder inside node_modules: only these folders are served.
VENDOR_PACKAGES = {
    "maplibre-gl": "maplibre-gl/dist",
    "eventsource": "eventsource/dist",
    "eventsource-parser": "eventsource-parser/dist",
    "topojson-client": "topojson-client/src",
    "world-atlas": "world-atlas",
}
CRS84 = "http://www.opengis.net/def/crs/OGC/1.3/CRS84"
PNG = "image/png"
# Browsers revalidate (cheap 304s through the ETag) so an upgraded page never runs stale modules.
REVALIDATE = {"Cache-Control": "no-cache"}


def relative_path(url_path: str) -> str:
    """A URL path as a relative OS path (StaticFiles then refuses anything leaving its folder)."""
    return os.path.normpath(os.path.join(*url_path.split("/"))) if url_path else "."


def quicklook_document(detection: Detection, quicklook: Quicklook, png_url: str) -> QuicklookDocument:
    """Where a scene's quicklook lies on the map."""
    return QuicklookDocument(
        collection=detection.collection,
        item_id=detection.item_id,
        item_href=detection.item_href,
        crs=CRS84,
        bbox=quicklook.bounds,
        coordinates=quicklook.corners,
        width=quicklook.width,
        height=quicklook.height,
        links=[link(png_url, "preview", PNG, "the scene's quicklook")],
    )


def build_router(ctx: ApiContext) -> APIRouter:
    """Routes of the dashboard page, its libraries and the scene quicklooks."""
    router = APIRouter(tags=["dashboard"])
    Tenant = Annotated[str, Depends(ctx.tenant)]
    page_files = StaticFiles(directory=PUBLIC_DIR)
    vendor_files = {
        name: StaticFiles(directory=NODE_MODULES / folder, check_dir=False)
        for name, folder in VENDOR_PACKAGES.items()
    }
    missing = [name for name, folder in VENDOR_PACKAGES.items() if not (NODE_MODULES / folder).is_dir()]
    if missing:
        log.warning(
            "dashboard: npm packages %s are not installed, the page cannot load them: run `%s`",
            missing,
            INSTALL_COMMAND,
        )
    quicklooks = QuicklookCache(ctx.redis, ctx.keys, ctx.settings.quicklook, ctx.scenes)

    @router.get("/dashboard", include_in_schema=False)
    def dashboard_redirect() -> RedirectResponse:
        # Relative, so it also holds behind a reverse proxy that adds a path prefix.
        return RedirectResponse("dashboard/")

    @router.get("/dashboard/", include_in_schema=False)
    def dashboard_page() -> FileResponse:
        return FileResponse(PUBLIC_DIR / "index.html", media_type="text/html", headers=REVALIDATE)

    @router.get("/dashboard/vendor/{package}/{path:path}", include_in_schema=False)
    async def vendor_file(package: str, path: str, request: Request) -> Response:
        files = vendor_files.get(package)
        if files is None:
            raise HTTPException(404, f"{package!r} is not one of the dashboard's libraries")
        if not (NODE_MODULES / VENDOR_PACKAGES[package]).is_dir():
            raise HTTPException(
                503, f"the dashboard's npm packages are not installed: run `{INSTALL_COMMAND}`"
            )
        response = await files.get_response(relative_path(path), request.scope)
        response.headers.update(REVALIDATE)
        return response

    @router.get("/dashboard/{path:path}", include_in_schema=False)
    async def page_file(path: str, request: Request) -> Response:
        response = await page_files.get_response(relative_path(path), request.scope)
        response.headers.update(REVALIDATE)
        return response

    def scene_of(query_id: str, detection_id: str, tenant: str) -> Detection:
        ctx.queries.get(query_id, tenant=tenant)
        detection = ctx.detections.get(query_id, detection_id)
        if detection is None:
            raise DetectionNotFoundError(query_id, detection_id)
        return detection

    def quicklook_of(detection: Detection) -> Quicklook:
        if detection.item_href is None:
            raise HTTPException(
                404, f"detection {detection.id} has no STAC item link (item_href), so no quicklook"
            )
        try:
            return quicklooks.get(detection.item_href)
        except QuicklookUnavailableError as exc:
            raise HTTPException(
                404, f"no quicklook for {detection.collection}/{detection.item_id}: {exc}"
            ) from exc
        except SceneReadError as exc:
            log.warning("quicklook of %s/%s failed: %s", detection.collection, detection.item_id, exc)
            raise HTTPException(
                502, f"could not read {detection.collection}/{detection.item_id}: {exc}"
            ) from exc

    quicklook_errors = ERROR_RESPONSES | {
        502: {"model": ErrorMessage, "description": "The scene's image could not be read"}
    }

    @router.get("/queries/{query_id}/detections/{detection_id}/quicklook", responses=quicklook_errors)
    def quicklook(query_id: str, detection_id: str, tenant: Tenant, request: Request) -> QuicklookDocument:
        """Where the quicklook of the detection's scene lies: CRS84 ``bbox``, the four ``coordinates``
        (top-left, top-right, bottom-right, bottom-left, as a MapLibre image source takes them) and a
        ``preview`` link to the PNG (Web Mercator, transparent outside the image)."""
        detection = scene_of(query_id, detection_id, tenant)
        png_url = api_url(
            request, ctx.settings.base_url, f"queries/{query_id}/detections/{detection_id}/quicklook.png"
        )
        return quicklook_document(detection, quicklook_of(detection), png_url)

    @router.get(
        "/queries/{query_id}/detections/{detection_id}/quicklook.png",
        response_class=Response,
        responses={200: {"content": {PNG: {}}, "description": "The quicklook PNG"}} | quicklook_errors,
    )
    def quicklook_png(query_id: str, detection_id: str, tenant: Tenant) -> Response:
        """The quicklook of the detection's scene as a PNG (rendered once, then served from the cache)."""
        image = quicklook_of(scene_of(query_id, detection_id, tenant))
        max_age = ctx.settings.quicklook.cache_ttl_s
        return Response(image.png, media_type=PNG, headers={"Cache-Control": f"private, max-age={max_age}"})

    return router
