"""Admin API of the simulated driver: inject and clear faults, read a device's state and call
log. For demos and tests; real devices are never reached through it."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from pydantic import Field

from pitstop.api.deps import Admin, StoreDep, ViaDep
from pitstop.api.schemas import Strict
from pitstop.domain.errors import NotFound
from pitstop.domain.roles import Actor, Via
from pitstop.drivers.simulated import SimulatedDriverFactory
from pitstop.storage.store import Store, Unit

router = APIRouter(prefix="/api/v1/simulated", tags=["simulated driver"])


class FaultIn(Strict):
    fault: str = Field(min_length=1, max_length=255)


def _factory(request: Request) -> SimulatedDriverFactory:
    registry = request.app.state.drivers
    factory = registry.get("simulated") if "simulated" in registry else None
    if not isinstance(factory, SimulatedDriverFactory):
        raise NotFound("the simulated driver is not loaded in this server")
    return factory


async def _device_id(u: Unit, ref: str, fabric: str | None) -> Any:
    fabric_id = (await u.fabrics.row(fabric)).id if fabric else None
    device_id = await u.devices.resolve(ref, fabric_id=fabric_id)
    device = await u.devices.get(device_id)
    if device.driver != "simulated":
        raise NotFound(f"{device.name} does not use the simulated driver")
    return device


@router.get("/devices/{device}")
async def simulated_state(
    device: str,
    request: Request,
    store: StoreDep,
    _: Admin,
    fabric: Annotated[str | None, Query()] = None,
) -> dict[str, Any]:
    """The device's simulated state: faults, diversion, and its call log."""
    factory = _factory(request)
    async with store.unit() as u:
        dev = await _device_id(u, device, fabric)
    return {
        "device": dev.name,
        "faults": sorted(factory.fleet.faults(dev.id)),
        "state": factory.fleet.state(dev.id),
    }


@router.post("/devices/{device}/faults")
async def inject_fault(
    device: str,
    body: FaultIn,
    request: Request,
    store: StoreDep,
    actor: Admin,
    via: ViaDep,
    fabric: Annotated[str | None, Query()] = None,
) -> dict[str, Any]:
    return await _change(request, store, actor, via, device, fabric, inject=body.fault)


@router.delete("/devices/{device}/faults")
async def clear_faults(
    device: str,
    request: Request,
    store: StoreDep,
    actor: Admin,
    via: ViaDep,
    fault: Annotated[str | None, Query(description="One fault; all when left out")] = None,
    fabric: Annotated[str | None, Query()] = None,
) -> dict[str, Any]:
    return await _change(request, store, actor, via, device, fabric, clear=fault or "all")


async def _change(
    request: Request,
    store: Store,
    actor: Actor,
    via: Via,
    device: str,
    fabric: str | None,
    *,
    inject: str | None = None,
    clear: str | None = None,
) -> dict[str, Any]:
    """Inject or clear a fault, audited."""
    factory = _factory(request)
    async with store.unit() as u:
        dev = await _device_id(u, device, fabric)
        if inject is not None:
            factory.fleet.inject(dev.id, inject)
        else:
            factory.fleet.clear(dev.id, None if clear == "all" else clear)
        await u.audit.append(
            actor=actor.name,
            action="simulated.fault",
            via=via.value,
            fabric=dev.fabric,
            device=dev.name,
            device_id=dev.id,
            details={"inject": inject} if inject is not None else {"clear": clear},
        )
    return {"device": dev.name, "faults": sorted(factory.fleet.faults(dev.id))}
