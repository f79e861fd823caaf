"""API tokens over HTTP: shown once, listed without the secret, revocable, audited."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from typing import Any

import pytest
from test_api_support import SETUP, SQLITE_ONLY, Api, fields, open_api, problem

from pitstop.domain.roles import Role, Via
from pitstop.storage.store import Store

URL = "/api/v1/tokens"


@pytest.fixture
async def api(store: Store, clock: Any) -> AsyncIterator[Api]:
    async with open_api(store, clock) as a:
        await a.fabric("dc1")
        await a.fabric("storage")
        yield a


def when(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


async def test_a_new_token_is_shown_once_and_works(api: Api) -> None:
    r = await api.post(
        URL,
        json={"name": "ci-bot", "role": "operator", "fabrics": ["dc1"], "expires_in": "30d"},
        headers={"X-Pitstop-Via": "cli"},
    )
    assert r.status_code == 201, r.text
    made = r.json()
    secret = made["token"]
    assert secret.startswith("pst_")
    assert len(secret) >= 36
    assert secret.startswith(made["prefix"])
    assert made["prefix"] != secret
    assert (made["name"], made["role"], made["fabrics"]) == ("ci-bot", "operator", ["dc1"])
    assert made["created_by"] == "admin"
    assert when(made["expires_at"]) - when(made["created_at"]) == timedelta(days=30)
    assert made["revoked_at"] is None
    assert made["last_used_at"] is None

    who = await api.ok(
        "GET", "/api/v1/whoami", as_=None, headers={"Authorization": f"Bearer {secret}"}
    )
    assert who == {"name": "ci-bot", "role": "operator", "fabrics": ["dc1"]}

    listed = await api.ok("GET", URL)
    mine = next(t for t in listed if t["name"] == "ci-bot")
    assert "token" not in mine
    assert mine["last_used_at"] is not None
    assert {k: v for k, v in made.items() if k not in ("token", "last_used_at")} == {
        k: v for k, v in mine.items() if k != "last_used_at"
    }

    # The secret is nowhere to be read again: not in the listing, nor in any audit row.
    assert secret not in json.dumps(listed)
    rows = await api.audit()
    assert secret not in json.dumps(rows)
    created = await api.audit(action="token.create", actor="admin")
    assert len(created) == 1
    assert created[0]["via"] == "cli"
    assert created[0]["details"]["token"] == "ci-bot"
    assert created[0]["details"]["prefix"] == made["prefix"]


async def test_listing_never_carries_a_secret(api: Api) -> None:
    listed = await api.ok("GET", URL)
    assert [t["name"] for t in listed] == ["admin", "operator", "operator-dc1", "viewer"]
    text = json.dumps(listed)
    for secret in api.tokens.values():
        assert secret not in text
    assert all("token" not in t and "hash" not in t for t in listed)
    assert [t["fabrics"] for t in listed] == [[], [], ["dc1"], []]


async def test_revoking_a_token_locks_it_out_and_is_audited(api: Api) -> None:
    made = await api.ok("POST", URL, 201, json={"name": "temp", "role": "viewer"})
    headers = {"Authorization": f"Bearer {made['token']}"}
    assert (await api.get("/api/v1/whoami", as_=None, headers=headers)).status_code == 200

    api.clock.advance(minutes=1)
    out = await api.ok("DELETE", f"{URL}/temp")
    assert out["name"] == "temp"
    assert out["revoked_at"] == api.clock().isoformat().replace("+00:00", "Z")
    assert "token" not in out
    problem(await api.get("/api/v1/whoami", as_=None, headers=headers), 401, "UNAUTHENTICATED")

    # Revoking again is harmless and is not audited twice; the row stays for the record.
    again = await api.ok("DELETE", f"{URL}/{made['id']}")
    assert again["revoked_at"] == out["revoked_at"]
    listed = {t["name"]: t for t in await api.ok("GET", URL)}
    assert listed["temp"]["revoked_at"] == out["revoked_at"]

    revokes = await api.audit(action="token.revoke")
    assert [(r["actor"], r["details"]["token"]) for r in revokes] == [("admin", "temp")]
    assert made["token"] not in json.dumps(await api.audit())
    problem(await api.delete(f"{URL}/nope"), 404, "NOT_FOUND")


async def test_a_token_may_be_revoked_by_id(api: Api) -> None:
    listed = {t["name"]: t for t in await api.ok("GET", URL)}
    await api.ok("DELETE", f"{URL}/{listed['viewer']['id']}")
    problem(await api.get("/api/v1/whoami", as_="viewer"), 401, "UNAUTHENTICATED")


@SQLITE_ONLY
@pytest.mark.parametrize("expires_in", ["soon", "30", "d30", "-1d", "1y", "1.5h", "0s", "0d"])
async def test_a_bad_expires_in_is_refused_naming_it(api: Api, expires_in: str) -> None:
    before = await api.ok("GET", URL)
    out = problem(
        await api.post(URL, json={"name": "t", "role": "viewer", "expires_in": expires_in}),
        422,
        "VALIDATION_FAILED",
    )
    assert fields(out) == ["expires_in"]
    assert await api.ok("GET", URL) == before


async def test_an_empty_expires_in_does_not_make_an_eternal_token(api: Api) -> None:
    r = await api.post(URL, json={"name": "t", "role": "viewer", "expires_in": ""})
    if r.status_code == 201:
        assert r.json()["expires_at"] is not None
    else:
        assert fields(problem(r, 422, "VALIDATION_FAILED")) == ["expires_in"]


@SQLITE_ONLY
@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"name": "t", "role": "engine"}, "role"),
        ({"name": "t", "role": "root"}, "role"),
        ({"name": "t"}, "role"),
        ({"name": "Bad Name", "role": "viewer"}, "name"),
        ({"name": "t", "role": "viewer", "token": "pst_" + "x" * 40}, "token"),
        ({"name": "t", "role": "viewer", "fabrics": ["x" * 64]}, "fabrics[0]"),
    ],
)
async def test_a_bad_token_request_is_refused(api: Api, body: dict[str, Any], field: str) -> None:
    before = await api.ok("GET", URL)
    out = problem(await api.post(URL, json=body), 422, "VALIDATION_FAILED")
    assert fields(out) == [field]
    assert await api.ok("GET", URL) == before
    assert len(await api.audit(action="token.create")) == 4


async def test_a_duplicate_token_name_is_a_conflict(api: Api) -> None:
    problem(await api.post(URL, json={"name": "viewer", "role": "admin"}), 409, "CONFLICT")
    listed = {t["name"]: t["role"] for t in await api.ok("GET", URL)}
    assert listed["viewer"] == "viewer"


async def test_a_token_scoped_to_an_unknown_fabric_is_refused(api: Api) -> None:
    problem(
        await api.post(URL, json={"name": "t", "role": "operator", "fabrics": ["dc9"]}),
        404,
        "NOT_FOUND",
    )
    assert "t" not in [t["name"] for t in await api.ok("GET", URL)]


async def test_a_fabric_scoped_admin_may_not_manage_tokens(api: Api) -> None:
    async with api.store.unit() as u:
        _, secret = await u.tokens.create(
            name="dc1-admin",
            role=Role.ADMIN,
            fabrics=("dc1",),
            expires_at=None,
            actor=SETUP,
            via=Via.API,
        )
    headers = {"Authorization": f"Bearer {secret}"}
    problem(
        await api.post(URL, as_=None, headers=headers, json={"name": "t", "role": "admin"}),
        403,
        "FORBIDDEN",
    )
    problem(await api.delete(f"{URL}/viewer", as_=None, headers=headers), 403, "FORBIDDEN")
    assert (await api.get("/api/v1/whoami", as_="viewer")).status_code == 200


async def test_a_fabric_scoped_admin_may_not_create_devices_elsewhere(api: Api) -> None:
    async with api.store.unit() as u:
        _, secret = await u.tokens.create(
            name="dc1-admin",
            role=Role.ADMIN,
            fabrics=("dc1",),
            expires_at=None,
            actor=SETUP,
            via=Via.API,
        )
    headers = {"Authorization": f"Bearer {secret}"}
    r = await api.post(
        "/api/v1/devices",
        as_=None,
        headers=headers,
        json={"fabric": "storage", "name": "stor01", "role": "storage"},
    )
    problem(r, 403, "FORBIDDEN")
    assert await api.all_devices() == []


async def test_last_used_is_recorded_at_most_once_a_minute(api: Api) -> None:
    start = api.clock()
    await api.ok("GET", "/api/v1/whoami", as_="viewer")
    api.clock.advance(seconds=30)
    await api.ok("GET", "/api/v1/whoami", as_="viewer")
    listed = {t["name"]: t for t in await api.ok("GET", URL)}
    assert when(listed["viewer"]["last_used_at"]) == start
    api.clock.advance(seconds=31)
    await api.ok("GET", "/api/v1/whoami", as_="viewer")
    listed = {t["name"]: t for t in await api.ok("GET", URL)}
    assert when(listed["viewer"]["last_used_at"]) == start + timedelta(seconds=61)
