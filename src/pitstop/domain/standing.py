"""What leaving service is judged on: a device's standing in its fabric, read by storage
under the fabric's and the device's locks before anything changes, and the shape of a
caller's own rule on it (the engine's redundancy check).

Values only: storage fills a ``Standing`` and hands it to a ``Judge``; the engine writes
judges. Keeping both here lets storage take a rule from the engine without importing it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from pitstop.domain.budgets import Pool, role_pool
from pitstop.domain.policy import FabricPolicy
from pitstop.domain.redundancy import Member


@dataclass(frozen=True, slots=True)
class Standing:
    """The policy, the device's groups and every device of its role, the device included."""

    device: str
    role: str
    fabric: str
    policy: FabricPolicy
    groups: tuple[Pool, ...]  # by name
    same_role: tuple[Member, ...]  # the device included

    def pools(self) -> list[Pool]:
        """Every pool the device takes a slot in: its groups, then its role if capped."""
        cap = self.policy.role_budget(self.role)
        role = [role_pool(self.role, cap, self.same_role)] if cap is not None else []
        return [*self.groups, *role]


# A caller's own rule on leaving service (the engine's redundancy check); raises to refuse.
Judge = Callable[[Standing], None]
