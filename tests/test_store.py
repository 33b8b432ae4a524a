"""The store: schema migrations on both engines, settings, and a DuckDB file held by another process."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest
import sqlalchemy as sa

from cxloop import Store, StoreBusyError
from cxloop.config import load_settings, normalise_database_url
from cxloop.errors import ConfigError
from cxloop.store import migrate, schema


def test_the_schema_is_created_on_first_use_and_upgrades_are_idempotent(store: Store) -> None:
    names = set(sa.inspect(store.engine).get_table_names())

    assert {t.name for t in schema.metadata.sorted_tables} <= names
    assert migrate.is_current(store.engine)
    store.upgrade()
    assert migrate.is_current(store.engine)


def test_the_migrated_schema_matches_the_declared_one(store: Store) -> None:
    # Read back through information_schema: duckdb_engine's reflection queries pg_collation,
    # which DuckDB lacks, so Alembic's compare_metadata cannot run on DuckDB.
    with store.engine.connect() as conn:
        found = {
            (t, c, n == "YES")
            for t, c, n in conn.execute(
                sa.text(
                    "SELECT table_name, column_name, is_nullable FROM information_schema.columns "
                    "WHERE table_schema = current_schema()"
                )
            )
        }
    declared = {(t.name, c.name, bool(c.nullable)) for t in schema.metadata.sorted_tables for c in t.columns}
    assert declared <= found


@pytest.mark.postgres
def test_alembic_sees_no_drift_on_postgresql(pg_schema_url: str) -> None:
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    store = Store.open(pg_schema_url)
    with store.engine.connect() as conn:
        assert compare_metadata(MigrationContext.configure(conn), schema.metadata) == []
    store.close()


def test_settings_resolution(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CXLOOP_DATABASE_URL", raising=False)
    assert load_settings().database_url == "cxloop.duckdb"
    monkeypatch.setenv("CXLOOP_DATABASE_URL", "postgresql://db/cx")
    assert load_settings().database_url == "postgresql://db/cx"
    assert load_settings("other.duckdb").database_url == "other.duckdb"


def test_urls_and_paths() -> None:
    assert normalise_database_url("data/cx.duckdb") == "duckdb:///data/cx.duckdb"
    assert normalise_database_url("postgresql://u@h/db") == "postgresql+psycopg://u@h/db"
    assert normalise_database_url("duckdb:///:memory:") == "duckdb:///:memory:"


def test_an_unsupported_database_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="unsupported database 'sqlite'"):
        Store.open(f"sqlite:///{tmp_path / 'x.db'}")


def test_a_duckdb_file_held_by_another_process_is_reported_clearly(tmp_path: Path) -> None:
    path = tmp_path / "held.duckdb"
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            (
                "import duckdb, sys, time; c = duckdb.connect(sys.argv[1]); print('ready', flush=True); time.sleep(60)"
            ),
            str(path),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "ready"
        with pytest.raises(StoreBusyError, match=r"in use by another process.*DuckDB allows one writer"):
            Store.open(str(path))
    finally:
        holder.kill()
        holder.communicate()
    time.sleep(0.1)
    Store.open(str(path)).close()  # free again once the other process is gone
