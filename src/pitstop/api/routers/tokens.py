"""API tokens: created by admins, shown once, revocable."""

from __future__ import annotations

from fastapi import APIRouter, status

from pitstop.api.deps import ActorDep, Admin, StoreDep, ViaDep
from pitstop.api.schemas import TokenCreated, TokenIn, TokenOut, WhoAmI
from pitstop.domain.errors import FieldError, Forbidden, ValidationFailed
from pitstop.domain.tokens import parse_duration

router = APIRouter(prefix="/api/v1", tags=["tokens"])


@router.get("/whoami")
async def whoami(actor: ActorDep) -> WhoAmI:
    return WhoAmI(name=actor.name, role=actor.role, fabrics=sorted(actor.fabrics))


@router.get("/tokens")
async def list_tokens(store: StoreDep, _: Admin) -> list[TokenOut]:
    async with store.unit() as u:
        return [TokenOut.of(t) for t in await u.tokens.all()]


@router.post("/tokens", status_code=status.HTTP_201_CREATED)
async def create_token(body: TokenIn, store: StoreDep, actor: Admin, via: ViaDep) -> TokenCreated:
    if actor.fabrics:
        raise Forbidden("a token scoped to fabrics may not create tokens")
    try:
        ttl = parse_duration(body.expires_in) if body.expires_in is not None else None
    except ValueError as exc:
        raise ValidationFailed(str(exc), [FieldError("expires_in", str(exc))]) from exc
    async with store.unit() as u:
        for name in body.fabrics:
            await u.fabrics.row(name)
        info, secret = await u.tokens.create(
            name=body.name,
            role=body.role,
            fabrics=tuple(body.fabrics),
            expires_at=store.clock() + ttl if ttl is not None else None,
            actor=actor,
            via=via,
        )
    return TokenCreated(**TokenOut.of(info).model_dump(), token=secret)


@router.delete("/tokens/{token}")
async def revoke_token(token: str, store: StoreDep, actor: Admin, via: ViaDep) -> TokenOut:
    """Revoke a token (by name or id). The row stays, marked revoked, for the audit trail."""
    if actor.fabrics:
        raise Forbidden("a token scoped to fabrics may not revoke tokens")
    async with store.unit() as u:
        return TokenOut.of(await u.tokens.revoke(token, actor=actor, via=via))
