"""Fabric policy (``maintenance_allowed``, role budgets) and the budget table of a fabric."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel, Field

from pitstop.api.deps import ActorDep, Admin, StoreDep, ViaDep
from pitstop.api.schemas import Strict
from pitstop.domain.limits import MAX_LABELS
from pitstop.domain.policy import FabricPolicy, parse_role_budgets

router = APIRouter(prefix="/api/v1/fabrics", tags=["policy"])


class PolicyOut(BaseModel):
    fabric: str
    maintenance_allowed: bool
    role_budgets: dict[str, str] = Field(description="What applies: built-in defaults + overrides")
    role_overrides: dict[str, str] = Field(description="What this fabric sets itself")

    @classmethod
    def of(cls, fabric: str, p: FabricPolicy) -> PolicyOut:
        return cls(fabric=fabric, **p.as_dict())


class PolicyPatch(Strict):
    maintenance_allowed: bool | None = Field(
        default=None, description="False refuses new activations; not retroactive"
    )
    role_budgets: dict[str, str | int] | None = Field(
        default=None,
        max_length=MAX_LABELS,
        description="Role -> max_unavailable (2 or 50%); replaces the overrides; {} resets",
    )
    reason: str = Field(min_length=1, max_length=2000, description="Why; recorded in the audit")


class PoolOut(BaseModel):
    name: str
    kind: str
    max_unavailable: str
    members: int
    allowed: int
    unavailable: int
    free: int
    holders: list[dict[str, str]]


@router.get("/{fabric}/policy")
async def get_policy(fabric: str, store: StoreDep, _: ActorDep) -> PolicyOut:
    async with store.unit() as u:
        f = await u.fabrics.row(fabric)
        return PolicyOut.of(f.name, await u.budgets.policy(f.id))


@router.patch("/{fabric}/policy")
async def update_policy(
    fabric: str, body: PolicyPatch, store: StoreDep, actor: Admin, via: ViaDep
) -> PolicyOut:
    overrides = None if body.role_budgets is None else parse_role_budgets(dict(body.role_budgets))
    async with store.unit() as u:
        f = await u.fabrics.row(fabric)
        actor.ensure_may_write(f.name)
        before = await u.budgets.policy(f.id)
        after = await u.budgets.set_policy(
            f.id, maintenance_allowed=body.maintenance_allowed, role_overrides=overrides
        )
        details: dict[str, Any] = {"before": before.as_dict(), "after": after.as_dict()}
        await u.audit.append(
            actor=actor.name,
            action="fabric.policy",
            via=via.value,
            fabric=f.name,
            reason=body.reason,
            details=details,
        )
        return PolicyOut.of(f.name, after)


@router.get("/{fabric}/budgets")
async def get_budgets(fabric: str, store: StoreDep, _: ActorDep) -> list[PoolOut]:
    """Every group and capped role: its budget, how many slots are held, and by whom."""
    async with store.unit() as u:
        f = await u.fabrics.row(fabric)
        return [PoolOut(**p.describe()) for p in await u.budgets.fabric_pools(f.id)]
