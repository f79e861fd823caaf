"""The maintenance wizard end to end in a real browser, on the demo fleet.

A test run on a device with an injected fault fails and Next stays disabled; going back keeps
the edits, a parameter is changed and the test run passes; activation shows the live log and
the drain, and ends with the device in maintenance; deactivation ends with it activated. The
fleet page, open in another tab all along, follows the changes without reloading.
"""

from __future__ import annotations

import re

from browser_support import Demo, Screens, SignIn
from playwright.sync_api import Page, expect

DEVICE = "leaf1"
JOB_TIMEOUT = 45_000
# Every visible form control has a label (or an aria-label) a screen reader can announce.
UNLABELLED = """() => [...document.querySelectorAll('input:not([type=hidden]), select, textarea')]
    .filter(el => el.labels.length === 0 && !el.getAttribute('aria-label'))
    .map(el => el.name || el.id)"""  # ms; a test run samples twice, sample_interval_s apart


def _status(page: Page, testid: str) -> object:
    return page.get_by_test_id(testid).locator(".badge")


def _wait_job(page: Page, status: str) -> None:
    """Wait until the job has finished, then check how (with the log when it is not)."""
    badge = page.get_by_test_id("job-status").locator(".badge")
    expect(badge).to_have_attribute(
        "data-status", re.compile("succeeded|failed|cancelled"), timeout=JOB_TIMEOUT
    )
    finished = badge.get_attribute("data-status")
    assert finished == status, page.locator("#log").inner_text()


def test_full_wizard(sign_in: SignIn, demo: Demo, screens: Screens) -> None:
    resp = demo.api.post(f"/api/v1/simulated/devices/{DEVICE}/faults", json={"fault": "high-cpu"})
    assert resp.status_code == 200, resp.text

    page = sign_in("operator")
    fleet = page.context.new_page()
    fleet.goto("/ui/")
    fleet.evaluate("window.__notReloaded = true")
    row = fleet.locator(f"tr[data-device={DEVICE}]")
    expect(row.locator(".badge").first).to_have_text("activated")
    screens.save(fleet, "01-fleet")

    # Filters and search narrow the table in place.
    fleet.get_by_label("Role").select_option("spine")
    expect(fleet.locator("tr[data-device]")).to_have_count(2)
    fleet.get_by_label("Role").select_option("")
    fleet.get_by_label("Name").fill("leaf")
    expect(fleet.locator("tr[data-device]")).to_have_count(6)
    fleet.get_by_label("Label selector").fill("rack=r1")
    expect(fleet.locator("tr[data-device]")).to_have_count(2)
    fleet.get_by_label("Label selector").fill("")
    expect(fleet.locator("tr[data-device]")).to_have_count(6)

    page.goto("/ui/")
    page.get_by_role("link", name=DEVICE, exact=True).click()
    expect(page.get_by_role("heading", level=1)).to_contain_text(DEVICE)
    screens.save(page, "02-device")

    # Screen 1: parameters.
    page.get_by_role("link", name="Activate maintenance").click()
    expect(page.get_by_label("CPU idle")).to_be_checked()
    unlabelled = page.evaluate(UNLABELLED)
    assert unlabelled == [], unlabelled
    min_pct = page.locator("#p-checks-cpu_idle-min_pct")
    expect(min_pct).to_have_value("60")
    page.get_by_label("Reason").fill("replace line card 3")
    page.get_by_label("Ticket").fill("CHG-1042")
    page.get_by_label("Sample interval (s)").fill("1")
    screens.save(page, "03-parameters")
    # Inline validation: a bad value is named next to its field, and nothing starts.
    min_pct.fill("sixty")
    page.get_by_role("button", name="Next: test run").click()
    expect(page.locator("#p-checks-cpu_idle-min_pct-err")).to_have_text("enter a number")
    min_pct.fill("120")
    page.get_by_role("button", name="Next: test run").click()
    expect(page.locator("#p-checks-cpu_idle-min_pct-err")).to_contain_text("100")
    screens.save(page, "03-parameters-invalid", full_page=True)
    min_pct.fill("60")
    page.get_by_role("button", name="Next: test run").click()

    # Screen 2: the test run fails on the injected fault; Next stays disabled.
    page.wait_for_url(re.compile(r"/ui/wizard/.+/test$"))
    _wait_job(page, "failed")
    expect(page.locator("tr[data-check=cpu_idle] .badge")).to_have_text("fail")
    expect(page.locator("tr[data-check=cpu_idle]")).to_contain_text("20")
    expect(page.locator("#log")).to_contain_text("cpu_idle fail")
    expect(page.get_by_role("button", name="Next: activate")).to_be_disabled()
    expect(page.locator("#override")).to_have_count(0)  # operators cannot override
    expect(_status(page, "device-status")).to_have_text("activated")
    screens.save(page, "04-test-run-failed")

    # Previous keeps the edits; lower the CPU threshold and run again.
    page.get_by_role("link", name="Previous: parameters").click()
    expect(page.get_by_label("Reason")).to_have_value("replace line card 3")
    expect(page.get_by_label("Ticket")).to_have_value("CHG-1042")
    expect(page.get_by_label("Sample interval (s)")).to_have_value("1")
    min_pct.fill("10")
    page.get_by_role("button", name="Next: test run").click()
    page.wait_for_url(re.compile(r"/ui/wizard/.+/test$"))
    _wait_job(page, "succeeded")
    expect(page.locator("tr[data-check=cpu_idle] .badge")).to_have_text("pass")
    passed_test_run = page.url
    screens.save(page, "05-test-run-passed")

    # Next opens the warning dialog.
    page.get_by_role("button", name="Next: activate").click()
    dialog = page.locator("#activate-dialog")
    expect(dialog).to_be_visible()
    expect(dialog).to_contain_text(f"Traffic will be diverted from {DEVICE}")
    screens.save(page, "06-activate-warning")
    dialog.get_by_role("button", name="Divert traffic and activate").click()

    # Screen 3: activation, live log, status transitions and the drain.
    page.wait_for_url(re.compile(r"/ui/wizard/.+/progress$"))
    # Meanwhile the fleet tab shows the running job and the new status, without a reload.
    fleet.get_by_label("Name").fill("")
    fleet.get_by_label("Name").blur()
    expect(row.locator("td").last).to_contain_text("activate", timeout=10_000)
    screens.save(fleet, "07-fleet-live")
    expect(page.locator("#log")).to_contain_text("transit", timeout=JOB_TIMEOUT)
    _wait_job(page, "succeeded")
    expect(page.locator("#log")).to_contain_text("drained in")
    expect(_status(page, "device-status")).to_have_text("maintenance")
    expect(page.locator(".transitions")).to_contain_text("draining")
    expect(page.locator("polyline.chart-line")).to_have_attribute("points", re.compile(r"\d+,"))
    screens.save(page, "07-activate")

    expect(row.locator(".badge").first).to_have_text("maintenance", timeout=10_000)
    assert fleet.evaluate("window.__notReloaded") is True
    screens.save(fleet, "08-fleet-maintenance")

    # The repair done during the maintenance window: the fault goes away.
    resp = demo.api.delete(f"/api/v1/simulated/devices/{DEVICE}/faults")
    assert resp.status_code == 200, resp.text

    page.get_by_role("link", name="Finish").click()
    expect(page.get_by_role("heading", level=1)).to_contain_text("maintenance")
    expect(page.locator("#history-h + table")).to_contain_text("maintenance")
    screens.save(page, "09-device-maintenance", full_page=True)

    # Screen 4: deactivation, asking for any configuration change to be reverted.
    page.get_by_label("Revert configuration changes made in maintenance").check()
    page.get_by_role("button", name="Deactivate maintenance").click()
    page.locator("#confirm-dialog").get_by_role("button", name="Confirm").click()
    page.wait_for_url(re.compile(r"/ui/wizard/.+/progress$"))
    _wait_job(page, "succeeded")
    expect(_status(page, "device-status")).to_have_text("activated")
    expect(page.locator("#diff-h").locator("..").locator("..")).to_contain_text("snapshot")
    expect(page.locator("tr[data-check=bgp_down_peers]")).to_be_visible()
    screens.save(page, "10-deactivate")
    expect(row.locator(".badge").first).to_have_text("activated", timeout=10_000)

    # The passed test run no longer vouches for the device once other jobs have run.
    page.goto(passed_test_run)
    expect(page.locator("#nav")).to_contain_text("Another job has run on leaf1")
    expect(page.get_by_role("button", name="Next: activate")).to_be_disabled()

    # Jobs, a job page, and the audit log show what happened.
    page.get_by_role("link", name="Jobs", exact=True).click()
    expect(page.locator("tr[data-job]")).to_have_count(4)
    screens.save(page, "11-jobs")
    page.locator("tr[data-job] a").first.click()
    expect(page.locator("tr[data-step=mark_activated] .badge")).to_have_text("succeeded")
    expect(page.locator("tr[data-step=config_check] .badge")).to_have_text("succeeded")
    jobs = demo.api.get("/api/v1/jobs", params={"device": DEVICE, "limit": 1}).json()["items"]
    assert jobs[0]["type"] == "maintenance.deactivate"
    assert jobs[0]["advanced_parameters"] == {"undrain": {"revert_config": True}}
    expect(page.get_by_role("progressbar")).to_have_attribute("aria-valuenow", "100")
    screens.save(page, "12-job")
    page.goto("/ui/audit")
    page.get_by_label("Action").select_option("device.status")
    page.get_by_role("button", name="Filter").click()
    expect(page.locator("tr[data-action='device.status']")).to_have_count(4)
    screens.save(page, "13-audit")
