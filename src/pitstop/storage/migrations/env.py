"""Alembic environment. pitstop runs migrations programmatically (``pitstop db upgrade`` and at
``serve`` start) on a connection handed over in ``config.attributes``."""

from __future__ import annotations

from alembic import context

from pitstop.storage.tables import Base

connection = context.config.attributes.get("connection")
if connection is None:  # pragma: no cover - only for hand-run alembic commands
    raise RuntimeError("run migrations through `pitstop db upgrade`")

context.configure(
    connection=connection,
    target_metadata=Base.metadata,
    render_as_batch=connection.dialect.name == "sqlite",
    compare_type=True,
)
with context.begin_transaction():
    context.run_migrations()
