"""Browser tests of the web UI: a real ``pitstop demo`` server in a child process and Debian's
Chromium driven by Playwright (never Playwright's own browser download).

One server and one browser per test module keep the suite's wall time small. Every screen a
test visits is saved under ``test-artifacts/web/`` so a failure can be looked at.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "integration"))

from cli_server import ServerProcess, child_env, new_token, sqlite_url

playwright_sync = pytest.importorskip("playwright.sync_api")
Browser = playwright_sync.Browser
Page = playwright_sync.Page

CHROMIUM = os.environ.get("PITSTOP_TEST_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "web"
VIEWPORT = {"width": 1280, "height": 800}


@dataclass
class Demo:
    """The running demo server, an admin API client, and tokens for each role."""

    url: str
    api: httpx.Client
    tokens: dict[str, str]

    def token(self, role: str) -> str:
        if role not in self.tokens:
            resp = self.api.post("/api/v1/tokens", json={"name": f"web-{role}", "role": role})
            resp.raise_for_status()
            self.tokens[role] = resp.json()["token"]
        return self.tokens[role]


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Demo]:
    home = tmp_path_factory.mktemp("web-home")
    admin = new_token()
    env = child_env(
        home,
        PITSTOP_DATABASE_URL=sqlite_url(home / "demo.db"),
        PITSTOP_BOOTSTRAP_TOKEN=admin,
    )
    with (
        ServerProcess("demo", env=env, log=home / "server.log") as server,
        httpx.Client(
            base_url=server.url, headers={"Authorization": f"Bearer {admin}"}, timeout=10
        ) as api,
    ):
        yield Demo(url=server.url, api=api, tokens={"admin": admin})


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    if not Path(CHROMIUM).exists():
        why = f"{CHROMIUM} is not installed (scripts/install-system-deps installs it)"
        if os.environ.get("CI") == "true":
            pytest.fail(why)
        pytest.skip(why)
    with playwright_sync.sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
        try:
            yield b
        finally:
            b.close()


class Screens:
    """Saves numbered screenshots of a test's screens under test-artifacts/web/."""

    def __init__(self, module: str) -> None:
        self.dir = ARTIFACTS
        self.dir.mkdir(parents=True, exist_ok=True)
        self.module = module

    def save(self, page: Page, name: str, *, full_page: bool = False) -> Path:
        path = self.dir / f"{name}.png"
        page.screenshot(path=str(path), full_page=full_page)
        return path


@pytest.fixture(scope="module")
def screens(request: pytest.FixtureRequest) -> Screens:
    return Screens(request.module.__name__)


SignIn = Callable[[str], Page]


@pytest.fixture
def sign_in(browser: Browser, demo: Demo) -> Iterator[SignIn]:
    """``sign_in(role)``: a fresh browser context signed in with a token of that role, and
    its page. The contexts close when the test ends, so no live stream outlasts it."""
    contexts = []

    def open_page(role: str) -> Page:
        context = browser.new_context(viewport=VIEWPORT, base_url=demo.url)
        contexts.append(context)
        context.set_default_timeout(20_000)
        page = context.new_page()
        page.goto("/ui/")
        page.get_by_label("API token").fill(demo.token(role))
        page.get_by_role("button", name="Sign in").click()
        page.wait_for_url("**/ui/")
        return page

    yield open_page
    for context in contexts:
        context.close()
