"""Campaigns in a real browser, on the demo fleet.

A campaign created through the API with ``action: await_approval`` is started on its page;
each device in turn waits in maintenance until an operator approves it on the page, which
follows the campaign live (without reloading) until it succeeds. A second campaign is
paused, resumed, aborted and rolled back from its page; a viewer sees no control there, and
the server refuses the viewer's hand-made POSTs and a control the campaign's state no longer
allows.
"""

from __future__ import annotations

import re
from typing import Any

from browser_support import Demo, Screens, SignIn
from playwright.sync_api import Locator, Page, expect

APPROVALS = "leaf-r3"  # leaf5 and leaf6: one MLAG pair, so one at a time anyway
CONTROLS = "borders"  # border1 and border2
# The demo's devices converge in 3 s with 200 ms per driver call; these still take a moment
# in and out of maintenance (so the page has something to follow) but keep the suite short.
QUICK = {"sim.convergence_s": "1", "sim.latency_ms": "20"}
DEFINITION: dict[str, Any] = {
    "fabric": "dc1",
    "concurrency": 1,
    "action": "await_approval",
    "advanced_parameters": {
        "sample_interval_s": 0,
        "drain": {"poll_interval_s": 0.1},
        "undrain": {"poll_interval_s": 0.1},
    },
}


def _create(demo: Demo, name: str, selector: dict[str, Any], devices: list[str]) -> None:
    for device in devices:
        labels = demo.api.get(f"/api/v1/devices/{device}").json()["labels"]
        resp = demo.api.patch(f"/api/v1/devices/{device}", json={"labels": {**labels, **QUICK}})
        assert resp.status_code == 200, resp.text
    resp = demo.api.post(
        "/api/v1/campaigns", json={**DEFINITION, "name": name, "selector": selector}
    )
    assert resp.status_code == 201, resp.text


def _state(page: Page) -> Locator:
    return page.get_by_test_id("campaign-state").locator(".badge")


def _device(page: Page, name: str) -> Locator:
    return page.locator(f"tr[data-device={name}]")


def _confirm(page: Page, button: str) -> None:
    page.get_by_test_id("campaign-controls").get_by_role("button", name=button).click()
    page.locator("#confirm-dialog").get_by_role("button", name="Confirm").click()


def _mark(page: Page) -> None:
    page.evaluate("window.__notReloaded = true")


def _not_reloaded(page: Page) -> None:
    assert page.evaluate("window.__notReloaded") is True


def _audit(demo: Demo, action: str) -> list[dict[str, Any]]:
    resp = demo.api.get("/api/v1/audit", params={"action": action})
    resp.raise_for_status()
    items: list[dict[str, Any]] = resp.json()["items"]
    return items


def test_start_and_approve_each_device_on_the_page(
    sign_in: SignIn, demo: Demo, screens: Screens
) -> None:
    _create(demo, APPROVALS, {"roles": ["leaf"], "labels": "rack=r3"}, ["leaf5", "leaf6"])
    page = sign_in("operator")
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Campaigns").click()
    row = page.locator(f"tr[data-campaign={APPROVALS}]")
    expect(row.locator(".badge")).to_have_text("created")
    expect(row).to_contain_text("not started")
    screens.save(page, "30-campaigns")

    row.get_by_role("link", name=APPROVALS).click()
    expect(page.get_by_role("heading", level=1)).to_contain_text(APPROVALS)
    expect(_state(page)).to_have_attribute("data-status", "created")
    definition = page.get_by_test_id("campaign-definition")
    expect(definition).to_contain_text("roles leaf · labels rack=r3")
    expect(definition).to_contain_text("await_approval")
    expect(definition.locator("dt:text-is('Concurrency') + dd")).to_have_text("1")

    _confirm(page, "Start")
    # The POST's answer is the same page again, now with a started campaign.
    expect(_state(page)).not_to_have_attribute("data-status", "created")
    _mark(page)
    # Test runs, then leaf5 enters maintenance and waits; the page follows by itself.
    expect(_device(page, "leaf5")).to_have_attribute("data-state", "awaiting_approval")
    expect(_device(page, "leaf6")).to_have_attribute("data-state", "pending")
    expect(_state(page)).to_have_attribute("data-status", "running")
    expect(page.get_by_test_id("campaign-awaiting")).to_contain_text("leaf5")
    expect(page.locator("#log")).to_contain_text("awaits approval")
    expect(page.get_by_role("button", name="Approve leaf6")).to_have_count(0)
    _not_reloaded(page)
    screens.save(page, "31-campaign-awaiting-approval")

    page.get_by_role("button", name="Approve leaf5").click()
    page.wait_for_url(re.compile(r"#device-leaf5$"))
    _mark(page)
    expect(_device(page, "leaf5")).to_have_attribute("data-state", "done")
    expect(_device(page, "leaf5")).to_contain_text("approved by web-operator")
    expect(_device(page, "leaf6")).to_have_attribute("data-state", "awaiting_approval")
    _not_reloaded(page)

    page.get_by_role("button", name="Approve leaf6").click()
    page.wait_for_url(re.compile(r"#device-leaf6$"))
    _mark(page)
    expect(_state(page)).to_have_attribute("data-status", "succeeded")
    for device in ("leaf5", "leaf6"):
        expect(_device(page, device)).to_have_attribute("data-state", "done")
    expect(page.get_by_role("progressbar")).to_have_attribute("aria-valuenow", "100")
    expect(page.locator(".legend [data-part=done]")).to_have_text("2 done")
    expect(page.get_by_test_id("campaign-controls").get_by_role("button")).to_have_count(0)
    expect(page.locator("#log")).to_contain_text("campaign succeeded")
    _not_reloaded(page)
    screens.save(page, "32-campaign-succeeded", full_page=True)

    approvals = _audit(demo, "campaign.approve")
    assert sorted(e["device"] for e in approvals) == ["leaf5", "leaf6"]
    assert {e["via"] for e in approvals} == {"web"}

    # A device's last job opens from its row; the list shows the campaign done.
    _device(page, "leaf6").get_by_role("link", name="Job of leaf6").click()
    expect(page.get_by_role("heading", level=1)).to_contain_text("maintenance.deactivate")
    expect(page.get_by_role("heading", level=1)).to_contain_text("leaf6")
    page.goto("/ui/campaigns")
    expect(row.locator(".badge")).to_have_text("succeeded")
    expect(row).to_contain_text("100 %")


def test_pause_resume_abort_roll_back_and_a_viewer_may_not(
    sign_in: SignIn, demo: Demo, screens: Screens
) -> None:
    _create(demo, CONTROLS, {"roles": ["border"]}, ["border1", "border2"])
    url = f"/ui/campaigns/{CONTROLS}"
    page = sign_in("operator")
    page.goto(url)
    _confirm(page, "Start")
    expect(_device(page, "border1")).to_have_attribute("data-state", "awaiting_approval")

    controls = page.get_by_test_id("campaign-controls")
    controls.get_by_role("button", name="Pause").click()
    expect(_state(page)).to_have_attribute("data-status", "paused")
    expect(controls.get_by_role("button")).to_have_text(["Resume", "Abort", "Roll back"])
    screens.save(page, "33-campaign-paused")

    # A control the state no longer allows (another tab's stale Pause) is refused with the
    # service's error, on the error page every other page uses.
    csrf = page.locator("input[name=csrf]").first.get_attribute("value") or ""
    resp = page.request.post(f"{url}/pause", form={"csrf": csrf}, max_redirects=0)
    assert resp.status == 409
    assert "CAMPAIGN_STATE_CONFLICT" in resp.text() and "is paused" in resp.text()

    # A viewer sees the campaign but no control, and the server refuses what it forges.
    viewer = sign_in("viewer")
    viewer.goto(url)
    expect(_state(viewer)).to_have_attribute("data-status", "paused")
    expect(_device(viewer, "border1")).to_have_attribute("data-state", "awaiting_approval")
    expect(viewer.get_by_test_id("campaign-controls")).to_contain_text("Read-only")
    expect(viewer.locator("main").get_by_role("button")).to_have_count(0)
    expect(viewer.get_by_test_id("campaign-awaiting")).to_contain_text("An operator approves")
    screens.save(viewer, "34-campaign-viewer")
    viewer_csrf = viewer.locator("input[name=csrf]").first.get_attribute("value") or ""
    for path in ("resume", "abort", "rollback", "devices/border1/approve"):
        resp = viewer.request.post(f"{url}/{path}", form={"csrf": viewer_csrf}, max_redirects=0)
        assert resp.status == 403, (path, resp.status, resp.text()[:300])
        assert "FORBIDDEN" in resp.text()
    shown = demo.api.get(f"/api/v1/campaigns/{CONTROLS}").json()
    assert shown["state"] == "paused"
    assert shown["devices"][0]["approved_by"] is None

    controls.get_by_role("button", name="Resume").click()
    expect(_state(page)).to_have_attribute("data-status", "running")
    _confirm(page, "Abort")
    expect(_state(page)).to_have_attribute("data-status", "aborted")
    expect(_device(page, "border2")).to_have_attribute("data-state", "skipped")
    _confirm(page, "Roll back")
    expect(_state(page)).to_have_attribute("data-status", "rolled_back")
    expect(controls.get_by_role("button")).to_have_count(0)
    expect(page.locator("#log")).to_contain_text("rollback requested by web-operator")
    screens.save(page, "35-campaign-rolled-back", full_page=True)
    for verb in ("start", "pause", "resume", "abort", "rollback"):
        entries = [e for e in _audit(demo, f"campaign.{verb}") if e["via"] == "web"]
        assert any(e["details"]["campaign"] == CONTROLS for e in entries), verb
