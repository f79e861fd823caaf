"""Authentication and roles over HTTP: who gets in, and what each role may do."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import pytest
from test_api_support import SETUP, SQLITE_ONLY, Api, open_api, problem

from pitstop.domain.roles import Role, Via
from pitstop.storage.store import Store


@pytest.fixture
async def api(store: Store, clock: Any) -> AsyncIterator[Api]:
    async with open_api(store, clock) as a:
        await a.seed_demo()
        yield a


# Authentication -----------------------------------------------------------------------------

REAL_LOOKING = "pst_" + "A" * 43


@SQLITE_ONLY
@pytest.mark.parametrize(
    "header",
    [
        pytest.param(None, id="no-header"),
        pytest.param("", id="empty"),
        pytest.param("Basic dXNlcjpwYXNz", id="basic-scheme"),
        pytest.param("Bearer", id="bearer-without-token"),
        pytest.param("Bearer    ", id="bearer-blank"),
        pytest.param("Token {admin}", id="other-scheme-with-a-real-token"),
        pytest.param("Bearer not-a-pitstop-token", id="not-pst"),
        pytest.param("Bearer pst_short", id="pst-too-short"),
        pytest.param(f"Bearer {REAL_LOOKING}", id="unknown"),
        pytest.param("{admin}", id="token-without-scheme"),
    ],
)
async def test_requests_without_a_valid_token_are_unauthenticated(
    api: Api, header: str | None
) -> None:
    headers = {} if header is None else {"Authorization": header.format(**api.tokens)}
    r = await api.get("/api/v1/devices", as_=None, headers=headers)
    body = problem(r, 401, "UNAUTHENTICATED")
    # Nothing about the inventory leaks into the refusal.
    assert "spine1" not in r.text
    assert body["type"] == "urn:pitstop:problem:unauthenticated"


async def test_the_scheme_is_case_insensitive_and_the_token_may_be_padded(api: Api) -> None:
    r = await api.get(
        "/api/v1/whoami", as_=None, headers={"Authorization": f"bearer  {api.tokens['viewer']} "}
    )
    assert r.status_code == 200, r.text
    assert r.json()["name"] == "viewer"


async def test_a_revoked_token_is_refused(api: Api) -> None:
    assert (await api.get("/api/v1/whoami", as_="viewer")).status_code == 200
    await api.ok("DELETE", "/api/v1/tokens/viewer")
    r = await api.get("/api/v1/whoami", as_="viewer")
    body = problem(r, 401, "UNAUTHENTICATED")
    assert "revoked" in body["detail"]


async def test_an_expired_token_is_refused_once_the_clock_passes_its_expiry(api: Api) -> None:
    async with api.store.unit() as u:
        _, secret = await u.tokens.create(
            name="short-lived",
            role=Role.VIEWER,
            fabrics=(),
            expires_at=api.clock() + timedelta(hours=1),
            actor=SETUP,
            via=Via.API,
        )
    headers = {"Authorization": f"Bearer {secret}"}
    api.clock.advance(minutes=59)
    assert (await api.get("/api/v1/whoami", as_=None, headers=headers)).status_code == 200
    api.clock.advance(minutes=1)
    body = problem(
        await api.get("/api/v1/whoami", as_=None, headers=headers), 401, "UNAUTHENTICATED"
    )
    assert "expired" in body["detail"]


async def test_a_token_made_through_the_api_with_expires_in_expires(api: Api) -> None:
    made = await api.ok(
        "POST", "/api/v1/tokens", 201, json={"name": "temp", "role": "viewer", "expires_in": "2h"}
    )
    headers = {"Authorization": f"Bearer {made['token']}"}
    assert (await api.get("/api/v1/whoami", as_=None, headers=headers)).status_code == 200
    api.clock.advance(hours=2, seconds=1)
    problem(await api.get("/api/v1/whoami", as_=None, headers=headers), 401, "UNAUTHENTICATED")


# whoami ---------------------------------------------------------------------------------------


@SQLITE_ONLY
@pytest.mark.parametrize(
    ("who", "role", "fabrics"),
    [
        ("admin", "admin", []),
        ("operator", "operator", []),
        ("operator-dc1", "operator", ["dc1"]),
        ("viewer", "viewer", []),
    ],
)
async def test_whoami_names_the_token_its_role_and_scope(
    api: Api, who: str, role: str, fabrics: list[str]
) -> None:
    assert await api.ok("GET", "/api/v1/whoami", as_=who) == {
        "name": who,
        "role": role,
        "fabrics": fabrics,
    }


# Roles ---------------------------------------------------------------------------------------


async def test_a_viewer_reads_everything_but_changes_nothing(api: Api) -> None:
    for url in (
        "/api/v1/fabrics",
        "/api/v1/fabrics/dc1",
        "/api/v1/fabrics/dc1/groups",
        "/api/v1/devices",
        "/api/v1/devices/spine1",
        "/api/v1/audit",
        "/api/v1/audit/verify",
        "/api/v1/lifecycle",
    ):
        r = await api.get(url, as_="viewer")
        assert r.status_code == 200, (url, r.text)

    r = await api.post("/api/v1/devices/spine1/status", json={"status": "draining"}, as_="viewer")
    body = problem(r, 403, "FORBIDDEN")
    assert "operator" in body["detail"]
    problem(await api.post("/api/v1/fabrics", json={"name": "dc9"}, as_="viewer"), 403, "FORBIDDEN")
    problem(await api.get("/api/v1/tokens", as_="viewer"), 403, "FORBIDDEN")

    assert (await api.device("spine1"))["status"] == "activated"
    names = [f["name"] for f in await api.ok("GET", "/api/v1/fabrics")]
    assert names == ["dc1", "storage"]
    assert await api.audit(actor="viewer") == []


async def test_an_operator_sets_status_but_cannot_change_the_inventory_or_tokens(
    api: Api,
) -> None:
    out = await api.set_status("leaf1", "draining", reason="optics swap")
    assert out["status"] == "draining"

    refused = [
        await api.post(
            "/api/v1/devices",
            json={"fabric": "dc1", "name": "leaf9", "role": "leaf"},
            as_="operator",
        ),
        await api.post(
            "/api/v1/inventory/import?fabric=dc1",
            content="- {name: leaf9, role: leaf}\n",
            headers={"Content-Type": "application/yaml"},
            as_="operator",
        ),
        await api.post("/api/v1/tokens", json={"name": "mine", "role": "admin"}, as_="operator"),
        await api.get("/api/v1/tokens", as_="operator"),
        await api.delete("/api/v1/tokens/viewer", as_="operator"),
        await api.post("/api/v1/fabrics", json={"name": "dc9"}, as_="operator"),
        await api.patch("/api/v1/devices/leaf2", json={"role": "spine"}, as_="operator"),
        await api.post(
            "/api/v1/fabrics/dc1/groups",
            json={"name": "g", "max_unavailable": 1},
            as_="operator",
        ),
    ]
    for r in refused:
        body = problem(r, 403, "FORBIDDEN")
        assert "admin" in body["detail"], body

    assert [d["name"] for d in await api.all_devices(q="leaf9")] == []
    assert (await api.device("leaf2"))["role"] == "leaf"
    assert [t["name"] for t in await api.ok("GET", "/api/v1/tokens")] == sorted(
        ["admin", "operator", "operator-dc1", "viewer"]
    )


async def test_an_operator_scoped_to_dc1_may_not_touch_another_fabric(api: Api) -> None:
    r = await api.post(
        "/api/v1/devices/stor01/status", json={"status": "draining"}, as_="operator-dc1"
    )
    body = problem(r, 403, "FORBIDDEN")
    assert body["fabric"] == "storage"
    assert (await api.device("stor01"))["status"] == "activated"
    assert await api.audit(device="stor01", action="device.status") == []

    # Its own fabric is fine, and it can still read everything.
    await api.set_status("leaf1", "draining", as_="operator-dc1")
    assert (await api.device("leaf1"))["status_changed_by"] == "operator-dc1"
    assert (await api.ok("GET", "/api/v1/devices/stor01", as_="operator-dc1"))["name"] == "stor01"


async def test_the_role_of_a_token_is_checked_on_every_request(api: Api) -> None:
    # Revoking the admin token mid-session locks it out at once.
    await api.ok("DELETE", "/api/v1/tokens/admin", as_="admin")
    problem(await api.get("/api/v1/fabrics", as_="admin"), 401, "UNAUTHENTICATED")
    # Others are unaffected.
    assert (await api.get("/api/v1/fabrics", as_="operator")).status_code == 200


async def test_a_401_names_the_bearer_scheme(api: Api) -> None:
    r = await api.get("/api/v1/whoami", as_=None)
    problem(r, 401, "UNAUTHENTICATED")
    assert r.headers.get("www-authenticate", "").lower().startswith("bearer")
