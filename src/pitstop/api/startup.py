"""What happens when a server starts: migrate, make sure an admin can log in, seed the demo."""

from __future__ import annotations

import secrets
from datetime import UTC, datetime
from importlib.resources import files

from pitstop.api.import_files import parse_file
from pitstop.api.importing import run_import
from pitstop.domain.errors import ValidationFailed
from pitstop.domain.roles import Actor, Role, Via
from pitstop.domain.tokens import looks_like_token
from pitstop.storage.store import Store

SYSTEM = Actor(name="pitstop", role=Role.ADMIN)


async def ensure_admin_token(
    store: Store, *, bootstrap: str | None, always: bool = False
) -> str | None:
    """On an empty database, create the first admin token and return it (shown once).

    ``bootstrap`` (PITSTOP_BOOTSTRAP_TOKEN) is used instead of a random token. With ``always``
    (the demo server) a fresh admin token is made on every start, so the demo can always be
    logged into.
    """
    if bootstrap is not None and not looks_like_token(bootstrap):
        raise ValidationFailed(
            "PITSTOP_BOOTSTRAP_TOKEN must look like pst_ followed by at least 32 letters, "
            "digits, '-' or '_'"
        )
    async with store.unit() as u:
        if await u.tokens.any():
            if not always:
                return None
            if bootstrap is not None:
                # Already created on an earlier start; the caller knows it.
                return None
            stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
            _, secret = await u.tokens.create(
                name=f"demo-admin-{stamp}-{secrets.token_hex(3)}",
                role=Role.ADMIN,
                fabrics=(),
                expires_at=None,
                actor=SYSTEM,
                via=Via.API,
            )
            return secret
        _, secret = await u.tokens.create(
            name="bootstrap-admin",
            role=Role.ADMIN,
            fabrics=(),
            expires_at=None,
            actor=SYSTEM,
            via=Via.API,
            token=bootstrap,
        )
        return secret


async def seed_demo(store: Store) -> bool:
    """Import the demo fleet unless its fabrics exist already. True when it was seeded."""
    text = files("pitstop.api").joinpath("demo_fleet.yaml").read_text()
    async with store.unit() as u:
        names = {f.name for f in await u.fabrics.all()}
        if {"dc1", "storage"} & names:
            return False
        # The demo fleet is small and ours: read here, not in the import process.
        parsed = parse_file(text, fmt="yaml", fabric=None, max_rows=1000)
        await run_import(u, parsed, dry_run=False, actor=SYSTEM, via=Via.API)
    return True
