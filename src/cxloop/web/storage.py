"""The store as the server opens it: safe for the threads that serve requests.

FastAPI runs blocking route code on a pool of worker threads that come and go. The store's
DuckDB engine keeps one connection per thread in SQLAlchemy's ``SingletonThreadPool``, which, past
five threads, closes connections at random, including ones a live thread is using. The server
therefore opens a DuckDB store with :class:`ThreadBoundPool`: still one connection per thread (so
the importer's and Ibis's "this thread's connection" stays the same one), but a connection is closed
only once its thread has ended. PostgreSQL keeps its ordinary queue pool.
"""

from __future__ import annotations

import threading
from typing import Any

import sqlalchemy as sa

from cxloop.config import Settings
from cxloop.store.store import Store


class ThreadBoundPool(sa.pool.SingletonThreadPool):
    """One connection per live thread; connections of ended threads are closed, no others."""

    def __init__(self, creator: Any, pool_size: int = 5, **kw: Any) -> None:
        super().__init__(creator, pool_size=pool_size, **kw)
        self._owners: dict[Any, threading.Thread] = {}
        self._owners_lock = threading.Lock()

    def _cleanup(self) -> None:
        with self._owners_lock:
            for record, thread in list(self._owners.items()):
                if not thread.is_alive():
                    del self._owners[record]
                    self._all_conns.discard(record)
                    record.close()

    def _do_get(self) -> Any:
        record = super()._do_get()
        with self._owners_lock:
            self._owners.setdefault(record, threading.current_thread())
        return record

    def dispose(self) -> None:
        super().dispose()
        with self._owners_lock:
            self._owners.clear()


def open_server_store(database_url: str | None, settings: Settings) -> Store:
    """Open (and upgrade) the store for a server process."""
    store = Store.open(database_url or settings.database_url, settings=settings)
    if store.dialect != "duckdb":
        return store
    url = store.engine.url
    store.close()  # releases the file; reopened at once with the thread-safe pool
    engine = sa.create_engine(url, poolclass=ThreadBoundPool)
    with engine.connect():
        pass
    return Store(engine, settings)
