"""Request dependencies: the store, the caller's identity, and role checks.

A Bearer token that fails to authenticate counts against the client's address
(``app.state.auth_throttle``, shared with the web sign-in); past the limit every request from
that address is refused with ``RATE_LIMITED`` for a while. Each failure is logged with the
address and the reason, never with any part of the token.

Streams take a ``StreamGuard`` too (``StreamGuardDep``): the token is checked again every few
seconds for as long as the stream lasts.
"""

from __future__ import annotations

import json
import logging
import math
import time
from typing import Annotated

from fastapi import Depends, Header, Request

from pitstop.domain.errors import Forbidden, RateLimited, Unauthenticated, ValidationFailed
from pitstop.domain.roles import Actor, Role, Via
from pitstop.domain.throttle import FailureThrottle
from pitstop.engine.stream_guard import StreamGuard
from pitstop.storage.store import Store

log = logging.getLogger("pitstop.api.auth")

_RANK = {Role.VIEWER: 0, Role.OPERATOR: 1, Role.ADMIN: 2}


def get_store(request: Request) -> Store:
    store: Store = request.app.state.store
    return store


StoreDep = Annotated[Store, Depends(get_store)]


def _bearer(authorization: str) -> str:
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthenticated("use the Bearer scheme: Authorization: Bearer pst_...")
    return token.strip()


def client_address(request: Request) -> str:
    """The peer's address (the proxy's, unless ``PITSTOP_TRUSTED_PROXIES`` names it)."""
    return request.client.host if request.client else "unknown"


def _throttle(request: Request) -> FailureThrottle | None:
    throttle: FailureThrottle | None = getattr(request.app.state, "auth_throttle", None)
    return throttle


async def get_actor(
    request: Request,
    store: StoreDep,
    authorization: Annotated[str | None, Header()] = None,
) -> Actor:
    if not authorization:
        raise Unauthenticated("send a token: Authorization: Bearer pst_...")
    address = client_address(request)
    throttle = _throttle(request)
    wait = throttle.retry_after(address, time.monotonic()) if throttle else None
    if wait is not None:
        raise RateLimited(
            f"too many failed authentications from {address}; try again in {math.ceil(wait)} s",
            retry_after_s=math.ceil(wait),
        )
    try:
        async with store.unit() as u:
            return await u.tokens.authenticate(_bearer(authorization))
    except Unauthenticated as exc:
        if throttle is not None:
            throttle.failed(address, time.monotonic())
        log.warning("API authentication failed from %s: %s", address, exc.detail)
        raise


ActorDep = Annotated[Actor, Depends(get_actor)]


async def get_stream_guard(store: StoreDep, _: ActorDep, request: Request) -> StreamGuard:
    """For a stream: looks the caller's token up again every few seconds, so revoking it (or
    its expiry) ends the stream."""
    # Read from the request, not declared again as a parameter: get_actor already declares
    # the header, and a second, required declaration would document it twice.
    token = _bearer(request.headers.get("authorization", ""))

    async def check() -> None:
        async with store.unit() as u:
            await u.tokens.authenticate(token)

    return StreamGuard(check)


StreamGuardDep = Annotated[StreamGuard, Depends(get_stream_guard)]


def refused_event(guard: StreamGuard) -> str:
    """The last SSE event of a stream whose token stopped being valid."""
    exc = guard.refusal or Unauthenticated("the token is no longer valid")
    body = {"code": exc.code, "status": exc.http_status, "detail": exc.detail}
    return f"event: error\ndata: {json.dumps(body)}\n\n"


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
