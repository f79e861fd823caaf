"""Campaign devices: the pace each device brought from its earlier campaigns

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-01 12:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("campaign_devices", schema=None) as batch_op:
        batch_op.add_column(sa.Column("pace", sa.Float(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("campaign_devices", schema=None) as batch_op:
        batch_op.drop_column("pace")
