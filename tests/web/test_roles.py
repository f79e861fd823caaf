"""Roles in the browser: a viewer is shown no action, and the server refuses what the page
did not offer (a forged POST, a POST without the CSRF token, a revoked token's session)."""

from __future__ import annotations

import re

from browser_support import Demo, Screens, SignIn, watch_policy
from playwright.sync_api import Browser, expect

DEVICE = "spine2"


def _jobs_on(demo: Demo, device: str) -> int:
    resp = demo.api.get("/api/v1/jobs", params={"device": device})
    resp.raise_for_status()
    return len(resp.json()["items"])


def test_viewer_sees_no_actions_and_forged_posts_are_refused(
    sign_in: SignIn, demo: Demo, screens: Screens
) -> None:
    page = sign_in("viewer")
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


def test_operator_post_needs_the_csrf_token(sign_in: SignIn, demo: Demo) -> None:
    page = sign_in("operator")
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
    # The health check samples twice, 5 s apart by default: time to cancel it between steps.
    page.get_by_role("button", name="Cancel job").click()
    page.locator("#confirm-dialog").get_by_role("button", name="Confirm").click()
    expect(page.get_by_test_id("job-status").locator(".badge")).to_have_text(
        "cancelled", timeout=30_000
    )
    expect(page.get_by_role("button", name="Cancel job")).to_have_count(0)


def test_session_cookie_is_httponly_strict_and_ends_with_its_token(
    sign_in: SignIn, demo: Demo
) -> None:
    resp = demo.api.post("/api/v1/tokens", json={"name": "web-short", "role": "viewer"})
    resp.raise_for_status()
    demo.tokens["short"] = resp.json()["token"]
    page = sign_in("short")
    (cookie,) = [c for c in page.context.cookies() if c["name"] == "pitstop_session"]
    assert cookie["httpOnly"] is True
    assert cookie["sameSite"] == "Strict"
    assert demo.tokens["short"] not in cookie["value"]
    assert page.evaluate("document.cookie") == ""

    demo.api.delete("/api/v1/tokens/web-short").raise_for_status()
    page.goto("/ui/jobs")
    expect(page).to_have_url(re.compile(r"/ui/login"))
    expect(page.get_by_role("status")).to_contain_text("revoked")


def test_sign_in_and_navigate_with_the_keyboard(browser: Browser, demo: Demo) -> None:
    context = browser.new_context(base_url=demo.url, viewport={"width": 1280, "height": 800})
    refused: list[str] = []
    watch_policy(context, refused)
    page = context.new_page()
    page.goto("/ui/login")
    # The token field has the focus; Enter submits.
    page.keyboard.type("pst_" + "x" * 40)
    page.keyboard.press("Enter")
    expect(page.get_by_role("alert")).to_contain_text("unknown token")
    assert not [c for c in context.cookies() if c["name"] == "pitstop_session"]
    page.get_by_label("API token").focus()
    page.keyboard.type(demo.token("viewer"))
    page.keyboard.press("Enter")
    page.wait_for_url("**/ui/")
    # The first Tab reaches the skip link, which moves the focus to the content.
    page.keyboard.press("Tab")
    expect(page.get_by_role("link", name="Skip to content")).to_be_focused()
    page.keyboard.press("Enter")
    expect(page.locator("main")).to_be_focused()
    # Tabbing on reaches the filters, then a device link that Enter opens.
    page.get_by_label("Name").focus()
    page.keyboard.type("stor07")
    expect(page.locator("tr[data-device]")).to_have_count(1)
    link = page.get_by_role("link", name="stor07", exact=True)
    for _ in range(10):
        page.keyboard.press("Tab")
        if link.evaluate("el => el === document.activeElement"):
            break
    expect(link).to_be_focused()
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", level=1)).to_contain_text("stor07")
    context.close()
    assert refused == []


def test_admin_may_override_a_failed_test_run_operator_may_not(
    sign_in: SignIn, demo: Demo, screens: Screens
) -> None:
    device = "leaf3"
    resp = demo.api.post(f"/api/v1/simulated/devices/{device}/faults", json={"fault": "high-cpu"})
    assert resp.status_code == 200, resp.text
    admin = sign_in("admin")
    admin.get_by_role("link", name=device, exact=True).click()
    admin.get_by_role("link", name="Activate maintenance").click()
    admin.get_by_label("Reason").fill("fan tray")
    admin.get_by_label("Sample interval (s)").fill("1")
    admin.get_by_role("button", name="Next: test run").click()
    admin.wait_for_url(re.compile(r"/ui/wizard/.+/test$"))
    expect(admin.get_by_test_id("job-status").locator(".badge")).to_have_text(
        "failed", timeout=45_000
    )
    test_run_url = admin.url
    nxt = admin.get_by_role("button", name="Next: activate")
    expect(nxt).to_be_disabled()

    # An operator cannot force it, even with a hand-made POST.
    operator = sign_in("operator")
    operator.goto(test_run_url)
    expect(operator.locator("#override")).to_have_count(0)
    csrf = operator.locator("input[name=csrf]").first.get_attribute("value")
    resp = operator.request.post(
        test_run_url.removesuffix("/test") + "/activate",
        form={"csrf": csrf or "", "override": "yes"},
        max_redirects=0,
    )
    assert resp.status == 403
    resp = operator.request.post(
        test_run_url.removesuffix("/test") + "/activate",
        form={"csrf": csrf or ""},
        max_redirects=0,
    )
    assert resp.status == 409
    assert _jobs_on(demo, device) == 1

    # The admin ticks the override; the warning says so; activation starts and is audited.
    admin.get_by_label("Override the failed test run (admin)").check()
    expect(nxt).to_be_enabled()
    nxt.click()
    dialog = admin.locator("#activate-dialog")
    expect(dialog).to_contain_text(f"Traffic will be diverted from {device}")
    expect(dialog).to_contain_text("You are overriding it")
    screens.save(admin, "21-override-warning")
    dialog.get_by_role("button", name="Divert traffic and activate").click()
    admin.wait_for_url(re.compile(r"/ui/wizard/.+/progress$"))
    # With the fault still there, the activation's own health check stops it: nothing diverted.
    expect(admin.get_by_test_id("job-status").locator(".badge")).to_have_text(
        "failed", timeout=45_000
    )
    expect(admin.get_by_test_id("device-status").locator(".badge")).to_have_text("activated")
    # A failed job may be retried from its failed step; the retry runs (and fails) again.
    admin.get_by_role("link", name="Job details").click()
    admin.get_by_role("button", name="Retry from the failed step").click()
    expect(admin.locator("main")).to_contain_text("attempt 2")
    expect(admin.get_by_test_id("job-status").locator(".badge")).to_have_text(
        "failed", timeout=45_000
    )
    audit = demo.api.get("/api/v1/audit", params={"action": "job.override"})
    audit.raise_for_status()
    (entry,) = audit.json()["items"]
    assert entry["device"] == device and entry["actor"] == "bootstrap-admin"
