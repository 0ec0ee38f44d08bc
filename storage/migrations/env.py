"""Alembic environment: always run programmatically by storage.db with an open connection.

There is no alembic.ini; storage.db builds the Config and passes the connection in
``config.attributes["connection"]`` inside a BEGIN IMMEDIATE transaction.
"""

from alembic import context

from storage.models import Base

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("storage migrations run through storage.db.migrate(), not the alembic command line")

context.configure(
    connection=connection,
    target_metadata=Base.metadata,
    render_as_batch=True,
    transactional_ddl=True,
)
with context.begin_transaction():
    context.run_migrations()
