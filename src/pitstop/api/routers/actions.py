"""Named actions: the programs campaigns may run (ADR 0013). Anyone may list and read them;
only an admin whose token is not scoped to fabrics may define, change or delete one, since an
action runs as the server's user on whichever fabrics it allows. Every change is audited."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, status
from pydantic import BaseModel, Field, StringConstraints

from pitstop.api.deps import ActorDep, Admin, StoreDep, ViaDep, check_unscoped
from pitstop.api.schemas import Strict
from pitstop.domain.named_actions import (
    DEFAULT_TIMEOUT_S,
    MAX_ARG_CHARS,
    MAX_ARGS,
    MAX_DESCRIPTION,
    MAX_FABRICS,
    MAX_TIMEOUT_S,
    NamedAction,
    check_action,
)
from pitstop.domain.roles import Actor, Via
from pitstop.storage.store import Unit

router = APIRouter(prefix="/api/v1/actions", tags=["actions"])

Arg = Annotated[str, StringConstraints(min_length=1, max_length=MAX_ARG_CHARS)]
FabricName = Annotated[str, StringConstraints(min_length=1, max_length=63)]
ARGV_HELP = (
    "argv template, run without a shell; placeholders {name}, {fabric}, {role}, {host}, "
    "{port}, {campaign}, {labels[KEY]}; {{ and }} for literal braces"
)


class ActionIn(Strict):
    name: str = Field(min_length=1, max_length=63, description="How campaigns refer to it")
    command: list[Arg] = Field(min_length=1, max_length=MAX_ARGS, description=ARGV_HELP)
    undo: list[Arg] = Field(
        default_factory=list, max_length=MAX_ARGS, description="Run on rollback; " + ARGV_HELP
    )
    timeout_s: float = Field(default=DEFAULT_TIMEOUT_S, ge=1, le=MAX_TIMEOUT_S, allow_inf_nan=False)
    fabrics: list[FabricName] = Field(
        default_factory=list, max_length=MAX_FABRICS, description="Where it may run; [] = all"
    )
    description: str = Field(default="", max_length=MAX_DESCRIPTION)


class ActionPatch(Strict):
    command: list[Arg] | None = Field(default=None, min_length=1, max_length=MAX_ARGS)
    undo: list[Arg] | None = Field(default=None, max_length=MAX_ARGS)
    timeout_s: float | None = Field(default=None, ge=1, le=MAX_TIMEOUT_S, allow_inf_nan=False)
    fabrics: list[FabricName] | None = Field(default=None, max_length=MAX_FABRICS)
    description: str | None = Field(default=None, max_length=MAX_DESCRIPTION)


class ActionOut(BaseModel):
    name: str
    command: list[str]
    undo: list[str]
    timeout_s: float
    fabrics: list[str] = Field(description="Where it may run; [] = every fabric")
    description: str
    created_by: str
    created_at: datetime | None
    updated_by: str
    updated_at: datetime | None

    @classmethod
    def of(cls, a: NamedAction) -> ActionOut:
        return cls(
            name=a.name,
            command=list(a.command),
            undo=list(a.undo),
            timeout_s=a.timeout_s,
            fabrics=list(a.fabrics),
            description=a.description,
            created_by=a.created_by,
            created_at=a.created_at,
            updated_by=a.updated_by,
            updated_at=a.updated_at,
        )


class ActionList(BaseModel):
    items: list[ActionOut]


def _definition(a: NamedAction) -> dict[str, Any]:
    return {
        "command": list(a.command),
        "undo": list(a.undo),
        "timeout_s": a.timeout_s,
        "fabrics": list(a.fabrics),
    }


async def _audit(u: Unit, actor: Actor, via: Via, verb: str, **details: Any) -> None:
    await u.audit.append(actor=actor.name, action=f"action.{verb}", via=via.value, details=details)


@router.get("")
async def list_actions(store: StoreDep, _: ActorDep) -> ActionList:
    async with store.unit() as u:
        return ActionList(items=[ActionOut.of(a) for a in await u.actions.all()])


@router.get("/{name}")
async def show_action(name: str, store: StoreDep, _: ActorDep) -> ActionOut:
    async with store.unit() as u:
        return ActionOut.of(await u.actions.get(name))


@router.post("", status_code=status.HTTP_201_CREATED)
async def create_action(body: ActionIn, store: StoreDep, actor: Admin, via: ViaDep) -> ActionOut:
    check_unscoped(actor, "define actions")
    action = check_action(
        NamedAction(
            name=body.name,
            command=tuple(body.command),
            undo=tuple(body.undo),
            timeout_s=body.timeout_s,
            fabrics=tuple(body.fabrics),
            description=body.description,
        )
    )
    async with store.unit() as u:
        created = await u.actions.create(action, actor=actor.name)
        await _audit(u, actor, via, "create", name=created.name, after=_definition(created))
        return ActionOut.of(created)


@router.patch("/{name}")
async def update_action(
    name: str, body: ActionPatch, store: StoreDep, actor: Admin, via: ViaDep
) -> ActionOut:
    """Change an action. Campaigns already started keep the definition they started with."""
    check_unscoped(actor, "change actions")
    async with store.unit() as u:
        before = await u.actions.get(name)
        after = check_action(
            replace(
                before,
                command=tuple(body.command) if body.command is not None else before.command,
                undo=tuple(body.undo) if body.undo is not None else before.undo,
                timeout_s=body.timeout_s if body.timeout_s is not None else before.timeout_s,
                fabrics=tuple(body.fabrics) if body.fabrics is not None else before.fabrics,
                description=(
                    body.description if body.description is not None else before.description
                ),
            )
        )
        updated = await u.actions.update(after, actor=actor.name)
        await _audit(
            u,
            actor,
            via,
            "update",
            name=name,
            before=_definition(before),
            after=_definition(updated),
        )
        return ActionOut.of(updated)


@router.delete("/{name}")
async def delete_action(name: str, store: StoreDep, actor: Admin, via: ViaDep) -> ActionOut:
    """Delete an action. Campaigns already started keep it; others can no longer start."""
    check_unscoped(actor, "delete actions")
    async with store.unit() as u:
        gone = await u.actions.delete(name)
        await _audit(u, actor, via, "delete", name=name, before=_definition(gone))
        return ActionOut.of(gone)
