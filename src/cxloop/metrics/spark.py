"""Spark as a metrics engine: a local session set up for cxloop, and a store's tables in it.

On a cluster you already have a session and your own tables: pass them to
:meth:`cxloop.metrics.Source.from_spark` with a mapping from cxloop's table names to yours (see
docs/metrics.md, "Engines"). The helpers here are for a single machine: tests, trying cxloop on
Spark, and moving a store's data to Spark as Parquet.

Nothing here downloads anything: no ``--packages``, no Ivy. Spark reads Parquet natively.
"""

from __future__ import annotations

import atexit
import os
import shutil
import sys
import tempfile
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from cxloop.metrics.source import TABLES, store_source

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

    from cxloop.store.store import Store

# Spark's log4j2 defaults print INFO lines on start; cxloop's local sessions start at WARN, minus
# the known start-up warnings, and local_session then lowers the level to errors only. (The root
# level stays WARN in the file: at any other level PySpark prints "Setting default log level".)
_LOG4J2 = """\
rootLogger.level = warn
rootLogger.appenderRef.stderr.ref = console
appender.console.type = Console
appender.console.name = console
appender.console.target = SYSTEM_ERR
appender.console.layout.type = PatternLayout
appender.console.layout.pattern = %d{yy/MM/dd HH:mm:ss} %p %c{1}: %m%n
logger.hadoop.name = org.apache.hadoop.util.NativeCodeLoader
logger.hadoop.level = error
"""


def local_session(
    app_name: str = "cxloop",
    *,
    cores: int = 2,
    shuffle_partitions: int = 1,
    driver_memory: str = "1g",
    conf: Mapping[str, str] | None = None,
) -> SparkSession:
    """A local Spark session set up as cxloop expects.

    * UTC session time zone and JVM time zone: the store keeps naive UTC timestamps, and periods
      are UTC periods on every engine;
    * few shuffle partitions: KPI results are small (Spark's default of 200 makes every
      aggregation schedule 200 tasks);
    * no web UI, no console progress bar, errors-only logs, an in-memory catalog and a warehouse
      in a temporary directory removed at exit (nothing is written to the working directory);
    * bound to the loopback interface, and the JVM compiles with its quick compiler only
      (``-XX:TieredStopAtLevel=1``): a short-lived session over small data spends most of its CPU
      in the JIT otherwise (measured here: half the CPU time for every KPI once).

    ``conf`` adds or overrides Spark settings. If a session is already running in this process,
    Spark returns it and the JVM settings above do not apply to it.
    """
    from pyspark.sql import SparkSession

    # The session's own directory (log configuration, warehouse), removed when Python exits.
    home = Path(tempfile.mkdtemp(prefix="cxloop-spark-"))
    atexit.register(shutil.rmtree, home, ignore_errors=True)
    log_config = home / "log4j2.properties"
    log_config.write_text(_LOG4J2)
    # Spark picks its address before it reads any setting; without this it warns that the host
    # name resolves to a loopback address and may choose another interface.
    os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    java_options = (
        "-XX:TieredStopAtLevel=1 -XX:+UseSerialGC -Duser.timezone=UTC "
        f"-Dlog4j2.configurationFile={log_config.as_uri()}"
    )
    settings = {
        "spark.master": f"local[{cores}]",
        "spark.app.name": app_name,
        "spark.driver.memory": driver_memory,
        "spark.driver.extraJavaOptions": java_options,
        "spark.executor.extraJavaOptions": java_options,
        "spark.driver.host": "127.0.0.1",
        "spark.driver.bindAddress": "127.0.0.1",
        "spark.sql.session.timeZone": "UTC",
        "spark.sql.shuffle.partitions": str(shuffle_partitions),
        "spark.default.parallelism": str(cores),
        "spark.sql.catalogImplementation": "in-memory",
        "spark.sql.warehouse.dir": str(home / "warehouse"),
        "spark.sql.execution.arrow.pyspark.enabled": "true",
        "spark.ui.enabled": "false",
        "spark.ui.showConsoleProgress": "false",
        "spark.pyspark.python": sys.executable,
        **dict(conf or {}),
    }
    builder = SparkSession.builder
    for key, value in settings.items():
        builder = builder.config(key, value)
    session = builder.getOrCreate()
    session.sparkContext.setLogLevel("ERROR")
    return session


def export_parquet(store: Store, directory: str | Path, tables: Iterable[str] = TABLES) -> dict[str, Path]:
    """Write each of the store's ``tables`` to ``directory/<table>.parquet``; returns the paths.

    Column types stay as stored: naive UTC timestamps (Parquet ``isAdjustedToUTC=false``, which
    Spark reads as ``TIMESTAMP_NTZ``), money and quantities as ``decimal(18,4)``, integers,
    booleans and text. Works for DuckDB stores (with DuckDB's ``COPY``) and PostgreSQL stores.
    """
    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    paths = {}
    with store_source(store) as source:
        for table in tables:
            path = out / f"{table}.parquet"
            # DuckDB writes the file with COPY; PostgreSQL rows stream through Arrow.
            source.table(table).to_parquet(path)
            paths[table] = path
    return paths


def register_parquet(
    session: SparkSession,
    files: Mapping[str, str | Path],
    *,
    prefix: str = "",
    database: str | None = None,
) -> dict[str, str]:
    """Make each Parquet file (cxloop table name -> path) a table Spark can query, and return the
    ``names`` for :meth:`Source.from_spark`.

    Without ``database``: a temporary view named ``prefix + table``, gone with the session. With
    ``database``: an external table ``database.prefix+table`` over the file in the session's
    catalog (the database is created if needed; dropping it leaves the files alone).
    """
    if database is not None:
        session.sql(f"CREATE DATABASE IF NOT EXISTS `{database}`")
    names = {}
    for table, path in files.items():
        name = f"{prefix}{table}"
        if database is None:
            session.read.parquet(str(path)).createOrReplaceTempView(name)
        else:
            name = f"{database}.{name}"
            location = str(Path(path).resolve()).replace("'", "\\'")
            session.sql(f"CREATE TABLE `{database}`.`{prefix}{table}` USING parquet LOCATION '{location}'")
        names[table] = name
    return names


def register_store_tables(
    session: SparkSession,
    store: Store,
    directory: str | Path,
    *,
    prefix: str = "",
    database: str | None = None,
) -> dict[str, str]:
    """Copy the store's tables to Parquet files in ``directory`` and register them (see
    :func:`register_parquet`); returns the ``names`` for :meth:`Source.from_spark`."""
    return register_parquet(session, export_parquet(store, directory), prefix=prefix, database=database)
