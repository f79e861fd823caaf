"""Who is acting: the roles a token can carry, and the engine acting on its own behalf."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

from pitstop.domain.errors import Forbidden


class Role(enum.StrEnum):
    VIEWER = "viewer"
    OPERATOR = "operator"
    ADMIN = "admin"
    # Not a token role: the job engine, acting on a job's behalf.
    ENGINE = "engine"


TOKEN_ROLES: tuple[Role, ...] = (Role.VIEWER, Role.OPERATOR, Role.ADMIN)


class Via(enum.StrEnum):
    """The channel a change came through, recorded in every audit row."""

    API = "api"
    CLI = "cli"
    WEB = "web"
    ENGINE = "engine"


@dataclass(frozen=True, slots=True)
class Actor:
    """An authenticated caller: a token's name and role, and the fabrics it may change."""

    name: str
    role: Role
    # Empty means every fabric.
    fabrics: frozenset[str] = field(default_factory=frozenset)

    def may_write_fabric(self, fabric_name: str) -> bool:
        return self.role is Role.ENGINE or not self.fabrics or fabric_name in self.fabrics

    def ensure_may_write(self, fabric_name: str) -> None:
        """Tokens scoped to fabrics change only those fabrics (``FORBIDDEN`` otherwise)."""
        if not self.may_write_fabric(fabric_name):
            raise Forbidden(
                f"token {self.name!r} may change only fabrics {', '.join(sorted(self.fabrics))}",
                fabric=fabric_name,
            )

    @property
    def is_admin(self) -> bool:
        return self.role is Role.ADMIN
