"""The API does what its OpenAPI document says, for any input the document allows and many it
does not: schemathesis generates requests for every operation, as an admin and as a viewer, and
checks that none is a 5xx, and that each status, content type and body is the one documented.

Bounded and reproducible: a fixed seed, deterministic generation, a few examples per operation.
The app runs on a fresh SQLite file seeded with the demo fleet, with no job worker and no
background task, so what the requests change stays in that file.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from schemathesis.checks import not_a_server_error
from schemathesis.config import SchemathesisConfig
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from pitstop.api.app import create_app
from pitstop.api.startup import seed_demo
from pitstop.domain.roles import Actor, Role, Via
from pitstop.runtime import Plan, serving
from pitstop.settings import Settings
from pitstop.storage.database import Database
from pitstop.storage.migrate import upgrade
from pitstop.storage.store import Store

SEED = 20261208
MAX_EXAMPLES = 12
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]
CALLERS = {"admin": Role.ADMIN, "viewer": Role.VIEWER}
TOKEN_NAMES = {who: f"fuzz-{who}" for who in CALLERS}


@dataclass
class Fuzzed:
    app: Any
    secrets: dict[str, str]
    # The names and ids of the run's own tokens: schemathesis reuses values it reads in
    # responses (GET /api/v1/tokens), and revoking one of these would end the run's session.
    own_tokens: set[str]


async def _prepare(url: str) -> tuple[dict[str, str], set[str]]:
    """Migrate and seed the database; make one token per caller."""
    db = Database.from_url(url)
    try:
        await upgrade(db.engine)
        store = Store(db)
        assert await seed_demo(store)
        secrets, own = {}, set(TOKEN_NAMES.values())
        async with store.unit() as u:
            for who, role in CALLERS.items():
                info, secrets[who] = await u.tokens.create(
                    name=TOKEN_NAMES[who],
                    role=role,
                    fabrics=(),
                    expires_at=None,
                    actor=Actor("fuzz-setup", Role.ADMIN),
                    via=Via.API,
                )
                own.add(str(info.id))
        return secrets, own
    finally:
        await db.close()


@pytest.fixture(scope="module")
def fuzzed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fuzzed]:
    path: Path = tmp_path_factory.mktemp("fuzz") / "pitstop.db"
    url = f"sqlite+aiosqlite:///{path}"
    secrets, own = asyncio.run(_prepare(url))
    settings = Settings(database_url=url, sim_state_dir=path.parent / "sim")
    backend = serving(settings, plan=Plan(workers=0, fleet=False), announce=lambda _: None)
    app = create_app(settings, backend=backend)
    yield Fuzzed(app, secrets, own)
    # schemathesis keeps an ASGI app's lifespan running until the process ends; end it here,
    # so the database is closed before the next module.
    from schemathesis.python.asgi import shutdown_lifespans

    shutdown_lifespans()


@pytest.fixture(scope="module", params=sorted(CALLERS))
def caller(request: pytest.FixtureRequest) -> str:
    who: str = request.param
    return who


# The document is built without a database (the app connects only when it starts), so the
# operations are known when the tests are collected.
CONFIG = SchemathesisConfig.from_dict(
    {
        "seed": SEED,
        "generation": {"max-examples": MAX_EXAMPLES, "deterministic": True},
        "phases": {"coverage": {"enabled": False}, "stateful": {"enabled": False}},
    }
)
schema = schemathesis.openapi.from_dict(
    create_app(
        Settings(), backend=serving(Settings(), plan=Plan(workers=0, fleet=False))
    ).openapi(),
    config=CONFIG,
)


@schema.parametrize()
def test_every_operation_answers_as_documented(case: Any, caller: str, fuzzed: Fuzzed) -> None:
    revokes = case.operation.label == "DELETE /api/v1/tokens/{token}"
    if revokes and case.path_parameters.get("token") in fuzzed.own_tokens:
        return
    auth = {"Authorization": f"Bearer {fuzzed.secrets[caller]}"}
    response = case.call_and_validate(app=fuzzed.app, headers=auth, checks=CHECKS)
    # Every request carries a valid token that nothing revokes: a 401 would be a wrong answer.
    assert response.status_code != 401, response.text
