"""Roles in the browser: a viewer is shown no action, and the server refuses what the page
did not offer (a forged POST, a POST without the CSRF token, a revoked token's session)."""

from __future__ import annotations

import re

from playwright.sync_api import Browser, expect

from conftest import Demo, Screens, sign_in

DEVICE = "spine2"


def _jobs_on(demo: Demo, device: str) -> int:
    resp = demo.api.get("/api/v1/jobs", params={"device": device})
    resp.raise_for_status()
    return len(resp.json()["items"])


def test_viewer_sees_no_actions_and_forged_posts_are_refused(
    browser: Browser, demo: Demo, screens: Screens
) -> None:
    page = sign_in(browser, demo, "viewer")
    expect(page.get_by_test_id("role")).to_have_text("viewer")
    page.get_by_role("link", name=DEVICE, exact=True).click()
    expect(page.get_by_role("heading", level=1)).to_contain_text(DEVICE)
    actions = page.get_by_test_id("device-actions")
    expect(actions.get_by_role("button")).to_have_count(0)
    expect(actions.get_by_role("link")).to_have_count(0)
    expect(page.get_by_text("Activate maintenance")).to_have_count(0)
    screens.save(page, "20-device-viewer")

    device_url = page.url
    device_id = device_url.rsplit("/", 1)[-1]
    csrf = page.locator("input[name=csrf]").first.get_attribute("value")
    assert csrf

    # The wizard is not even shown to a viewer.
    resp = page.request.get(f"/ui/devices/{device_id}/activate")
    assert resp.status == 403
    # A forged POST with the viewer's own valid session and CSRF token is refused by role.
    for path in ("activate", "healthcheck", "deactivate"):
        resp = page.request.post(
            f"/ui/devices/{device_id}/{path}",
            form={"csrf": csrf, "reason": "forged", "p.sample_interval_s": "1"},
            max_redirects=0,
        )
        assert resp.status == 403, (path, resp.status, resp.text()[:300])
        assert "FORBIDDEN" in resp.text()
    assert _jobs_on(demo, DEVICE) == 0

    # The API refuses the viewer's token too.
    resp = demo.api.post(
        "/api/v1/jobs",
        json={"type": "healthcheck", "device": DEVICE},
        headers={"Authorization": f"Bearer {demo.token('viewer')}"},
    )
    assert resp.status_code == 403
    assert _jobs_on(demo, DEVICE) == 0


def test_operator_post_needs_the_csrf_token(browser: Browser, demo: Demo) -> None:
    page = sign_in(browser, demo, "operator")
    page.goto("/ui/")
    page.get_by_role("link", name=DEVICE, exact=True).click()
    expect(page.get_by_role("button", name="Run health check")).to_be_visible()
    device_id = page.url.rsplit("/", 1)[-1]
    # The session cookie alone (what a cross-site form would carry, if it could) is not enough.
    resp = page.request.post(f"/ui/devices/{device_id}/healthcheck", form={}, max_redirects=0)
    assert resp.status == 403
    assert "CSRF" in resp.text()
    resp = page.request.post(
        f"/ui/devices/{device_id}/healthcheck", form={"csrf": "not-the-token"}, max_redirects=0
    )
    assert resp.status == 403
    assert _jobs_on(demo, DEVICE) == 0
    # With the page's own form it works.
    page.get_by_role("button", name="Run health check").click()
    page.wait_for_url(re.compile(r"/ui/jobs/[0-9a-f-]+$"))
    assert _jobs_on(demo, DEVICE) == 1


def test_session_cookie_is_httponly_strict_and_ends_with_its_token(
    browser: Browser, demo: Demo
) -> None:
    resp = demo.api.post("/api/v1/tokens", json={"name": "web-short", "role": "viewer"})
    resp.raise_for_status()
    demo.tokens["short"] = resp.json()["token"]
    page = sign_in(browser, demo, "short")
    (cookie,) = [c for c in page.context.cookies() if c["name"] == "pitstop_session"]
    assert cookie["httpOnly"] is True
    assert cookie["sameSite"] == "Strict"
    assert demo.tokens["short"] not in cookie["value"]
    assert page.evaluate("document.cookie") == ""

    demo.api.delete("/api/v1/tokens/web-short").raise_for_status()
    page.goto("/ui/jobs")
    expect(page).to_have_url(re.compile(r"/ui/login"))
    expect(page.get_by_role("status")).to_contain_text("revoked")


def test_bad_token_is_refused(browser: Browser, demo: Demo) -> None:
    context = browser.new_context(base_url=demo.url)
    page = context.new_page()
    page.goto("/ui/login")
    page.get_by_label("API token").fill("pst_" + "x" * 40)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("alert")).to_contain_text("unknown token")
    assert not [c for c in context.cookies() if c["name"] == "pitstop_session"]
    context.close()
