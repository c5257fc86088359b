"""The monitoring dashboard in headless Chromium, against the real API over the session's Redis.

Scenes arrive the way the dispatcher stores them (``DetectionStore.write_scene``); the page learns of
them only through the query's SSE stream.
"""

import io
import json
import math
from datetime import UTC, datetime

import httpx
import numpy as np
from PIL import Image
from playwright.sync_api import Page, expect
from shapely.geometry import shape

from services.contracts import ChangeStatus, Query, QueryCreate, QueryStatus
from tests.browser.scenes import COLLECTION, MODEL, scene_detections, scene_footprint, write_scene

# A self-intersecting AOI: the API refuses it with a message naming the field.
BOWTIE = {"type": "Polygon", "coordinates": [[[10, 50], [10.1, 50.1], [10.1, 50], [10, 50.1], [10, 50]]]}
RHINE = {
    "type": "Polygon",
    "coordinates": [[[8.2, 49.9], [8.4, 49.9], [8.4, 50.05], [8.2, 50.05], [8.2, 49.9]]],
}


def register(dashboard, text: str, aoi: dict | None = None, tenant: str = "default") -> Query:
    """A standing query stored directly (what the form does is tested on its own)."""
    body = QueryCreate(text=text, aoi=aoi or scene_footprint(), collections=[COLLECTION])
    return dashboard.ctx.queries.create(body, tenant=tenant)


def open_dashboard(page: Page, dashboard) -> None:
    """Load the page and wait until the map is drawn and the selected query's stream is live."""
    page.goto(dashboard.page_url)
    page.wait_for_function("() => window.lookout !== undefined && window.lookout.map.loaded()")
    expect(page.locator("#live-status")).to_have_attribute("data-state", "live")


def rendered_detection_ids(page: Page) -> set[str]:
    return set(
        page.evaluate(
            """() => window.lookout.map
                .queryRenderedFeatures({layers: ['detections-fill']})
                .map(f => f.properties.detection_id)"""
        )
    )


def map_texture(page: Page, lon: float, lat: float, half: int = 40) -> float:
    """How much the screen pixels vary around a map position (largest per-channel standard deviation
    over the square of `half` px): near 0 on a flat fill, large on imagery."""
    page.wait_for_function("() => window.lookout.map.loaded() && !window.lookout.map.isMoving()")
    x, y = page.evaluate(
        "([lon, lat]) => { const p = window.lookout.map.project([lon, lat]); return [p.x, p.y]; }", [lon, lat]
    )
    box = page.locator("#map").bounding_box()
    shot = Image.open(io.BytesIO(page.screenshot())).convert("RGB")
    left, top = round(box["x"] + x), round(box["y"] + y)
    pixels = np.asarray(shot.crop((left - half, top - half, left + half, top + half)), dtype=np.float64)
    return float(pixels.std(axis=(0, 1)).max())


def wait_for_image(page: Page, source: str) -> None:
    """Wait until the map has the image source and has loaded its pixels."""
    page.wait_for_function(
        "id => window.lookout.map.getSource(id) !== undefined && window.lookout.map.isSourceLoaded(id)",
        arg=source,
    )


def test_page_loads_with_no_console_errors_and_nothing_from_outside(page, dashboard, screenshot):
    buildings = register(dashboard, "all buildings")
    register(dashboard, "barges on the river", aoi=RHINE)

    open_dashboard(page, dashboard)

    cards = page.locator(".query-card")
    expect(cards).to_have_count(2)
    card = page.locator(f'[data-query-id="{buildings.id}"]')
    expect(card.locator(".query-text")).to_have_text("all buildings")
    expect(card.locator("[data-role=status]")).to_have_text("active")
    expect(card.locator("[data-role=count]")).to_have_text("0 detections")
    # Both AOIs are on the map, and the country outlines (from the world-atlas npm package) are drawn.
    page.wait_for_function(
        "() => window.lookout.map.querySourceFeatures('aois').length >= 2"
        " && window.lookout.map.queryRenderedFeatures({layers: ['land']}).length > 0"
    )
    screenshot(page, "loaded")
    assert dashboard.console_errors == []
    assert dashboard.foreign_requests == []


def test_registering_through_the_form_lists_and_selects_the_query(page, dashboard):
    open_dashboard_without_queries(page, dashboard)

    page.fill("#field-text", "  red   roofs ")
    page.fill("#field-collections", COLLECTION)
    page.fill("#field-aoi", json.dumps(scene_footprint()))
    page.fill("#field-threshold", "0.6")
    page.click("#register-form button[type=submit]")

    card = page.locator(".query-card", has_text="red roofs")
    expect(card).to_have_attribute("aria-current", "true")
    expect(card.locator("[data-role=status]")).to_have_text("active")
    (stored,) = dashboard.ctx.queries.list(tenant="default")
    assert (stored.text, stored.threshold, stored.collections) == ("red roofs", 0.6, [COLLECTION])
    assert card.get_attribute("data-query-id") == stored.id
    expect(page.locator("#register-form .field-error:not(:empty)")).to_have_count(0)
    expect(page.locator("#live-status")).to_have_attribute("data-state", "live")
    assert dashboard.console_errors == []


def open_dashboard_without_queries(page: Page, dashboard) -> None:
    page.goto(dashboard.page_url)
    expect(page.locator("#query-empty")).to_be_visible()


def test_a_bad_aoi_shows_the_api_message_next_to_the_field(page, dashboard, screenshot):
    body = {"text": "ships", "aoi": BOWTIE, "collections": [COLLECTION]}
    refused = httpx.post(f"{dashboard.url}/queries", json=body)
    assert refused.status_code == 422
    expected = {item["field"]: item["message"] for item in refused.json()["detail"]}["aoi"]
    open_dashboard_without_queries(page, dashboard)

    page.fill("#field-text", "ships")
    page.fill("#field-collections", COLLECTION)
    page.fill("#field-aoi", json.dumps(BOWTIE))
    page.click("#register-form button[type=submit]")

    message = page.locator('[data-error-for="aoi"]')
    expect(message).to_have_text(expected)
    assert "not a valid polygon" in expected
    expect(page.locator("#field-aoi")).to_have_attribute("aria-invalid", "true")
    expect(page.locator('[data-error-for="text"]')).to_be_empty()
    # Next to the field: right under the AOI box.
    field, shown = page.locator("#field-aoi").bounding_box(), message.bounding_box()
    assert 0 <= shown["y"] - (field["y"] + field["height"]) < 20
    screenshot(page, "bad-aoi")
    assert dashboard.ctx.queries.list(tenant="default") == []


def test_text_that_is_not_json_is_refused_before_asking_the_api(page, dashboard):
    open_dashboard_without_queries(page, dashboard)
    page.fill("#field-text", "ships")
    page.fill("#field-aoi", "{not json")
    page.click("#register-form button[type=submit]")
    expect(page.locator('[data-error-for="aoi"]')).to_contain_text("not valid JSON")
    assert dashboard.ctx.queries.list(tenant="default") == []


def test_pause_resume_and_delete_from_the_list(page, dashboard):
    query = register(dashboard, "all buildings")
    open_dashboard(page, dashboard)
    card = page.locator(f'[data-query-id="{query.id}"]')

    card.locator("[data-action=pause]").click()
    expect(card.locator("[data-role=status]")).to_have_text("paused")
    assert dashboard.ctx.queries.get(query.id).status == QueryStatus.paused
    card.locator("[data-action=resume]").click()
    expect(card.locator("[data-role=status]")).to_have_text("active")
    assert dashboard.ctx.queries.get(query.id).status == QueryStatus.active

    delete = card.locator("[data-action=delete]")
    delete.click()
    expect(delete).to_have_text("Confirm delete")
    assert dashboard.ctx.queries.list(tenant="default") != []  # one click arms, it does not delete
    delete.click()
    expect(card).to_have_count(0)
    expect(page.locator("#query-empty")).to_be_visible()
    assert dashboard.ctx.queries.list(tenant="default") == []
    assert dashboard.console_errors == []


def test_a_new_scene_appears_on_the_map_without_a_reload(page, dashboard, tmp_path, screenshot):
    query = register(dashboard, "all buildings")
    register(dashboard, "barges on the river", aoi=RHINE)
    page.goto(f"{dashboard.page_url}#query={query.id}")
    page.wait_for_function("() => window.lookout !== undefined && window.lookout.map.loaded()")
    expect(page.locator("#live-status")).to_have_attribute("data-state", "live")
    page.evaluate("() => { window.sameDocument = true; }")  # gone if the page reloads
    centre = shape(scene_footprint()).centroid
    assert map_texture(page, centre.x, centre.y) < 5  # no imagery yet: the flat AOI fill

    acquired = datetime(2026, 3, 1, 15, 30, tzinfo=UTC)
    item_href = write_scene(tmp_path, "atl-0001", acquired)
    detections = scene_detections(query, "atl-0001", item_href, acquired)
    assert dashboard.ctx.detections.write_scene(query, COLLECTION, "atl-0001", MODEL, detections).written

    expected = {d.id for d in detections}
    page.wait_for_function(
        """ids => {
            const drawn = window.lookout.map.queryRenderedFeatures({layers: ['detections-fill']});
            return ids.every(id => drawn.some(f => f.properties.detection_id === id));
        }""",
        arg=sorted(expected),
    )
    assert rendered_detection_ids(page) == expected
    assert page.evaluate("() => window.sameDocument") is True
    card = page.locator(f'[data-query-id="{query.id}"]')
    expect(card.locator("[data-role=count]")).to_have_text("43 detections")
    expect(page.locator("#feed .feed-item")).to_have_count(43)

    # The scene's quicklook lies under the polygons where the API says, and its pixels are drawn.
    source = "quicklook:lookout-sim/atl-0001"
    wait_for_image(page, source)
    described = httpx.get(
        f"{dashboard.url}/queries/{query.id}/detections/{detections[0].id}/quicklook"
    ).json()
    placed = page.evaluate(f"() => window.lookout.map.getSource('{source}').coordinates")
    assert placed == described["coordinates"]
    layers = page.evaluate("() => window.lookout.map.getStyle().layers.map(l => l.id)")
    assert layers.index(source) < layers.index("detections-fill")
    assert map_texture(page, centre.x, centre.y) > 20  # imagery, not a flat fill
    screenshot(page, "scene-arrived")

    # Clicking a polygon opens its details.
    largest = max(detections, key=lambda d: d.area_m2)
    point = shape(largest.geometry).representative_point()
    x, y = page.evaluate(
        "([lon, lat]) => { const p = window.lookout.map.project([lon, lat]); return [p.x, p.y]; }",
        [point.x, point.y],
    )
    page.locator("#map canvas").click(position={"x": x, "y": y})
    detail = page.locator("#detail-body")
    expect(detail.locator("[data-role=query-text]")).to_have_text("“all buildings”")
    # The page rounds half up (JavaScript's Math.round), Python's round() to even: floor(x + 0.5).
    expect(detail.locator("[data-role=score]")).to_contain_text(f"{math.floor(largest.score * 100 + 0.5)} %")
    expect(detail.locator("[data-role=area]")).to_have_text(f"{math.floor(largest.area_m2 + 0.5):,} m²")
    expect(detail.locator("[data-role=change]")).to_have_text("new")
    expect(detail.locator("[data-role=acquired]")).to_have_text("2026-03-01 15:30:00 UTC")
    expect(detail.locator("[data-role=item-link]")).to_have_text(item_href)
    expect(page.locator(f'#feed [data-detection-id="{largest.id}"]')).to_have_attribute(
        "aria-current", "true"
    )
    screenshot(page, "detail")

    # A later scene of the same place: its polygons join, its quicklook is drawn on top.
    later = datetime(2026, 3, 2, 15, 30, tzinfo=UTC)
    later_href = write_scene(tmp_path, "atl-0002", later)
    persisting = [
        d.model_copy(update={"change": ChangeStatus.persisting})
        for d in scene_detections(query, "atl-0002", later_href, later)
    ]
    assert dashboard.ctx.detections.write_scene(query, COLLECTION, "atl-0002", MODEL, persisting).written
    expect(card.locator("[data-role=count]")).to_have_text("86 detections")
    newer = "quicklook:lookout-sim/atl-0002"
    wait_for_image(page, newer)
    layers = page.evaluate("() => window.lookout.map.getStyle().layers.map(l => l.id)")
    assert layers.index(source) < layers.index(newer) < layers.index("detections-fill")
    assert page.evaluate("() => window.sameDocument") is True
    screenshot(page, "second-scene")
    assert dashboard.console_errors == []
    assert dashboard.foreign_requests == []
