"""API tokens. Only the SHA-256 hash of a token is stored; the token itself is shown once."""

from __future__ import annotations

import secrets
import uuid
from datetime import datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from pitstop.domain.errors import Conflict, NotFound, Unauthenticated
from pitstop.domain.roles import Actor, Role, Via
from pitstop.domain.tokens import PREFIX, TokenInfo, display_prefix, looks_like_token, token_hash
from pitstop.storage.audit_log import AuditLog
from pitstop.storage.clock import Clock, as_utc
from pitstop.storage.refs import as_uuid
from pitstop.storage.tables import TokenRow

LAST_USED_RESOLUTION = timedelta(seconds=60)


def new_token() -> str:
    return PREFIX + secrets.token_urlsafe(32)


def _info(row: TokenRow) -> TokenInfo:
    created = as_utc(row.created_at)
    assert created
    return TokenInfo(
        id=row.id,
        name=row.name,
        role=Role(row.role),
        fabrics=tuple(row.fabrics or ()),
        prefix=row.prefix,
        created_at=created,
        created_by=row.created_by,
        expires_at=as_utc(row.expires_at),
        last_used_at=as_utc(row.last_used_at),
        revoked_at=as_utc(row.revoked_at),
    )


class TokenRepository:
    def __init__(self, session: AsyncSession, clock: Clock, audit: AuditLog) -> None:
        self._s = session
        self._clock = clock
        self._audit = audit

    async def any(self) -> bool:
        return await self._s.scalar(select(TokenRow.id).limit(1)) is not None

    async def create(
        self,
        *,
        name: str,
        role: Role,
        fabrics: tuple[str, ...],
        expires_at: datetime | None,
        actor: Actor,
        via: Via,
        token: str | None = None,
    ) -> tuple[TokenInfo, str]:
        """Store a new token (random unless given) and return it with its one-time secret."""
        if await self._s.scalar(select(TokenRow.id).where(TokenRow.name == name)):
            raise Conflict(f"a token named {name!r} already exists", name=name)
        secret = token or new_token()
        row = TokenRow(
            id=uuid.uuid4(),
            name=name,
            role=role.value,
            fabrics=list(fabrics),
            prefix=display_prefix(secret),
            hash=token_hash(secret),
            created_at=self._clock(),
            created_by=actor.name,
            expires_at=expires_at,
        )
        self._s.add(row)
        try:
            await self._s.flush()
        except IntegrityError as exc:  # a concurrent create won the name
            raise Conflict(f"a token named {name!r} already exists", name=name) from exc
        await self._audit.append(
            actor=actor.name,
            action="token.create",
            via=via.value,
            details={
                "token": name,
                "role": role.value,
                "fabrics": list(fabrics),
                "prefix": row.prefix,
                "expires_at": expires_at.isoformat() if expires_at else None,
            },
        )
        return _info(row), secret

    async def authenticate(self, token: str) -> Actor:
        """The actor behind a token, recording when it was last used."""
        if not looks_like_token(token):
            raise Unauthenticated("not a pitstop token (they start with pst_)")
        row = await self._s.scalar(select(TokenRow).where(TokenRow.hash == token_hash(token)))
        now = self._clock()
        if row is None:
            raise Unauthenticated("unknown token")
        info = _info(row)
        if info.revoked_at is not None:
            raise Unauthenticated(f"token {row.name!r} was revoked")
        if not info.usable_at(now):
            raise Unauthenticated(f"token {row.name!r} expired")
        # Record use at most once a minute, so reads do not all turn into writes.
        if info.last_used_at is None or now - info.last_used_at > LAST_USED_RESOLUTION:
            await self._s.execute(
                update(TokenRow).where(TokenRow.id == row.id).values(last_used_at=now)
            )
        return Actor(name=row.name, role=info.role, fabrics=frozenset(info.fabrics))

    async def all(self) -> list[TokenInfo]:
        return [_info(r) for r in await self._s.scalars(select(TokenRow).order_by(TokenRow.name))]

    async def revoke(self, ref: str, *, actor: Actor, via: Via) -> TokenInfo:
        key = as_uuid(ref)
        # Locked, so two concurrent revokes write one audit row between them.
        by_id = select(TokenRow).where(TokenRow.id == key).with_for_update()
        row = await self._s.scalar(by_id) if key else None
        if row is None:
            by_name = select(TokenRow).where(TokenRow.name == ref).with_for_update()
            row = await self._s.scalar(by_name)
        if row is None:
            raise NotFound(f"token {ref!r} does not exist", kind="token", ref=ref)
        if row.revoked_at is None:
            row.revoked_at = self._clock()
            await self._s.flush()
            await self._audit.append(
                actor=actor.name,
                action="token.revoke",
                via=via.value,
                details={"token": row.name, "prefix": row.prefix},
            )
        return _info(row)

    async def identify(self, token: str) -> tuple[uuid.UUID, Actor]:
        """Like ``authenticate``, and also the token's id (a web session refers to it)."""
        actor = await self.authenticate(token)
        token_id = await self._s.scalar(
            select(TokenRow.id).where(TokenRow.hash == token_hash(token))
        )
        assert token_id is not None
        return token_id, actor

    async def session(self, token_id: uuid.UUID) -> tuple[Actor, str]:
        """The actor behind a token id and the token's stored hash, which keys the signature
        of a web session. Checked on every request, so a revoked or expired token ends its
        sessions at once (``UNAUTHENTICATED``)."""
        row = await self._s.scalar(select(TokenRow).where(TokenRow.id == token_id))
        if row is None:
            raise Unauthenticated("the session's token no longer exists")
        info = _info(row)
        if info.revoked_at is not None:
            raise Unauthenticated(f"token {row.name!r} was revoked")
        if not info.usable_at(self._clock()):
            raise Unauthenticated(f"token {row.name!r} expired")
        return Actor(name=row.name, role=info.role, fabrics=frozenset(info.fabrics)), row.hash
