"""The dashboard against an API that requires API keys (``api.auth_mode: api_key``): the page asks for a
key on the first 401, keeps it for the tab and sends it on every request, the event stream included."""

import pytest
from playwright.sync_api import Request, expect
from pydantic import SecretStr

from services.api.api_keys import ApiKeyStore
from services.contracts import QueryCreate
from tests.browser.scenes import COLLECTION, scene_footprint

PEPPER = "browser-test-pepper-" + "x" * 24


@pytest.fixture
def api_settings(stack_settings):
    api = stack_settings.api.model_copy(update={"auth_mode": "api_key", "key_pepper": SecretStr(PEPPER)})
    return stack_settings.model_copy(update={"api": api})


def test_the_page_asks_for_a_key_keeps_it_and_sends_it(page, dashboard, screenshot):
    ctx = dashboard.ctx
    key = ApiKeyStore(ctx.redis, ctx.keys, PEPPER).issue("acme").key
    body = QueryCreate(text="all buildings", aoi=scene_footprint(), collections=[COLLECTION])
    query = ctx.queries.create(body, tenant="acme")
    streams: list[Request] = []
    page.on("request", lambda r: streams.append(r) if r.url.endswith(f"/queries/{query.id}/stream") else None)

    page.goto(dashboard.page_url)
    dialog = page.locator("#key-dialog")
    expect(dialog).to_be_visible()
    expect(page.locator("#key-reason")).to_contain_text("asks for an API key")
    screenshot(page, "key-dialog")
    page.fill("#key-input", key)
    page.click("#key-form button[type=submit]")

    expect(dialog).to_be_hidden()
    expect(page.locator(f'[data-query-id="{query.id}"]')).to_contain_text("all buildings")
    expect(page.locator("#live-status")).to_have_attribute("data-state", "live")
    assert page.evaluate("() => sessionStorage.getItem('lookout.apiKey')") == key
    assert streams
    assert all(r.headers.get("x-api-key") == key for r in streams)
    expect(page.locator("#forget-key")).to_be_visible()

    # The key stays for the tab: a reload asks nothing.
    page.reload()
    expect(page.locator(f'[data-query-id="{query.id}"]')).to_be_visible()
    expect(dialog).to_be_hidden()
    assert dashboard.foreign_requests == []
