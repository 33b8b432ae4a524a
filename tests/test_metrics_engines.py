"""The same KPI code gives the same answers on DuckDB, PostgreSQL and Spark.

One seeded demo business (300 customers, about 2,900 order lines) is loaded through the importer
into a DuckDB store and into a fresh PostgreSQL schema, and reaches a local Spark session as
Parquet files exported from the DuckDB store. Every case below — every KPI in the registry (new
ones are covered automatically) at grain month with its period-over-period change, every KPI with
a breakdown of its fact, a few quarter/week/cohort/filter variants, the cohort matrix and the RFM
tables — is computed on each engine, and PostgreSQL and Spark must give DuckDB's rows and keys,
equal text and flags, and every number equal to 1e-9 relative (docs/metrics.md, "Engines").

Cost: Spark takes seconds to start and each query costs a fraction of a second of JVM time, so
each case runs once per engine: all of an engine's cases are computed together (Spark's on two
threads) and kept for the module; the tests then only compare.
"""

from __future__ import annotations

import datetime as dt
import re
import shutil
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import ibis
import numpy as np
import pandas as pd
import pytest

from conftest import need
from cxloop import Store
from cxloop.demo_store import load_demo
from cxloop.metrics import Source, compute, kpis, store_source
from cxloop.metrics.cohorts import cohort_query, cohorts
from cxloop.metrics.compute import make_query
from cxloop.metrics.kpi import Kpi
from cxloop.metrics.query import CUSTOMER_DIMENSIONS, FACTS, Context, Options
from cxloop.metrics.rfm import rfm, rfm_query, rfm_table
from cxloop.metrics.source import TABLES
from cxloop.metrics.summary import headline
from cxloop.store import schema

pytestmark = pytest.mark.filterwarnings(
    # py4j (Spark's Python-Java bridge) leaves sockets for the garbage collector to close.
    "ignore::ResourceWarning",
    "ignore::pytest.PytestUnraisableExceptionWarning",
    # pyspark 4.0 passes pandas 3 a deprecated keyword. cxloop's to_pandas silences it, but with
    # catch_warnings, which is not thread-safe: Spark's cases run on two threads here.
    "ignore:The copy keyword is deprecated:DeprecationWarning",
)

AS_OF = dt.datetime(2026, 1, 1)
START = dt.datetime(2025, 1, 1)
CUSTOMERS, SEED = 300, 5
RTOL = ATOL = 1e-9
SPARK_THREADS = 2  # Spark plans and runs queries from two Python threads at once

# One breakdown per fact, so every builder's grouping runs on every engine.
BREAKDOWN = {
    "purchases": "category",
    "orders": "channel",
    "responses": "segment",
    "invitations": "channel",
    "tickets": "channel",
    "reviews": "brand",
    "customers": "segment",
    "subscriptions": "plan",
}


@dataclass(frozen=True)
class Case:
    """One computation to run on every engine, and the columns that identify its rows."""

    name: str
    run: Callable[[Source], pd.DataFrame]
    keys: tuple[str, ...]


def _kpi_case(kpi_id: str, label: str, *, by: tuple[str, ...] = (), **options: Any) -> Case:
    def run(source: Source) -> pd.DataFrame:
        return compute(source, kpi_id, by=by, as_of=AS_OF, **options)

    return Case(f"{kpi_id}[{label}]", run, ("period", *by))


def _cases() -> list[Case]:
    cases = []
    for kpi in kpis():
        # Without `start` a change=True query is the plain monthly query, paired in pandas.
        cases.append(_kpi_case(kpi.id, "month,change", grain="month", change=True))
        dim = BREAKDOWN[kpi.fact]
        cases.append(_kpi_case(kpi.id, f"by {dim}", by=(dim,), grain="month", start=START))
    # A first period cut by `start` is compared with the period before it, computed on its own.
    for kpi_id in ("nps", "revenue", "retention_rate", "resolution_median", "share_of_voice", "mrr"):
        cases.append(_kpi_case(kpi_id, "quarter,change", grain="quarter", start=START, change=True))
    # The cohort dimension (first purchases joined in) and filters on it and on a customer field.
    cases.append(
        _kpi_case("net_revenue", "by cohort where consumer", by=("cohort",), grain="quarter",
                  where={"segment": "consumer"}, start=START)
    )  # fmt: skip
    cases.append(
        _kpi_case("orders", "week where cohort", grain="week", where={"cohort": ["2024-03", "2024-04"]})
    )
    # Order denominators split by a customer field, numerators by the ticket's own.
    cases.append(_kpi_case("complaints_per_1000_orders", "by region", by=("region",), start=START))
    cases.append(_kpi_case("top_customer_share", "all", grain="all", by=("segment",)))
    cases += [
        Case("cohorts[month]", lambda s: cohorts(s, grain="month", as_of=AS_OF), ("cohort", "age")),
        Case(
            "cohorts[quarter by segment]",
            lambda s: cohorts(s, grain="quarter", by=["segment"], as_of=AS_OF),
            ("cohort", "segment", "age"),
        ),
        Case("rfm_table", lambda s: rfm_table(s, as_of=AS_OF), ("customer_id",)),
        Case("rfm_table[365 days]", lambda s: rfm_table(s, as_of=AS_OF, lookback_days=365), ("customer_id",)),
        Case("rfm", lambda s: rfm(s, as_of=AS_OF), ("segment",)),
        # Every KPI in one summary: their statistics stacked in one UNION ALL, both months at once.
        Case(
            "summary[every kpi]",
            lambda s: headline(s, kpis(), as_of=AS_OF, kpi_ids=[k.id for k in kpis()]),
            ("kpi",),
        ),
        Case(
            "summary[quarter, 30 days]",
            lambda s: headline(s, kpis(), as_of=AS_OF, grain="quarter", options=Options(active_days=30)),
            ("kpi",),
        ),
    ]
    return cases


CASES = _cases()
Outcome = pd.DataFrame | BaseException


def _run(case: Case, source: Source) -> Outcome:
    try:
        return case.run(source)
    except Exception as exc:  # reported by the case's own test, not by the whole module
        return exc


def _run_all(source: Source) -> dict[str, Outcome]:
    return {case.name: _run(case, source) for case in CASES}


def _spark_problem() -> str | None:
    if shutil.which("java") is None:
        return "Java is not installed (Spark needs a Java 17+ runtime)"
    try:
        import pyspark  # noqa: F401
    except ImportError:
        return "pyspark is not installed (pip install 'cxloop[spark]')"
    return None


# -- the engines ------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def spark_session() -> Iterator[Any]:
    """One local Spark session for the whole test run (it takes seconds to start)."""
    problem = _spark_problem()
    need(problem is None, problem or "")
    from cxloop.metrics.spark import local_session

    # Interpreted expressions instead of generated Java: these queries each touch a few thousand
    # rows, and compiling code for them cost a quarter of Spark's CPU here (36 s instead of 46 s
    # of JVM time for all cases). Results are the same either way; Spark's own tests run both.
    session = local_session(
        "cxloop-tests",
        conf={"spark.sql.codegen.wholeStage": "false", "spark.sql.codegen.factoryMode": "NO_CODEGEN"},
    )
    try:
        yield session
    finally:
        session.stop()


@pytest.fixture(scope="module")
def duck(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Store]:
    store = Store.open(str(tmp_path_factory.mktemp("engines") / "demo.duckdb"))
    try:
        load_demo(store, customers=CUSTOMERS, seed=SEED, as_of=AS_OF.date())
        yield store
    finally:
        store.close()


@pytest.fixture(scope="module")
def reference(duck: Store) -> dict[str, Outcome]:
    with store_source(duck) as source:
        return _run_all(source)


@pytest.fixture(scope="module")
def on_postgres(pg_url: str) -> dict[str, Outcome]:
    import psycopg

    schema = f"cx_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    store = Store.open(f"{pg_url}{'&' if '?' in pg_url else '?'}options=-csearch_path%3D{schema}")
    try:
        load_demo(store, customers=CUSTOMERS, seed=SEED, as_of=AS_OF.date())
        with store_source(store) as source:
            return _run_all(source)
    finally:
        store.close()
        with psycopg.connect(pg_url, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA "{schema}" CASCADE')


@pytest.fixture(scope="module", autouse=True)
def _spark_cases_started(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, Future[Outcome]] | None]:
    """Start Spark's cases on background threads before any test runs, so that Spark (a JVM
    busy for half a minute) works while DuckDB and PostgreSQL compute theirs. Only when a
    selected test compares with Spark, and never skips anything itself (``on_spark`` does)."""
    wanted = any(
        getattr(item, "callspec", None) is not None
        and item.callspec.params.get("engine") == "spark"
        and item.module is request.module
        for item in request.session.items
    )
    if not wanted or _spark_problem() is not None:
        yield None
        return
    from cxloop.metrics.spark import register_store_tables

    try:
        session = request.getfixturevalue("spark_session")
        duck: Store = request.getfixturevalue("duck")
        prefix = f"cx_{uuid.uuid4().hex[:8]}_"  # other modules may share the session
        names = register_store_tables(session, duck, tmp_path_factory.mktemp("parquet"), prefix=prefix)
    except Exception:  # Spark's own tests report it (on_spark asks again); the others go on
        yield None
        return
    source = Source.from_spark(session, names)
    pool = ThreadPoolExecutor(SPARK_THREADS, thread_name_prefix="spark-cases")
    try:
        yield {case.name: pool.submit(_run, case, source) for case in CASES}
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
        for view in names.values():
            session.catalog.dropTempView(view)


@pytest.fixture(scope="module")
def on_spark(
    request: pytest.FixtureRequest, _spark_cases_started: dict[str, Future[Outcome]] | None
) -> dict[str, Outcome]:
    request.getfixturevalue("spark_session")  # skips (fails in CI) without Spark; raises its error
    assert _spark_cases_started is not None, "Spark's cases did not start"
    return {name: future.result() for name, future in _spark_cases_started.items()}


def _run_on_threads(source: Source, cases: list[Case]) -> dict[str, Outcome]:
    with ThreadPoolExecutor(SPARK_THREADS) as pool:
        futures = {case.name: pool.submit(_run, case, source) for case in cases}
        return {name: future.result() for name, future in futures.items()}


# -- comparison -------------------------------------------------------------------------------


def _plain(values: pd.Series) -> list[Any]:
    return [None if v is None or (isinstance(v, float) and np.isnan(v)) or v is pd.NaT else v for v in values]


def assert_same(expected: pd.DataFrame, got: pd.DataFrame, keys: tuple[str, ...], label: str) -> None:
    """Same columns, same rows by ``keys``, numbers equal to RTOL (ATOL near zero), the rest exact."""
    assert len(expected) > 0, f"{label}: the demo gives no rows on DuckDB, so the comparison proves nothing"
    assert list(got.columns) == list(expected.columns), f"{label}: different columns"
    expected = expected.sort_values(list(keys), na_position="last", kind="stable").reset_index(drop=True)
    got = got.sort_values(list(keys), na_position="last", kind="stable").reset_index(drop=True)
    want_keys = list(zip(*(_plain(expected[k]) for k in keys), strict=True))
    got_keys = list(zip(*(_plain(got[k]) for k in keys), strict=True))
    if want_keys != got_keys:
        missing = [k for k in want_keys if k not in got_keys][:5]
        extra = [k for k in got_keys if k not in want_keys][:5]
        pytest.fail(f"{label}: different rows; missing {missing}, extra {extra}")
    for column in expected.columns:
        if column in keys:
            continue
        want, have = expected[column], got[column]
        numeric = pd.api.types.is_numeric_dtype(want) and not pd.api.types.is_bool_dtype(want)
        if numeric:
            a, b = want.to_numpy(float), pd.to_numeric(have).to_numpy(float)
            close = np.isclose(b, a, rtol=RTOL, atol=ATOL, equal_nan=True)
            if not close.all():
                row = int(np.flatnonzero(~close)[0])
                pytest.fail(f"{label}: {column} at {want_keys[row]} is {b[row]!r}, DuckDB says {a[row]!r}")
        else:
            assert _plain(have) == _plain(want), f"{label}: {column} differs"


# -- the tests --------------------------------------------------------------------------------


@pytest.mark.parametrize("engine", [pytest.param("postgres", marks=pytest.mark.postgres), "spark"])
@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_engine_agrees_with_duckdb(request: pytest.FixtureRequest, case: Case, engine: str) -> None:
    outcomes: dict[str, Outcome] = request.getfixturevalue(f"on_{engine}")  # skips without it
    reference: dict[str, Outcome] = request.getfixturevalue("reference")
    expected, got = reference[case.name], outcomes[case.name]
    if isinstance(expected, BaseException):
        raise expected
    if isinstance(got, BaseException):
        raise got
    assert_same(expected, got, case.keys, f"{case.name} on {engine}")


def test_spark_tables_in_a_database_named_database_dot_table(
    spark_session: Any, duck: Store, on_spark: dict[str, Outcome], tmp_path: Path
) -> None:
    """As a user's own tables are: "sales.orders". Ibis looks them up by switching the session's
    database, so the lookups run on two threads here too, as a web server would."""
    from cxloop.metrics.spark import export_parquet, register_parquet

    database = f"cx_test_{uuid.uuid4().hex[:12]}"
    names = register_parquet(spark_session, export_parquet(duck, tmp_path), database=database)
    assert names["order_lines"] == f"{database}.order_lines"
    chosen = [c for c in CASES if c.name.endswith("[month,change]")][::6]
    try:
        outcomes = _run_on_threads(Source.from_spark(spark_session, names), chosen)
    finally:
        spark_session.sql(f"DROP DATABASE `{database}` CASCADE")

    assert len(chosen) >= 5
    for case in chosen:
        got, expected = outcomes[case.name], on_spark[case.name]
        if isinstance(got, BaseException):
            raise got
        assert isinstance(expected, pd.DataFrame)
        assert_same(expected, got, case.keys, f"{case.name} on Spark tables in a database")


def test_a_table_in_another_schema_is_named_schema_dot_table(duck: Store) -> None:
    with store_source(duck) as source:
        elsewhere = Source(source.backend, "duckdb", {"orders": "main.orders"})
        assert elsewhere.table("orders").count().to_pyarrow().as_py() == duck_rows(duck, "orders")


def _documented_columns() -> dict[str, list[str]]:
    guide = (Path(__file__).resolve().parents[1] / "docs" / "metrics.md").read_text()
    section = guide.split("<!-- engine-columns")[1].split("<!-- /engine-columns -->")[0]
    rows = re.findall(r"^\| `(\w+)` \| (.+) \|$", section, flags=re.MULTILINE)
    return {table: re.findall(r"`(\w+)`", columns) for table, columns in rows}


def _independent_dimensions(kpi: Kpi) -> list[str]:
    """The KPI's dimensions, one per column (``channel`` and ``ticket_channel`` are one)."""
    fact = FACTS[kpi.fact]
    on_customer = (
        {**CUSTOMER_DIMENSIONS, **fact.dimensions} if fact.name == "customers" else CUSTOMER_DIMENSIONS
    )
    seen, chosen = set(), []
    for dim in kpi.dimensions:
        if dim in fact.dimensions and fact.name != "customers":
            column = ("fact", fact.dimensions[dim])
        else:
            column = ("customer", on_customer.get(dim, dim))  # cohort: from first purchases
        if column not in seen:
            seen.add(column)
            chosen.append(dim)
    return chosen


def test_the_columns_the_engines_guide_lists_are_all_the_metrics_read(duck: Store) -> None:
    """Every KPI with every breakdown and filter, the cohort matrix and RFM build on tables that
    hold only the columns docs/metrics.md ("Engines") tells Spark users to provide."""
    documented = _documented_columns()
    columns = {table.name: {c.name for c in table.columns} for table in schema.metadata.tables.values()}
    assert set(documented) <= set(TABLES) and len(documented) >= 8
    for table, names in documented.items():
        assert set(names) <= columns[table], f"{table}: the guide lists columns the store does not have"

    with store_source(duck) as source:
        for table, names in documented.items():
            source.backend.raw_sql(
                f"CREATE OR REPLACE TEMP VIEW docs_{table} AS SELECT {', '.join(names)} FROM {table}"
            )
        only = Source(source.backend, "duckdb", {t: f"docs_{t}" for t in documented})
        for kpi in kpis():
            dims = _independent_dimensions(kpi)
            query = make_query(by=dims, where={d: "x" for d in dims}, start=START, as_of=AS_OF)
            kpi.build(Context(only, query, FACTS[kpi.fact]))  # a missing column raises here
        cohort_query(only, by=list(CUSTOMER_DIMENSIONS), where={"segment": "x"}, as_of=AS_OF)
        rfm_query(only, as_of=AS_OF)


def test_every_kpi_is_covered_with_a_breakdown() -> None:
    names = {c.name for c in CASES}
    for kpi in kpis():
        assert f"{kpi.id}[month,change]" in names
        assert f"{kpi.id}[by {BREAKDOWN[kpi.fact]}]" in names


@pytest.mark.parametrize("dialect", ["postgres", "pyspark"])
def test_every_kpi_compiles_for_every_dialect(duck: Store, dialect: str) -> None:
    """Compiling needs neither the server nor Java: a builder that uses an operation a dialect
    lacks fails here even where PostgreSQL or Spark cannot run."""
    if dialect == "pyspark":
        problem = _spark_problem()
        need(problem is None, problem or "")
        assert ibis.pyspark  # loading the backend registers the options its compiler reads
    with store_source(duck) as source:
        for kpi in kpis():
            query = make_query(by=[BREAKDOWN[kpi.fact]], start=START, as_of=AS_OF)
            expr = kpi.build(Context(source, query, FACTS[kpi.fact]))
            sql = str(ibis.to_sql(expr, dialect=dialect))
            assert sql.upper().startswith(("SELECT", "WITH")), f"{kpi.id} on {dialect}"


def test_exported_parquet_keeps_the_stored_types(duck: Store, tmp_path: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    from cxloop.metrics.spark import export_parquet

    paths = export_parquet(duck, tmp_path, ["order_lines", "orders"])

    lines, orders = pq.read_schema(paths["order_lines"]), pq.read_schema(paths["orders"])
    assert lines.field("amount").type == pa.decimal128(18, 4)
    assert orders.field("ordered_at").type == pa.timestamp("us")  # naive: UTC by convention
    assert pq.read_metadata(paths["orders"]).num_rows == duck_rows(duck, "orders") > 0


def duck_rows(store: Store, table: str) -> int:
    with store.duckdb_connection() as conn:
        row = conn.execute(f"SELECT count(*) FROM {table}").fetchone()
    assert row is not None
    return int(row[0])
