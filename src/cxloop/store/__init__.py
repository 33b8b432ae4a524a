"""The store: one SQL database by URL (a DuckDB file by default, PostgreSQL in production)."""

from cxloop.store.store import Store

__all__ = ["Store"]
