"""Open the store by URL, keep its schema current, and hand out connections."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, Literal

import duckdb
import sqlalchemy as sa

from cxloop.config import Settings, load_settings, normalise_database_url
from cxloop.errors import ConfigError, StoreBusyError
from cxloop.store import migrate

Dialect = Literal["duckdb", "postgresql"]


class Store:
    """A cxloop database: a SQLAlchemy engine plus what cxloop needs to know about it.

    Open with :meth:`Store.open`; the schema is upgraded on first use unless ``upgrade=False``.
    """

    def __init__(self, engine: sa.Engine, settings: Settings) -> None:
        self.engine = engine
        self.settings = settings
        name = engine.dialect.name
        if name not in ("duckdb", "postgresql"):
            raise ConfigError(f"unsupported database {name!r}: use a DuckDB file or PostgreSQL")
        self.dialect: Dialect = "duckdb" if name == "duckdb" else "postgresql"

    @classmethod
    def open(
        cls,
        database_url: str | None = None,
        *,
        settings: Settings | None = None,
        upgrade: bool = True,
    ) -> Store:
        settings = settings or load_settings(database_url)
        url = normalise_database_url(database_url or settings.database_url)
        store = cls(_create_engine(url), settings)
        if upgrade:
            store.upgrade()
        return store

    @property
    def url(self) -> str:
        return self.engine.url.render_as_string(hide_password=True)

    def upgrade(self) -> None:
        """Run pending migrations (idempotent)."""
        try:
            if not migrate.is_current(self.engine):
                migrate.upgrade(self.engine)
        except duckdb.IOException as exc:
            raise _busy(self.url, exc) from exc

    def close(self) -> None:
        self.engine.dispose()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextmanager
    def duckdb_connection(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """The raw DuckDB connection behind the engine (DuckDB stores only)."""
        if self.dialect != "duckdb":
            raise ConfigError("a raw DuckDB connection exists only for a DuckDB store")
        raw = self.engine.raw_connection()
        try:
            wrapper: Any = raw.driver_connection
            yield wrapper._ConnectionWrapper__c
        finally:
            raw.close()


def _create_engine(url: str) -> sa.Engine:
    try:
        if url.startswith("duckdb"):
            # One process owns a DuckDB file; keep a single pooled connection so that
            # SQLAlchemy work and bulk loads share it (and its transaction).
            engine = sa.create_engine(url, poolclass=sa.pool.SingletonThreadPool)
            with engine.connect():
                pass
            return engine
        return sa.create_engine(url, pool_pre_ping=True)
    except duckdb.IOException as exc:
        raise _busy(url, exc) from exc
    except sa.exc.OperationalError as exc:
        if isinstance(exc.orig, duckdb.IOException):
            raise _busy(url, exc.orig) from exc
        raise ConfigError(f"cannot connect to {_hide_password(url)}: {exc.orig}") from exc
    except sa.exc.ArgumentError as exc:
        raise ConfigError(f"cannot use database URL {url!r}: {exc}") from exc
    except ModuleNotFoundError as exc:
        raise ConfigError(
            f"the driver for {url.split(':', 1)[0]} is not installed ({exc.name}); "
            "for PostgreSQL install cxloop[postgres]"
        ) from exc


def _hide_password(url: str) -> str:
    return sa.make_url(url).render_as_string(hide_password=True)


def _busy(url: str, exc: Exception) -> StoreBusyError:
    return StoreBusyError(
        f"the database {url} is in use by another process ({str(exc).split('. See also')[0]}). "
        "DuckDB allows one writer: "
        "stop the other cxloop process (for example `cxloop serve`) or use PostgreSQL."
    )
