"""The same KPI code gives the same answers on DuckDB, PostgreSQL and Spark.

One seeded demo business is loaded into a DuckDB store, a PostgreSQL store and (as Parquet copies
of the DuckDB tables) a local Spark session. Every KPI in the registry — new ones are covered
automatically — is computed on each engine with a breakdown, and the results must have the same
rows and agree to 1e-9 relative (value, n and interval). Spark starts once per test session: it
takes seconds, and each Spark query costs about a second, so each KPI runs once per engine here;
the hand-computed tests cover the grains and options.
"""

from __future__ import annotations

import datetime as dt
import shutil
import uuid
from collections.abc import Iterator
from typing import Any

import pandas as pd
import pytest

from conftest import need
from cxloop import Store
from cxloop.demo_store import load_demo
from cxloop.metrics import Source, cohorts, compute, kpis, rfm, store_source
from cxloop.metrics.kpi import Kpi

# py4j (Spark's Python-Java bridge) leaves sockets for the garbage collector to close.
pytestmark = pytest.mark.filterwarnings(
    "ignore::ResourceWarning", "ignore::pytest.PytestUnraisableExceptionWarning"
)

AS_OF = dt.datetime(2026, 1, 1)
START = dt.datetime(2025, 1, 1)
CUSTOMERS, SEED = 300, 5

# One breakdown per fact, so every builder's grouping runs on every engine.
BREAKDOWN = {
    "purchases": "segment",
    "orders": "segment",
    "responses": "touchpoint",
    "invitations": "channel",
    "tickets": "channel",
    "reviews": "brand",
    "customers": "region",
    "subscriptions": "plan",
}
RESULT = ["value", "n", "ci_low", "ci_high"]


def _spark_problem() -> str | None:
    if shutil.which("java") is None:
        return "Java is not installed (Spark needs a JRE 17+)"
    try:
        import pyspark  # noqa: F401
    except ImportError:
        return "pyspark is not installed (pip install 'cxloop[spark]')"
    return None


@pytest.fixture(scope="module")
def duck(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Store]:
    store = Store.open(str(tmp_path_factory.mktemp("engines") / "demo.duckdb"))
    load_demo(store, customers=CUSTOMERS, seed=SEED, as_of=AS_OF.date())
    yield store
    store.close()


@pytest.fixture(scope="module")
def postgres(pg_url: str) -> Iterator[Store]:
    import psycopg

    schema = f"cx_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    store = Store.open(f"{pg_url}{'&' if '?' in pg_url else '?'}options=-csearch_path%3D{schema}")
    try:
        load_demo(store, customers=CUSTOMERS, seed=SEED, as_of=AS_OF.date())
        yield store
    finally:
        store.close()
        with psycopg.connect(pg_url, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA "{schema}" CASCADE')


@pytest.fixture(scope="session")
def spark_session() -> Iterator[Any]:
    problem = _spark_problem()
    need(problem is None, problem or "")
    from cxloop.metrics.spark import local_session

    session = local_session("cxloop-tests")
    yield session
    session.stop()


@pytest.fixture(scope="module")
def sources(
    duck: Store, postgres: Store, spark_session: Any, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, Source]]:
    from cxloop.metrics.spark import register_store_tables

    names = register_store_tables(spark_session, duck, tmp_path_factory.mktemp("parquet"))
    with store_source(duck) as on_duck, store_source(postgres) as on_pg:
        yield {"duckdb": on_duck, "postgres": on_pg, "spark": Source.from_spark(spark_session, names)}


def _ids() -> list[str]:
    return [k.id for k in kpis()]


def _assert_same(reference: pd.DataFrame, other: pd.DataFrame, keys: list[str], label: str) -> None:
    assert len(reference) > 0, f"{label}: the demo gives no rows, so the comparison proves nothing"
    left = reference.set_index(keys).sort_index()
    right = other.set_index(keys).sort_index()
    assert list(left.index) == list(right.index), f"{label}: different rows"
    for column in [c for c in RESULT if c in left.columns]:
        pd.testing.assert_series_equal(
            left[column].astype(float),
            right[column].astype(float),
            rtol=1e-9,
            atol=1e-9,
            obj=f"{label} {column}",
        )


@pytest.mark.postgres
@pytest.mark.parametrize("kpi_id", _ids())
def test_every_kpi_agrees_on_duckdb_postgres_and_spark(sources: dict[str, Source], kpi_id: str) -> None:
    kpi: Kpi = kpis().get(kpi_id)
    by = [BREAKDOWN[kpi.fact]]
    results = {
        engine: compute(source, kpi, by=by, start=START, as_of=AS_OF) for engine, source in sources.items()
    }

    for engine in ("postgres", "spark"):
        _assert_same(results["duckdb"], results[engine], ["period", *by], f"{kpi_id} on {engine}")


@pytest.mark.postgres
@pytest.mark.parametrize(
    "kpi_id", ["nps", "revenue", "retention_rate", "resolution_median", "share_of_voice"]
)
def test_change_tests_agree_across_engines(sources: dict[str, Source], kpi_id: str) -> None:
    results = {
        engine: compute(source, kpi_id, grain="quarter", start=START, as_of=AS_OF, change=True)
        for engine, source in sources.items()
    }

    for engine in ("postgres", "spark"):
        other = results[engine]
        _assert_same(results["duckdb"], other, ["period"], f"{kpi_id} change on {engine}")
        for column in ("previous", "change", "p_value"):
            pd.testing.assert_series_equal(
                results["duckdb"][column].astype(float), other[column].astype(float), rtol=1e-9, atol=1e-9
            )
        assert list(results["duckdb"]["significant"]) == list(other["significant"])


@pytest.mark.postgres
def test_cohorts_and_rfm_agree_across_engines(sources: dict[str, Source]) -> None:
    matrices = {e: cohorts(s, grain="quarter", as_of=AS_OF) for e, s in sources.items()}
    scores = {e: rfm(s, as_of=AS_OF) for e, s in sources.items()}

    for engine in ("postgres", "spark"):
        pd.testing.assert_frame_equal(
            matrices["duckdb"].reset_index(drop=True),
            matrices[engine].reset_index(drop=True),
            check_dtype=False,
        )
        pd.testing.assert_frame_equal(
            scores["duckdb"].sort_values("customer_id").reset_index(drop=True),
            scores[engine].sort_values("customer_id").reset_index(drop=True),
            check_dtype=False,
        )
