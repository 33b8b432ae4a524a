"""Where KPIs read their data: an Ibis backend and the names of cxloop's tables in it.

The same KPI expressions run on the store itself (DuckDB or PostgreSQL) and on Spark, where a
user points cxloop at tables in their own catalog (see docs/metrics.md, "Engines").
"""

from __future__ import annotations

import threading
import warnings
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import ibis
import ibis.expr.types as ir
import pandas as pd

from cxloop.errors import ConfigError

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

    from cxloop.store.store import Store

_LOOKUP = threading.Lock()

#: The canonical tables KPIs may read.
TABLES = (
    "customers",
    "orders",
    "order_lines",
    "survey_responses",
    "survey_invitations",
    "tickets",
    "reviews",
    "employees",
    "subscriptions",
)


@dataclass
class Source:
    """An Ibis backend plus a mapping from canonical table names to the names in that backend."""

    backend: Any
    engine: str  # "duckdb" | "postgres" | "pyspark"
    names: Mapping[str, str] = field(default_factory=dict)

    def table(self, name: str) -> ir.Table:
        if name not in TABLES:
            raise ConfigError(f"unknown table {name!r}; cxloop's tables are {', '.join(TABLES)}")
        actual = self.names.get(name, name)
        # "sales.lines" or "catalog.sales.lines": Ibis takes the table's database (schema)
        # apart, and would otherwise look for one table named "sales.lines".
        *path, table = actual.split(".")
        try:
            if not path:
                return self.backend.table(table)
            database = tuple(path) if len(path) > 1 else path[0]
            # Ibis' Spark backend looks such a table up by switching the session's current
            # database and back, which races between threads: one lookup at a time.
            with _LOOKUP:
                return self.backend.table(table, database=database)
        except Exception as exc:  # each backend raises its own "not found"
            raise ConfigError(
                f"table {actual!r} (cxloop's {name}) is not in the {self.engine} source: {exc}"
            ) from exc

    @classmethod
    def from_spark(cls, session: SparkSession, names: Mapping[str, str] | None = None) -> Source:
        """KPIs over tables in a Spark session's catalog (``names`` maps cxloop's table names to
        yours, e.g. ``{"order_lines": "sales.invoice_lines"}``)."""
        return cls(ibis.pyspark.connect(session), "pyspark", dict(names or {}))


def to_pandas(expr: ir.Table) -> pd.DataFrame:
    """Run an Ibis expression and fetch its result as a pandas DataFrame."""
    with warnings.catch_warnings():
        # Ibis 12 and pyspark 4.0 use pandas options and keywords that pandas 3 deprecated
        # (future.infer_string, copy=): harmless today, and not ours to fix.
        warnings.filterwarnings("ignore", message=".*future.infer_string.*")
        warnings.filterwarnings("ignore", message="The copy keyword is deprecated")
        return expr.to_pandas()


@contextmanager
def store_source(store: Store) -> Iterator[Source]:
    """An Ibis source over the store's own connection (DuckDB) or a connection from its pool."""
    raw = store.engine.raw_connection()
    try:
        driver: Any = raw.driver_connection
        if store.dialect == "duckdb":
            backend = ibis.duckdb.from_connection(driver._ConnectionWrapper__c)
            yield Source(backend, "duckdb")
        else:
            backend = ibis.postgres.from_connection(driver)
            yield Source(backend, "postgres")
    finally:
        raw.close()
