"""Request dependencies: the store, the caller's identity, and role checks."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Header, Request

from pitstop.domain.errors import Forbidden, Unauthenticated, ValidationFailed
from pitstop.domain.roles import Actor, Role, Via
from pitstop.storage.store import Store

_RANK = {Role.VIEWER: 0, Role.OPERATOR: 1, Role.ADMIN: 2}


def get_store(request: Request) -> Store:
    store: Store = request.app.state.store
    return store


StoreDep = Annotated[Store, Depends(get_store)]


async def get_actor(
    store: StoreDep,
    authorization: Annotated[str | None, Header()] = None,
) -> Actor:
    if not authorization:
        raise Unauthenticated("send a token: Authorization: Bearer pst_...")
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthenticated("use the Bearer scheme: Authorization: Bearer pst_...")
    async with store.unit() as u:
        return await u.tokens.authenticate(token.strip())


ActorDep = Annotated[Actor, Depends(get_actor)]


def get_via(x_pitstop_via: Annotated[str | None, Header()] = None) -> Via:
    if x_pitstop_via is None:
        return Via.API
    try:
        via = Via(x_pitstop_via.lower())
    except ValueError:
        via = Via.ENGINE
    if via is Via.ENGINE:
        raise ValidationFailed("X-Pitstop-Via must be api, cli or web")
    return via


ViaDep = Annotated[Via, Depends(get_via)]


class RoleCheck:
    """The dependency that refuses a caller below ``role``. A class, so the OpenAPI document
    can tell which operations check a role (and so can answer 403)."""

    def __init__(self, role: Role) -> None:
        self.role = role

    async def __call__(self, actor: ActorDep) -> Actor:
        if _RANK.get(actor.role, -1) < _RANK[self.role]:
            raise Forbidden(
                f"this needs the {self.role.value} role; token {actor.name!r} is {actor.role.value}"
            )
        return actor


def require(role: Role) -> object:
    return Depends(RoleCheck(role))


Operator = Annotated[Actor, require(Role.OPERATOR)]
Admin = Annotated[Actor, require(Role.ADMIN)]


def check_unscoped(actor: Actor, what: str) -> None:
    if actor.fabrics:
        raise Forbidden(f"a token scoped to fabrics may not {what}")
