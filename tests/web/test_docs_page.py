"""The API docs page renders Swagger UI from pitstop's own files, under its
Content-Security-Policy, without a request to any other host."""

from __future__ import annotations

from urllib.parse import urlsplit

from browser_support import Demo, Screens, watch_policy
from playwright.sync_api import Browser


def test_the_docs_page_works_air_gapped(browser: Browser, demo: Demo, screens: Screens) -> None:
    context = browser.new_context(viewport={"width": 1280, "height": 800}, base_url=demo.url)
    refused: list[str] = []
    watch_policy(context, refused)
    hosts: set[str] = set()
    context.on("request", lambda req: hosts.add(urlsplit(req.url).netloc))
    try:
        page = context.new_page()
        page.goto("/docs")
        page.locator(".swagger-ui .info .title").filter(has_text="pitstop").wait_for()
        page.get_by_text("/api/v1/devices", exact=True).first.wait_for()
        screens.save(page, "docs")
    finally:
        context.close()
    assert hosts == {urlsplit(demo.url).netloc}
    assert refused == []
