"""Alembic environment: migrates the connection handed over in ``config.attributes``.

Run through :func:`margin_engine.service.db.migrate`; no ``alembic.ini`` is needed.
"""

from __future__ import annotations

from alembic import context

from margin_engine.service.tables import Base

connection = context.config.attributes["connection"]
context.configure(connection=connection, target_metadata=Base.metadata, compare_type=True,
                  render_as_batch=connection.dialect.name == "sqlite")
with context.begin_transaction():
    context.run_migrations()
