"""Alembic environment: runs on the connection cxloop hands it (see cxloop.store.migrate)."""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection

from cxloop.store import migrate  # noqa: F401  (registers Alembic's DuckDB implementation)
from cxloop.store.schema import metadata


def run_migrations() -> None:
    connection = context.config.attributes.get("connection")
    if connection is None:  # pragma: no cover - only reached via the alembic CLI
        from sqlalchemy import create_engine

        url = context.config.get_main_option("sqlalchemy.url")
        assert url, "set sqlalchemy.url or run through `cxloop db upgrade`"
        with create_engine(url).connect() as conn:
            _configure_and_run(conn)
            conn.commit()
        return
    _configure_and_run(connection)


def _configure_and_run(connection: Connection) -> None:
    context.configure(connection=connection, target_metadata=metadata, compare_type=True)
    with context.begin_transaction():
        context.run_migrations()


run_migrations()
