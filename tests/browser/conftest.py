"""The dashboard in a real browser: headless Debian Chromium driven by Playwright, against the real API
(uvicorn on 127.0.0.1 over the session's Redis).

Chromium is the Debian package (`apt-get install chromium`, done by deploy/bootstrap.sh); Playwright
drives it through its executable path and never downloads a browser. Screenshots go to
test-artifacts/browser/ (git-ignored).
"""

import shutil
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from fastapi import FastAPI
from playwright.sync_api import Browser, ConsoleMessage, Page, Route, sync_playwright

from services.adapters.redis_client import make_redis
from services.api import create_app
from services.api.context import ApiContext
from services.api.server import ApiServer
from services.contracts import RedisKeys

# Debian's Chromium as root in a container: no sandbox, no GPU, nothing phoning home or updating itself.
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
VIEWPORT = {"width": 1440, "height": 900}
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "browser"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/browser/" in str(item.path).replace("\\", "/"):
            item.add_marker(pytest.mark.integration)


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """Headless Chromium (the Debian package), started once per test module. Not once per session:
    Playwright's sync API keeps an asyncio loop on the main thread while it is open, and Ray Serve's
    blocking handle calls in later tests refuse to run inside one."""
    executable = shutil.which("chromium")
    if executable is None:
        pytest.fail(
            "Chromium is not installed: the browser tests need the Debian package "
            "(apt-get install -y --no-install-recommends chromium; deploy/bootstrap.sh installs it)"
        )
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@dataclass
class Dashboard:
    """The running API (its URL and context) and the page's console errors and foreign requests."""

    url: str
    app: FastAPI
    console_errors: list[str] = field(default_factory=list)
    foreign_requests: list[str] = field(default_factory=list)

    @property
    def ctx(self) -> ApiContext:
        """Stores, settings and Redis of the running API."""
        return self.app.state.context

    @property
    def page_url(self) -> str:
        """Where the dashboard page is."""
        return f"{self.url}/dashboard/"


@pytest.fixture
def api_settings(stack_settings):
    """Settings of the API under test (the session's services, configs/service.yaml otherwise)."""
    return stack_settings


@pytest.fixture
def dashboard(api_settings) -> Iterator[Dashboard]:
    """The real API on a free 127.0.0.1 port, with a fresh Redis key prefix."""
    client = make_redis(api_settings.redis)
    keys = RedisKeys(prefix=f"browser-{uuid.uuid4().hex[:8]}:")
    app = create_app(api_settings, redis_client=client, keys=keys)
    try:
        with ApiServer(app) as server:
            yield Dashboard(url=server.url, app=app)
    finally:
        client.close()


@pytest.fixture
def page(browser: Browser, dashboard: Dashboard) -> Iterator[Page]:
    """A fresh browser tab; console errors, page errors and requests leaving the API are recorded, and
    such requests are refused (nothing may come from the internet)."""
    context = browser.new_context(viewport=VIEWPORT)

    def outside_api(url: str) -> bool:
        return not url.startswith((dashboard.url + "/", "blob:", "data:"))

    def refuse(route: Route) -> None:
        dashboard.foreign_requests.append(route.request.url)
        route.abort()

    def on_console(message: ConsoleMessage) -> None:
        if message.type == "error":
            dashboard.console_errors.append(f"{message.text} ({message.location.get('url')})")

    context.route(outside_api, refuse)
    tab = context.new_page()
    tab.on("console", on_console)
    tab.on("pageerror", lambda error: dashboard.console_errors.append(f"uncaught: {error}"))
    yield tab
    context.close()


@pytest.fixture
def screenshot(request: pytest.FixtureRequest) -> Callable[[Page, str], Path]:
    """save(page, name): a screenshot at test-artifacts/browser/<test>-<name>.png; returns its path."""

    def save(page: Page, name: str) -> Path:
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        path = ARTIFACTS / f"{request.node.name}-{name}.png"
        page.screenshot(path=path)
        return path

    return save
