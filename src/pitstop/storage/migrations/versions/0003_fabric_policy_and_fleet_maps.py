"""Fabric policy (maintenance_allowed, role budgets) and the epoch-versioned fleet maps

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-01 08:40:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("fabrics", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("maintenance_allowed", sa.Boolean(), server_default=sa.true(), nullable=False)
        )
        batch_op.add_column(
            sa.Column("role_budgets", sa.JSON(), server_default="{}", nullable=False)
        )

    op.create_table(
        "fleet_maps",
        sa.Column("fabric_id", sa.Uuid(), nullable=False),
        sa.Column("epoch", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("published_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("published_by", sa.String(length=127), nullable=False),
        sa.Column("members", sa.JSON(), nullable=False),
        sa.Column("digest", sa.String(length=64), nullable=False),
        sa.ForeignKeyConstraint(
            ["fabric_id"],
            ["fabrics.id"],
            name=op.f("fk_fleet_maps_fabric_id_fabrics"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("fabric_id", "epoch", name=op.f("pk_fleet_maps")),
    )


def downgrade() -> None:
    op.drop_table("fleet_maps")
    with op.batch_alter_table("fabrics", schema=None) as batch_op:
        batch_op.drop_column("role_budgets")
        batch_op.drop_column("maintenance_allowed")
