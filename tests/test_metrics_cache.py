"""The metrics cache answers what the metrics layer computes, until an import changes the data.

On a real store (DuckDB, and PostgreSQL where another process imports): a cached result equals an
uncached one; an import between two calls — in this process, with ``cxloop demo``, or with
``cxloop import`` from another process — changes the answer; concurrent identical questions cost
one computation; different parameters never share a result; the bounds hold.
"""

from __future__ import annotations

import datetime as dt
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from cxloop import ImportOptions, Store, import_file
from cxloop.config import load_settings
from cxloop.demo_store import load_demo
from cxloop.metrics import Options, cohorts, compute, rfm, rfm_segments, summary
from cxloop.metrics.cache import MetricsCache, store_fingerprint
from cxloop.web.storage import open_server_store
from test_cli import cxloop

FIXTURES = Path(__file__).parent / "fixtures" / "metrics"
AS_OF = dt.datetime(2024, 5, 1)
START = dt.datetime(2024, 1, 1)
APRIL_SALE = (
    "order_id,line_no,customer_id,ordered_at,channel,product_id,category,quantity,unit_price,amount\n"
)
APRIL_SALE += "O99,1,c5,2024-04-28 12:00:00,web,A,books,1,1000,1000\n"


def shop(store: Store, tmp_path: Path) -> Store:
    for entity, name in (("customers", "customers.csv"), ("order-lines", "order_lines.csv")):
        result = import_file(store, entity, FIXTURES / name, ImportOptions(rejects_dir=tmp_path / "rejects"))
        assert result.rejected == 0
    return store


def sell_in_april(store: Store, tmp_path: Path) -> None:
    path = tmp_path / "april.csv"
    path.write_text(APRIL_SALE)
    assert (
        import_file(store, "order-lines", path, ImportOptions(rejects_dir=tmp_path / "rejects")).loaded == 1
    )


def test_cached_results_equal_uncached_ones(store: Store, tmp_path: Path) -> None:
    shop(store, tmp_path)
    cache = MetricsCache(lambda: store_fingerprint(store))
    ids = ["revenue", "retention_rate", "active_customers", "aov"]

    for _ in range(2):  # computed, then kept
        pd.testing.assert_frame_equal(
            cache.summary(store, as_of=AS_OF, kpi_ids=ids), summary(store, as_of=AS_OF, kpi_ids=ids)
        )
        pd.testing.assert_frame_equal(
            cache.compute(store, "net_revenue", by=["segment"], start=START, as_of=AS_OF, change=True),
            compute(store, "net_revenue", by=["segment"], start=START, as_of=AS_OF, change=True),
        )
        pd.testing.assert_frame_equal(cache.cohorts(store, as_of=AS_OF), cohorts(store, as_of=AS_OF))
        pd.testing.assert_frame_equal(cache.rfm(store, as_of=AS_OF), rfm(store, as_of=AS_OF))
        pd.testing.assert_frame_equal(
            cache.rfm_segments(store, as_of=AS_OF), rfm_segments(rfm(store, as_of=AS_OF))
        )
    assert cache.stats.computed == 5
    assert cache.stats.hits == 5 + 1  # the second round, and rfm_segments reading the kept rfm table


def test_an_import_between_two_calls_changes_the_answer(store: Store, tmp_path: Path) -> None:
    shop(store, tmp_path)
    cache = MetricsCache(lambda: store_fingerprint(store))
    before = cache.compute(store, "revenue", start=START, as_of=AS_OF)
    assert cache.compute(store, "revenue", start=START, as_of=AS_OF) is not before  # a copy, kept

    sell_in_april(store, tmp_path)
    after = cache.compute(store, "revenue", start=START, as_of=AS_OF)

    april = dt.date(2024, 4, 1)
    assert (
        after.set_index("period").loc[april, "value"] == before.set_index("period").loc[april, "value"] + 1000
    )
    pd.testing.assert_frame_equal(after, compute(store, "revenue", start=START, as_of=AS_OF))
    assert cache.stats.computed == 2 and len(cache) == 1  # the old fingerprint's result is gone


def test_the_demo_and_every_import_change_the_fingerprint(duck_store: Store, tmp_path: Path) -> None:
    seen = [store_fingerprint(duck_store)]
    load_demo(duck_store, customers=30, seed=1, as_of=dt.date(2024, 5, 1))  # `cxloop demo`
    seen.append(store_fingerprint(duck_store))
    shop(duck_store, tmp_path)
    seen.append(store_fingerprint(duck_store))
    # Even an import that changes nothing is recorded (and so recomputes: cheap, and safe).
    import_file(duck_store, "customers", FIXTURES / "customers.csv", ImportOptions(rejects_dir=tmp_path))
    seen.append(store_fingerprint(duck_store))
    assert len(set(seen)) == len(seen)
    # A dry run writes nothing, and changes nothing.
    import_file(
        duck_store, "customers", FIXTURES / "customers.csv", ImportOptions(rejects_dir=tmp_path, dry_run=True)
    )
    assert store_fingerprint(duck_store) == seen[-1]


@pytest.mark.postgres
def test_an_import_by_another_process_invalidates_on_postgresql(pg_schema_url: str, tmp_path: Path) -> None:
    """The server keeps its cache; `cxloop import` in another process writes the same database."""
    with Store.open(pg_schema_url) as server_store:
        shop(server_store, tmp_path)
        cache = MetricsCache(lambda: store_fingerprint(server_store))
        before = cache.summary(server_store, as_of=AS_OF, kpi_ids=["revenue"])

        path = tmp_path / "april.csv"
        path.write_text(APRIL_SALE)
        result = cxloop("--db", pg_schema_url, "import", "order-lines", str(path), cwd=tmp_path)
        assert result.returncode == 0, result.stderr

        after = cache.summary(server_store, as_of=AS_OF, kpi_ids=["revenue"])
        assert after.loc[0, "value"] == before.loc[0, "value"] + 1000
        assert cache.stats.computed == 2


@pytest.fixture
def server_store(tmp_path: Path) -> Iterator[Store]:
    """A DuckDB store as the server opens it: safe for many threads (one connection each)."""
    url = str(tmp_path / "server.duckdb")
    opened = open_server_store(url, load_settings(url))
    try:
        yield opened
    finally:
        opened.close()


def test_concurrent_identical_questions_compute_once(server_store: Store, tmp_path: Path) -> None:
    duck_store = shop(server_store, tmp_path)
    cache = MetricsCache(lambda: store_fingerprint(duck_store))
    calls = 0
    started = threading.Event()

    def slow_summary() -> pd.DataFrame:
        nonlocal calls
        calls += 1
        started.set()
        time.sleep(0.3)  # long enough for every other thread to ask meanwhile
        return summary(duck_store, as_of=AS_OF)

    results: list[Any] = [None] * 20

    def ask(i: int) -> None:
        results[i] = cache.get(("summary", AS_OF), slow_summary)

    threads = [threading.Thread(target=ask, args=(i,)) for i in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    assert calls == 1
    assert cache.stats.computed == 1 and cache.stats.shared + cache.stats.hits == 19
    for frame in results[1:]:
        pd.testing.assert_frame_equal(frame, results[0])


def test_an_error_reaches_every_waiting_caller_and_is_not_kept(server_store: Store) -> None:
    cache = MetricsCache(lambda: store_fingerprint(server_store))
    errors: list[BaseException] = []

    def failing() -> pd.DataFrame:
        time.sleep(0.2)
        raise ValueError("no")

    def ask() -> None:
        try:
            cache.get("k", failing)
        except ValueError as exc:
            errors.append(exc)

    threads = [threading.Thread(target=ask) for _ in range(5)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(errors) == 5 and cache.stats.computed == 1 and len(cache) == 0
    assert cache.get("k", lambda: 1) == 1


def test_mixed_parameters_do_not_collide(duck_store: Store, tmp_path: Path) -> None:
    shop(duck_store, tmp_path)
    cache = MetricsCache(lambda: store_fingerprint(duck_store))
    variants: list[dict[str, Any]] = [
        {},
        {"grain": "quarter"},
        {"by": ["segment"]},
        {"by": ["region"]},
        {"where": {"segment": "smb"}},
        {"where": {"segment": ["smb", "enterprise"]}},
        {"start": START},
        {"end": dt.datetime(2024, 3, 1)},
        {"change": True},
        {"options": Options(active_days=30)},
        {"as_of": dt.datetime(2024, 4, 1)},
    ]
    for kpi_id in ("active_customers", "retention_rate"):
        for variant in variants:
            query = {"as_of": AS_OF, **variant}
            got = cache.compute(duck_store, kpi_id, **query)
            pd.testing.assert_frame_equal(
                got, compute(duck_store, kpi_id, **query), obj=f"{kpi_id} {variant}"
            )
    assert cache.stats.computed == 2 * len(variants) and cache.stats.hits == 0
    # Summaries of different grains, KPI lists and windows are different questions too.
    month = cache.summary(duck_store, as_of=AS_OF, kpi_ids=["active_customers"])
    window = cache.summary(
        duck_store, as_of=AS_OF, kpi_ids=["active_customers"], options=Options(active_days=30)
    )
    quarter = cache.summary(duck_store, as_of=AS_OF, kpi_ids=["active_customers"], grain="quarter")
    assert len({month.loc[0, "value"], window.loc[0, "value"], quarter.loc[0, "value"]}) == 3


def test_now_is_reused_for_a_while_and_exact_moments_are_kept_apart(
    duck_store: Store, tmp_path: Path
) -> None:
    shop(duck_store, tmp_path)
    seconds = [0.0]
    cache = MetricsCache(lambda: store_fingerprint(duck_store), now_seconds=60, timer=lambda: seconds[0])
    clock = iter([AS_OF, AS_OF + dt.timedelta(days=40)])

    first = cache.compute(duck_store, "revenue", start=START, clock=lambda: next(clock))
    seconds[0] = 30.0
    again = cache.compute(duck_store, "revenue", start=START, clock=lambda: next(clock))  # kept
    pd.testing.assert_frame_equal(first, again)
    seconds[0] = 90.0
    later = cache.compute(duck_store, "revenue", start=START, clock=lambda: next(clock))  # anew
    assert len(later) == len(first) + 1  # as of 40 days later: May begins
    assert cache.stats.computed == 2


def test_the_cache_is_bounded_and_can_be_turned_off(duck_store: Store, tmp_path: Path) -> None:
    shop(duck_store, tmp_path)
    cache = MetricsCache(lambda: store_fingerprint(duck_store), max_entries=3)
    for month in range(1, 6):
        cache.compute(duck_store, "revenue", as_of=dt.datetime(2024, month, 2))
    assert len(cache) == 3
    cache.compute(duck_store, "revenue", as_of=dt.datetime(2024, 5, 2))  # the newest are kept
    assert cache.stats.hits == 1

    rows = MetricsCache(lambda: store_fingerprint(duck_store), max_rows=8)
    rows.rfm(duck_store, as_of=AS_OF)  # 7 customers
    rows.compute(duck_store, "revenue", start=START, as_of=AS_OF)  # 4 months: 11 rows, rfm goes
    assert len(rows) == 1

    off = MetricsCache(lambda: store_fingerprint(duck_store), max_entries=0)
    for _ in range(2):
        off.summary(duck_store, as_of=AS_OF, kpi_ids=["revenue"])
    assert off.stats.computed == 2 and len(off) == 0


def test_an_expired_now_answer_is_served_while_one_thread_recomputes_it(
    duck_store: Store, tmp_path: Path
) -> None:
    shop(duck_store, tmp_path)
    seconds = [0.0]
    cache = MetricsCache(
        lambda: store_fingerprint(duck_store), now_seconds=60, stale_seconds=600, timer=lambda: seconds[0]
    )
    moments = iter([AS_OF, AS_OF + dt.timedelta(days=40)])

    def clock() -> dt.datetime:
        return next(moments)

    first = cache.compute(duck_store, "revenue", start=START, clock=clock)
    seconds[0] = 90.0
    stale = cache.compute(duck_store, "revenue", start=START, clock=clock)  # at once, the old answer
    pd.testing.assert_frame_equal(first, stale)
    assert cache.stats.stale == 1

    for _ in range(200):  # the background thread stores the new answer
        fresh = cache.compute(duck_store, "revenue", start=START, clock=clock)
        if len(fresh) == len(first) + 1:
            break
        time.sleep(0.05)
    assert len(fresh) == len(first) + 1 and cache.stats.computed == 2

    seconds[0] = 90.0 + 60 + 600 + 1  # beyond the stale window: computed while the caller waits
    with pytest.raises(StopIteration):  # the clock has no third moment: it is called right here
        cache.compute(duck_store, "revenue", start=START, clock=clock)
