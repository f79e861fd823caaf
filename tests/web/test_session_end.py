"""Revoking a token ends its open pages: the fleet page's live stream is closed by the server
within seconds, and the page takes the reader to the sign-in form."""

from __future__ import annotations

import re

from browser_support import Demo, SignIn
from playwright.sync_api import expect


def test_a_page_open_when_its_token_is_revoked_goes_to_the_sign_in_form(
    sign_in: SignIn, demo: Demo
) -> None:
    page = sign_in("operator")
    expect(page.locator("#fabrics")).to_be_visible()
    assert page.url.endswith("/ui/")
    revoked = demo.api.delete("/api/v1/tokens/web-operator")
    assert revoked.status_code == 200, revoked.text
    # Nobody touches the page: its stream ends, and the page notices. The URL is polled
    # rather than awaited as one navigation: the page may be sent on while it goes, which
    # aborts the navigation a wait_for_url would be watching.
    expect(page).to_have_url(re.compile(r"/ui/login"), timeout=20_000)
    expect(page.get_by_label("API token")).to_be_visible()
    expect(page.get_by_role("status")).to_contain_text("revoked")
