"""Alembic's entry: migrate the connection ``ctaoflow.engine.migrations.upgrade`` passes."""

from alembic import context

context.configure(connection=context.config.attributes["connection"],
                  target_metadata=context.config.attributes["metadata"])
with context.begin_transaction():
    context.run_migrations()
