"""Browser tests of the web UI: a real ``pitstop demo`` server in a child process and Debian's
Chromium driven by Playwright (never Playwright's own browser download).

One server and one browser per test module keep the suite's wall time small. Every screen a
test visits is saved under ``test-artifacts/web/`` so a failure can be looked at.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "integration"))

from browser_support import Demo, Screens, SignIn, watch_policy
from cli_server import ServerProcess, child_env, new_token, sqlite_url

# Playwright is a dev dependency: a missing one is an error, never a silent skip.
from playwright import sync_api as playwright_sync

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
VIEWPORT = {"width": 1280, "height": 800}


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


@pytest.fixture(scope="module")
def screens(request: pytest.FixtureRequest) -> Screens:
    return Screens(request.module.__name__)


@pytest.fixture
def sign_in(browser: Browser, demo: Demo) -> Iterator[SignIn]:
    """``sign_in(role)``: a fresh browser context signed in with a token of that role, and
    its page. The contexts close when the test ends, so no live stream outlasts it; the test
    fails if the Content-Security-Policy refused anything on any of its pages."""
    contexts = []
    refused: list[str] = []

    def open_page(role: str) -> Page:
        context = browser.new_context(viewport=VIEWPORT, base_url=demo.url)
        watch_policy(context, refused)
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
    assert refused == [], "refused by the Content-Security-Policy, or a script error"
