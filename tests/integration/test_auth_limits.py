"""Failed authentication is limited per client address (API and web sign-in share the count),
and every failure is logged with the address and the reason, never with the token."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator

import pytest
from site_support import Site, form_csrf, open_site
from test_api_support import SQLITE_ONLY, problem

from pitstop.domain.throttle import FailureThrottle
from pitstop.settings import Settings
from pitstop.storage.store import Store

LIMIT = 10
GUESS = "pst_" + "Q" * 43


@pytest.fixture
async def site(store: Store) -> AsyncIterator[Site]:
    async with open_site(store, Settings(auth_failures_per_minute=LIMIT)) as s:
        yield s


@SQLITE_ONLY
async def test_the_eleventh_bad_token_from_an_address_is_rate_limited(
    site: Site, caplog: pytest.LogCaptureFixture
) -> None:
    attacker = await site.client("198.51.100.7")
    caplog.set_level(logging.WARNING)
    for i in range(LIMIT):
        r = await attacker.get("/api/v1/whoami", headers={"Authorization": f"Bearer {GUESS}{i}"})
        problem(r, 401, "UNAUTHENTICATED")
    r = await attacker.get("/api/v1/whoami", headers={"Authorization": f"Bearer {GUESS}"})
    body = problem(r, 429, "RATE_LIMITED")
    assert 0 < int(r.headers["retry-after"]) <= 60
    assert body["retry_after_s"] == int(r.headers["retry-after"])
    # While limited, even a good token from that address is refused: guessing learns nothing.
    r = await attacker.get("/api/v1/whoami", headers=site.bearer("viewer"))
    problem(r, 429, "RATE_LIMITED")
    # Another address is not affected.
    other = await site.client("203.0.113.20")
    r = await other.get("/api/v1/whoami", headers=site.bearer("viewer"))
    assert r.status_code == 200, r.text

    failures = [rec for rec in caplog.records if rec.name == "pitstop.api.auth"]
    assert len(failures) == LIMIT
    for rec in failures:
        assert rec.levelno == logging.WARNING
        assert "198.51.100.7" in rec.getMessage()
        assert "unknown token" in rec.getMessage()
        assert "Q" * 8 not in rec.getMessage() and "pst_" not in rec.getMessage()
    assert all(site.tokens["viewer"][4:12] not in rec.getMessage() for rec in caplog.records)


@SQLITE_ONLY
async def test_a_request_without_any_token_is_not_counted(site: Site) -> None:
    c = await site.client("198.51.100.8")
    for _ in range(LIMIT + 5):
        problem(await c.get("/api/v1/whoami"), 401, "UNAUTHENTICATED")
    assert (await c.get("/api/v1/whoami", headers=site.bearer("viewer"))).status_code == 200


@SQLITE_ONLY
async def test_failed_web_sign_ins_are_limited_and_logged_without_the_token(
    site: Site, caplog: pytest.LogCaptureFixture
) -> None:
    browser = await site.client("198.51.100.9")
    caplog.set_level(logging.WARNING)
    statuses = []
    for i in range(LIMIT + 1):
        form = await browser.get("/ui/login")
        r = await browser.post(
            "/ui/login",
            data={"token": f"{GUESS}{i}", "csrf": form_csrf(form.text)},
            headers={"Origin": "http://pitstop.test"},
        )
        statuses.append(r.status_code)
    assert statuses == [401] * LIMIT + [429]
    assert int(r.headers["retry-after"]) > 0
    assert "too many failed sign-ins" in r.text
    # The API shares the count: the same address is limited there too.
    problem(await browser.get("/api/v1/whoami", headers=site.bearer("viewer")), 429, "RATE_LIMITED")
    logged = [rec.getMessage() for rec in caplog.records if rec.name == "pitstop.web.auth"]
    assert len(logged) == LIMIT
    assert all("198.51.100.9" in m and GUESS[:8] not in m for m in logged)


def test_the_throttle_forgets_old_failures_and_bounds_its_memory() -> None:
    throttle = FailureThrottle(limit=2, window_s=60, max_addresses=3)
    throttle.failed("a", 0.0)
    throttle.failed("a", 1.0)
    assert throttle.retry_after("a", 2.0) == pytest.approx(58.0)
    assert throttle.retry_after("a", 60.5) is None  # the first failure is a minute old
    for n, address in enumerate(["b", "c", "d", "e"]):
        throttle.failed(address, 70.0 + n)
    assert throttle.tracked() == 3
