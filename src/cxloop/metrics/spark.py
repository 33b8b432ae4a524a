"""Spark as a metrics engine: a local session for tests and small jobs, and the store's tables
registered in it.

On a cluster you already have a session and tables: pass them to
:meth:`cxloop.metrics.Source.from_spark` with a mapping from cxloop's table names to yours.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from cxloop.metrics.source import TABLES

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

    from cxloop.store.store import Store


def local_session(app_name: str = "cxloop") -> SparkSession:
    """A local Spark session set up as cxloop expects: UTC session time (the store keeps naive
    UTC timestamps), few shuffle partitions (small data), no UI, quiet logs."""
    from pyspark.sql import SparkSession

    session = (
        SparkSession.builder.master("local[2]")
        .appName(app_name)
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.sql.shuffle.partitions", "4")
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
        .config("spark.driver.memory", "1g")
        .getOrCreate()
    )
    session.sparkContext.setLogLevel("ERROR")
    return session


def register_store_tables(session: SparkSession, store: Store, directory: Path) -> dict[str, str]:
    """Copy a DuckDB store's tables to Parquet files in ``directory`` and register each as a
    temporary view of the same name; returns the names for ``Source.from_spark``."""
    directory.mkdir(parents=True, exist_ok=True)
    names = {}
    with store.duckdb_connection() as conn:
        for table in TABLES:
            path = directory / f"{table}.parquet"
            conn.execute(f"COPY (SELECT * FROM {table}) TO '{path}' (FORMAT parquet)")
            session.read.parquet(str(path)).createOrReplaceTempView(table)
            names[table] = table
    return names
