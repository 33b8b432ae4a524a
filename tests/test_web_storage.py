"""The server's DuckDB store stays sound with many request threads coming and going."""

from __future__ import annotations

import threading
from pathlib import Path

import sqlalchemy as sa

from cxloop.config import Settings
from cxloop.store.store import Store
from cxloop.web.storage import open_server_store


def hammer(store: Store, threads: int = 12, waves: int = 3) -> list[BaseException]:
    """Waves of threads that each hold a connection while the others open theirs."""
    errors: list[BaseException] = []
    for _ in range(waves):
        barrier = threading.Barrier(threads)

        def work(barrier: threading.Barrier = barrier) -> None:
            try:
                with store.engine.connect() as conn:
                    barrier.wait(timeout=20)
                    for _ in range(20):
                        conn.execute(sa.text("SELECT count(*) FROM range(1000)")).scalar_one()
            except BaseException as exc:  # collected for the assertion
                errors.append(exc)

        pool = [threading.Thread(target=work) for _ in range(threads)]
        for thread in pool:
            thread.start()
        for thread in pool:
            thread.join()
    return errors


def test_many_request_threads_share_the_duckdb_store_safely(tmp_path: Path) -> None:
    url = str(tmp_path / "web.duckdb")
    store = open_server_store(url, Settings(database_url=url))
    try:
        assert hammer(store) == []
        # Connections of ended threads are closed, not kept forever.
        assert len(store.engine.pool._all_conns) <= 12 + 1  # type: ignore[attr-defined]
    finally:
        store.close()
