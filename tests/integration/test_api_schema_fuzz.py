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
# Long random names: no generated path parameter names them, so no case revokes the token the
# run itself uses (DELETE /api/v1/tokens/{token} would end the run's own session).
CALLERS = {"admin": Role.ADMIN, "viewer": Role.VIEWER}
TOKEN_NAMES = {who: f"fuzz-{who}-5c0b7e2d9a41" for who in CALLERS}


async def _prepare(url: str) -> dict[str, str]:
    """Migrate and seed the database; make one token per caller."""
    db = Database.from_url(url)
    try:
        await upgrade(db.engine)
        store = Store(db)
        assert await seed_demo(store)
        secrets = {}
        async with store.unit() as u:
            for who, role in CALLERS.items():
                _, secrets[who] = await u.tokens.create(
                    name=TOKEN_NAMES[who],
                    role=role,
                    fabrics=(),
                    expires_at=None,
                    actor=Actor("fuzz-setup", Role.ADMIN),
                    via=Via.API,
                )
        return secrets
    finally:
        await db.close()


@pytest.fixture(scope="module")
def fuzz_app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Any, dict[str, str]]]:
    path: Path = tmp_path_factory.mktemp("fuzz") / "pitstop.db"
    url = f"sqlite+aiosqlite:///{path}"
    secrets = asyncio.run(_prepare(url))
    app = create_app(
        Settings(database_url=url, sim_state_dir=path.parent / "sim"),
        workers=0,
        background=False,
        announce=lambda _: None,
    )
    yield app, secrets
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
schema = schemathesis.openapi.from_dict(create_app(Settings()).openapi(), config=CONFIG)


@schema.parametrize()
def test_every_operation_answers_as_documented(
    case: Any, caller: str, fuzz_app: tuple[Any, dict[str, str]]
) -> None:
    app, secrets = fuzz_app
    auth = {"Authorization": f"Bearer {secrets[caller]}"}
    case.call_and_validate(app=app, headers=auth, checks=CHECKS)
