"""Benchmark: headline summary + monthly cohort matrix + RFM (issue 3, "Metrics layer").

Run from the project root (the venv active)::

    python -m benchmarks.metrics_speed                        # 1M customers, DuckDB and PostgreSQL
    python -m benchmarks.metrics_speed --customers 20000      # smoke run, under a minute
    python -m benchmarks.metrics_speed --workdir /tmp/cxm     # build the data once there, reuse it

What it does:

1. **Data**, built once per work dir (``--workdir``; reused while its ``manifest.json`` matches):
   the seeded demo business (:func:`cxloop.demo.generate`, ~10 order lines per customer), with
   the survey answers and tickets topped up to 1 answer and 0.5 tickets per customer (the issue's
   1M / 500k at 1M customers; the demo makes ~0.55 and ~0.31) by copying randomly chosen demo
   rows under new ids. Every table is written to Parquet and imported with cxloop's
   ``import_file`` into a DuckDB store file and into a PostgreSQL schema (``VACUUM ANALYZE``-d).
2. **Figures**, as of the first moment of the month after the data (default 2026-01-01):
   the headline summary (15 KPIs for the last complete month, each against the month before),
   the monthly cohort matrix and the RFM table with its segment summary.
3. **Cases**, each in its own child process so that its peak RSS (``VmHWM``) is its own:
   ``cxloop-duckdb`` (``summary``, ``cohorts``, ``rfm`` + ``rfm_segments`` on the store),
   ``pandas`` (the tables' needed columns read with DuckDB ``.df()`` -- the read counts in its
   time -- then groupby/merge), ``sql-duckdb`` (hand-written SQL on the store file),
   ``cxloop-postgres`` and ``sql-postgres`` (the same SQL through psycopg).
4. **Agreement**: every case's figures are compared with the hand-written DuckDB SQL's (to 1e-6
   relative) before any time is reported; a disagreement fails the run.
5. A table per case (seconds, peak RSS, ratios), JSON in ``benchmarks/results/``; exit status 1
   when a target is missed: cxloop >= 10x faster than pandas, <= 1.5x the hand-written SQL,
   peak RSS < 2048 MB.
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import json
import os
import pickle
import platform
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_PG = "postgresql://postgres@127.0.0.1:5432/test"
DEFAULT_AS_OF = dt.date(2026, 1, 1)
TARGET_PANDAS_SPEEDUP = 10.0
TARGET_SQL_RATIO = 1.5
TARGET_RSS_MB = 2048.0
ANSWERS_PER_CUSTOMER = 1.0
TICKETS_PER_CUSTOMER = 0.5
RTOL = 1e-6
ATOL = 1e-9
ACTIVE_DAYS = 90
CASES = ("sql-duckdb", "cxloop-duckdb", "pandas", "sql-postgres", "cxloop-postgres")
PARTS = ("summary", "cohorts", "rfm")

HEADLINE = (
    "nps",
    "csat",
    "ces",
    "revenue",
    "net_revenue",
    "aov",
    "active_customers",
    "new_customers",
    "retention_rate",
    "churn_rate",
    "repeat_purchase_rate",
    "revenue_per_customer",
    "complaints_per_1000_orders",
    "resolution_median",
    "average_rating",
)
# The RFM grid, written out here independently of cxloop: GRID[r - 1][fm - 1] (docs/metrics.md).
SEGMENTS = (
    "Champions",
    "Loyal",
    "Potential loyalists",
    "New",
    "Promising",
    "Need attention",
    "About to sleep",
    "At risk",
    "Cannot lose them",
    "Hibernating",
    "Lost",
)
GRID = (
    ("Lost", "Lost", "At risk", "At risk", "Cannot lose them"),  # R 1, FM 1..5
    ("Lost", "Hibernating", "At risk", "At risk", "At risk"),  # R 2
    ("About to sleep", "About to sleep", "Need attention", "Loyal", "Loyal"),  # R 3
    ("Promising", "Potential loyalists", "Potential loyalists", "Loyal", "Loyal"),  # R 4
    ("New", "Potential loyalists", "Potential loyalists", "Loyal", "Champions"),  # R 5
)
COHORT_COLUMNS = [
    "cohort",
    "age",
    "period",
    "cohort_size",
    "customers",
    "retention",
    "revenue",
    "revenue_retention",
    "complete",
]
RFM_COLUMNS = [
    "customer_id",
    "recency_days",
    "frequency",
    "monetary",
    "r_score",
    "f_score",
    "m_score",
    "fm_score",
    "segment",
]
SEGMENT_COLUMNS = [
    "segment",
    "customers",
    "share",
    "revenue",
    "revenue_share",
    "avg_recency_days",
    "avg_frequency",
    "avg_monetary",
]


# ====================================================================== shared helpers


def peak_rss_mb() -> float:
    """This process's own peak resident set size (``VmHWM``), in MiB.

    Not ``getrusage().ru_maxrss``: on Linux a child started by fork + exec inherits the parent's
    high-water mark there, so it would report the benchmark parent's memory.
    """
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024.0
    return float("nan")


def log(msg: str) -> None:
    print(f"[{dt.datetime.now():%H:%M:%S}] {msg}", file=sys.stderr, flush=True)


class Period:
    """The months of the run: the headline compares [cur, end) with [prev, cur)."""

    def __init__(self, as_of: dt.datetime) -> None:
        self.as_of = as_of
        end = dt.datetime(as_of.year, as_of.month, 1)
        cur = _add_months(end, -1)
        self.end, self.cur, self.prev = end, cur, _add_months(cur, -1)
        window = dt.timedelta(days=ACTIVE_DAYS)
        # Active at a moment t: a purchase in [t - 90 days, t).
        self.windows = {name: (t - window, t) for name, t in (("p", self.prev), ("c", self.cur), ("e", end))}


def _add_months(t: dt.datetime, months: int) -> dt.datetime:
    m = t.month - 1 + months
    return t.replace(year=t.year + m // 12, month=m % 12 + 1)


def pg_url(base: str, schema: str) -> str:
    sep = "&" if "?" in base else "?"
    return f"{base}{sep}options=-csearch_path%3D{schema}"


def src_digest() -> str:
    digest = hashlib.sha256()
    for path in sorted((ROOT / "src" / "cxloop").rglob("*.py")):
        digest.update(str(path.relative_to(ROOT)).encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


# ====================================================================== data (child processes)


def child_generate(args: argparse.Namespace) -> dict[str, Any]:
    """Generate the demo business, top up answers and tickets, write one Parquet file per table
    and source into ``<workdir>/data``."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    from cxloop import demo

    t0 = time.perf_counter()
    tables = demo.generate(args.customers, seed=args.seed, as_of=dt.date.fromisoformat(args.as_of))
    rng = np.random.default_rng([args.seed, 3])
    demo_rows = {k: v.num_rows for k, v in tables.items()}

    def top_up(table: pa.Table, target: int, id_column: str, prefix: str) -> pa.Table:
        extra = target - table.num_rows
        if extra <= 0 or table.num_rows == 0:
            return table
        copies = table.take(pa.array(rng.integers(0, table.num_rows, extra)))
        ids = pc.binary_join_element_wise(
            prefix, pc.utf8_lpad(pa.array(np.arange(1, extra + 1)).cast(pa.string()), 9, "0"), ""
        )
        column = copies.schema.get_field_index(id_column)
        return pa.concat_tables([table, copies.set_column(column, id_column, ids)])

    tables["survey_responses"] = top_up(
        tables["survey_responses"], round(ANSWERS_PER_CUSTOMER * args.customers), "response_id", "RX"
    )
    tables["tickets"] = top_up(
        tables["tickets"], round(TICKETS_PER_CUSTOMER * args.customers), "ticket_id", "TX"
    )
    data = Path(args.workdir) / "data"
    data.mkdir(parents=True, exist_ok=True)
    files = []
    for name, table in tables.items():
        for source in sorted(pc.unique(table["source"]).to_pylist()):
            part = table.filter(pc.equal(table["source"], source)).drop_columns(["source"])
            path = data / f"{name}-{source}.parquet"
            pq.write_table(part, path)
            files.append({"table": name, "source": source, "path": str(path), "rows": part.num_rows})
    return {
        "seconds": time.perf_counter() - t0,
        "peak_rss_mb": peak_rss_mb(),
        "demo_rows": demo_rows,
        "rows": {k: v.num_rows for k, v in tables.items()},
        "files": files,
    }


def child_load(args: argparse.Namespace) -> dict[str, Any]:
    """Import the Parquet files into the store (a DuckDB file or a PostgreSQL schema)."""
    from sqlalchemy import text

    from cxloop.demo_store import LOAD_ORDER
    from cxloop.ingest.pipeline import ImportOptions, import_file
    from cxloop.store.store import Store

    files = json.loads((Path(args.workdir) / "files.json").read_text())
    t0 = time.perf_counter()
    store = Store.open(args.store)
    per_table: dict[str, float] = {}
    for table_name, entity in LOAD_ORDER:
        for f in (f for f in files if f["table"] == table_name):
            t1 = time.perf_counter()
            result = import_file(
                store,
                entity,
                Path(f["path"]),
                ImportOptions(source=f["source"], rejects_dir=Path(args.workdir) / "rejects"),
            )
            if result.rejected:
                raise SystemExit(f"{f['path']}: {result.rejected} rows rejected ({result.reject_file})")
            per_table[table_name] = per_table.get(table_name, 0.0) + time.perf_counter() - t1
            log(f"  {table_name}: {result.loaded:,} loaded in {time.perf_counter() - t1:.1f}s")
    counts = {}
    with store.engine.connect() as conn:
        for table_name, _ in LOAD_ORDER:
            counts[table_name] = conn.execute(text(f"SELECT count(*) FROM {table_name}")).scalar_one()
    if store.dialect == "postgresql":
        t1 = time.perf_counter()
        with store.engine.connect() as conn:
            conn = conn.execution_options(isolation_level="AUTOCOMMIT")
            for table_name, _ in LOAD_ORDER:
                conn.execute(text(f"VACUUM ANALYZE {table_name}"))
        per_table["vacuum_analyze"] = time.perf_counter() - t1
    store.close()
    return {
        "seconds": time.perf_counter() - t0,
        "peak_rss_mb": peak_rss_mb(),
        "per_table": per_table,
        "counts": counts,
    }


# ====================================================================== the measured cases


def child_case(args: argparse.Namespace) -> dict[str, Any]:
    """Run one case; save its figures (pickled DataFrames) to ``args.result``; return timings."""
    as_of = dt.datetime.fromisoformat(args.as_of)
    parts = [p for p in args.parts.split(",") if p]
    runner: Callable[..., tuple[dict[str, Any], dict[str, Any]]] = {
        "cxloop": run_cxloop,
        "pandas": run_pandas,
        "sql": run_sql,
    }[args.case.split("-")[0]]
    figures, timing = runner(args, Period(as_of), parts)
    timing["peak_rss_mb"] = peak_rss_mb()
    with open(args.result, "wb") as fh:
        pickle.dump({k: normalise(k, v) for k, v in figures.items()}, fh)
    return timing


# ---------------------------------------------------------------------- cxloop


def run_cxloop(args: argparse.Namespace, period: Period, parts: list[str]) -> tuple[dict, dict]:
    import importlib

    from cxloop.metrics import api
    from cxloop.store.store import Store

    compute_module = importlib.import_module("cxloop.metrics.compute")
    # Time every database round trip, per KPI: wrap the functions the metrics modules call.
    db = {"seconds": 0.0, "queries": 0}
    per_kpi: list[dict[str, Any]] = []

    def timed_fetch(original: Callable[[Any], Any]) -> Callable[[Any], Any]:
        def fetch(expr: Any) -> Any:
            t0 = time.perf_counter()
            try:
                return original(expr)
            finally:
                db["seconds"] += time.perf_counter() - t0
                db["queries"] += 1

        return fetch

    compute_module.to_pandas = timed_fetch(compute_module.to_pandas)
    summary_fn = getattr(api, "summary", None)
    if summary_fn is not None:
        summary_module = importlib.import_module("cxloop.metrics.summary")

        # The summary computes its KPIs together (compute_queries); older code, one by one.
        name = "compute_queries" if hasattr(summary_module, "compute_queries") else "compute_query"
        original_cq = getattr(summary_module, name)

        def timed_cq(source: Any, kpis: Any, query: Any, *, change: bool = False) -> Any:
            t0, db0, q0 = time.perf_counter(), db["seconds"], db["queries"]
            try:
                return original_cq(source, kpis, query, change=change)
            finally:
                ids = [k.id for k in kpis] if name == "compute_queries" else [kpis.id]
                per_kpi.append(
                    {
                        "kpi": " + ".join(ids),
                        "seconds": time.perf_counter() - t0,
                        "db_seconds": db["seconds"] - db0,
                        "queries": db["queries"] - q0,
                    }
                )

        setattr(summary_module, name, timed_cq)

    t0 = time.perf_counter()
    store = Store.open(args.store)
    timing: dict[str, Any] = {
        "open_seconds": time.perf_counter() - t0,
        "parts": {},
        "src_sha256": src_digest(),
    }
    figures: dict[str, Any] = {}
    start = time.perf_counter()
    if "summary" in parts:
        t0 = time.perf_counter()
        if summary_fn is not None:
            frame = summary_fn(store, as_of=period.as_of, kpi_ids=HEADLINE)
            timing["summary_via"] = "cxloop.metrics.api.summary"
        else:  # before the summary function landed: the same figures KPI by KPI
            rows = []
            for kpi in HEADLINE:
                t1, db0 = time.perf_counter(), db["seconds"]
                r = api.compute(
                    store,
                    kpi,
                    grain="month",
                    start=period.cur,
                    end=period.end,
                    as_of=period.as_of,
                    change=True,
                )
                rows.append({"kpi": kpi, **r.iloc[-1].to_dict()})
                per_kpi.append(
                    {"kpi": kpi, "seconds": time.perf_counter() - t1, "db_seconds": db["seconds"] - db0}
                )
            import pandas as pd

            frame = pd.DataFrame(rows)
            timing["summary_via"] = "cxloop.metrics.compute loop"
        figures["summary"] = frame[["kpi", "value", "previous", "n"]]
        timing["parts"]["summary"] = time.perf_counter() - t0
        timing["per_kpi"] = per_kpi
    if "cohorts" in parts:
        cohorts_module = importlib.import_module("cxloop.metrics.cohorts")

        t0, db0 = time.perf_counter(), db["seconds"]
        cohorts_module.to_pandas = timed_fetch(cohorts_module.to_pandas)
        figures["cohorts"] = cohorts_module.cohorts(store, grain="month", as_of=period.as_of)
        timing["parts"]["cohorts"] = time.perf_counter() - t0
        timing["cohorts_db_seconds"] = db["seconds"] - db0
    if "rfm" in parts:
        rfm_module = importlib.import_module("cxloop.metrics.rfm")

        t0, db0 = time.perf_counter(), db["seconds"]
        rfm_module.to_pandas = timed_fetch(rfm_module.to_pandas)
        table = rfm_module.rfm(store, as_of=period.as_of)
        figures["rfm"] = table
        figures["segments"] = rfm_module.rfm_segments(table)
        timing["parts"]["rfm"] = time.perf_counter() - t0
        timing["rfm_db_seconds"] = db["seconds"] - db0
    timing["seconds"] = time.perf_counter() - start
    timing["db_seconds"] = db["seconds"]
    timing["db_queries"] = db["queries"]
    store.close()
    return figures, timing


# ---------------------------------------------------------------------- pandas


def run_pandas(args: argparse.Namespace, period: Period, parts: list[str]) -> tuple[dict, dict]:
    """A straightforward pandas implementation: read the needed columns, merge, groupby."""
    import duckdb
    import numpy as np
    import pandas as pd

    timing: dict[str, Any] = {"parts": {}}
    figures: dict[str, Any] = {}
    start = time.perf_counter()
    con = duckdb.connect(args.store, read_only=True)
    lines = con.sql("SELECT order_id, quantity, amount FROM order_lines").df()
    orders = con.sql("SELECT order_id, customer_id, ordered_at FROM orders").df()
    answers = tickets = reviews = None
    if "summary" in parts:
        answers = con.sql("SELECT kind, scale_min, scale_max, score, responded_at FROM survey_responses").df()
        tickets = con.sql("SELECT opened_at, resolved_at, is_complaint FROM tickets").df()
        reviews = con.sql("SELECT rating, posted_at, is_competitor FROM reviews").df()
    con.close()
    timing["read_seconds"] = time.perf_counter() - start

    t0 = time.perf_counter()
    pl = lines.merge(orders, on="order_id", how="inner")
    pl = pl[pl["ordered_at"] < period.as_of]
    del lines
    timing["join_seconds"] = time.perf_counter() - t0

    as_of = pd.Timestamp(period.as_of)
    if "summary" in parts:
        t0 = time.perf_counter()
        figures["summary"] = _pandas_summary(pl, answers, tickets, reviews, period)
        timing["parts"]["summary"] = time.perf_counter() - t0
    if "cohorts" in parts:
        t0 = time.perf_counter()
        c = pl[pl["customer_id"].notna()]
        firsts = c[c["quantity"] > 0].groupby("customer_id")["ordered_at"].min().dt.to_period("M")
        c = c.join(firsts.rename("cohort"), on="customer_id", how="inner")
        c["period"] = c["ordered_at"].dt.to_period("M")
        c = c[c["period"] >= c["cohort"]]
        revenue = c.groupby(["cohort", "period"])["amount"].sum()
        buyers = c[c["quantity"] > 0].groupby(["cohort", "period"])["customer_id"].nunique()
        cells = pd.DataFrame({"revenue": revenue, "customers": buyers}).fillna(0).reset_index()
        last = (as_of - pd.Timedelta(microseconds=1)).to_period("M")
        rows = []
        for cohort, group in cells.groupby("cohort"):
            by_period = group.set_index("period")
            size = by_period.loc[cohort, "customers"]
            revenue_0 = by_period.loc[cohort, "revenue"]
            for age in range((last - cohort).n + 1):
                p = cohort + age
                customers = by_period["customers"].get(p, 0)
                revenue = by_period["revenue"].get(p, 0.0)
                rows.append(
                    {
                        "cohort": cohort.start_time,
                        "age": age,
                        "period": p.start_time,
                        "cohort_size": size,
                        "customers": customers,
                        "retention": 100.0 * customers / size,
                        "revenue": revenue,
                        "revenue_retention": 100.0 * revenue / revenue_0 if revenue_0 > 0 else np.nan,
                        "complete": (p + 1).start_time <= as_of,
                    }
                )
        figures["cohorts"] = pd.DataFrame(rows)
        timing["parts"]["cohorts"] = time.perf_counter() - t0
    if "rfm" in parts:
        t0 = time.perf_counter()
        c = pl[pl["customer_id"].notna()]
        buys = c[c["quantity"] > 0]
        per = buys.groupby("customer_id").agg(last=("ordered_at", "max"), frequency=("order_id", "nunique"))
        per = per.join(c.groupby("customer_id")["amount"].sum().rename("monetary"), how="left")
        per = per.reset_index()
        n = len(per)
        per["recency_days"] = (as_of - per["last"]) // pd.Timedelta(days=1)
        per["monetary"] = per["monetary"].round(4)
        # score = 1 + floor(5 * w / n), w = customers with a strictly worse value
        per["r_score"] = 1 + (5 * (per["recency_days"].rank(method="min", ascending=False) - 1)) // n
        per["f_score"] = 1 + (5 * (per["frequency"].rank(method="min") - 1)) // n
        per["m_score"] = 1 + (5 * (per["monetary"].rank(method="min") - 1)) // n
        per["fm_score"] = (per["f_score"] + per["m_score"] + 1) // 2
        grid = {(r + 1, f + 1): GRID[r][f] for r in range(5) for f in range(5)}
        per["segment"] = [grid[k] for k in zip(per["r_score"], per["fm_score"], strict=True)]
        table = per.sort_values("customer_id")[RFM_COLUMNS].reset_index(drop=True)
        figures["rfm"] = table
        g = table.groupby("segment")
        seg = pd.DataFrame(
            {
                "customers": g.size(),
                "revenue": g["monetary"].sum(),
                "avg_recency_days": g["recency_days"].mean(),
                "avg_frequency": g["frequency"].mean(),
                "avg_monetary": g["monetary"].mean(),
            }
        ).reindex(list(SEGMENTS))
        seg["customers"] = seg["customers"].fillna(0)
        seg["revenue"] = seg["revenue"].fillna(0.0)
        seg["share"] = 100.0 * seg["customers"] / seg["customers"].sum()
        total = seg["revenue"].sum()
        seg["revenue_share"] = 100.0 * seg["revenue"] / total if total > 0 else np.nan
        figures["segments"] = seg.rename_axis("segment").reset_index()[SEGMENT_COLUMNS]
        timing["parts"]["rfm"] = time.perf_counter() - t0
    timing["seconds"] = time.perf_counter() - start
    return figures, timing


def _pandas_summary(pl: Any, answers: Any, tickets: Any, reviews: Any, period: Period) -> Any:
    import numpy as np
    import pandas as pd

    def label(ts: Any) -> Any:
        return np.where(ts >= period.cur, "cur", "prev")

    def in_range(ts: Any) -> Any:
        return (ts >= period.prev) & (ts < period.end)

    out: dict[str, dict[str, float]] = {k: {} for k in HEADLINE}

    def put(kpi: str, values: pd.Series, n: pd.Series) -> None:
        for side in ("cur", "prev"):
            out[kpi][side] = float(values.get(side, np.nan))
            out[kpi][f"{side}_n"] = float(n.get(side, 0))

    two = pl[in_range(pl["ordered_at"])].copy()
    two["p"] = label(two["ordered_at"])
    buy = two[two["quantity"] > 0]
    put("revenue", buy.groupby("p")["amount"].sum(), buy.groupby("p").size())
    put("net_revenue", two.groupby("p")["amount"].sum(), two.groupby("p").size())
    per_order = buy.groupby(["p", "order_id"])["amount"].sum().reset_index()
    put("aov", per_order.groupby("p")["amount"].mean(), per_order.groupby("p").size())
    c = two[two["customer_id"].notna()]
    net = c.groupby(["p", "customer_id"])["amount"].sum()
    po = c[c["quantity"] > 0].groupby(["p", "customer_id"])["order_id"].nunique()
    per_c = pd.DataFrame({"net": net, "po": po}).fillna({"po": 0}).reset_index()
    buyers = per_c[per_c["po"] > 0].groupby("p").size()
    put("revenue_per_customer", per_c.groupby("p")["net"].sum() / buyers, buyers)
    put("repeat_purchase_rate", 100.0 * per_c[per_c["po"] >= 2].groupby("p").size() / buyers, buyers)

    # Customer states: active at t = a purchase in [t - 90 days, t); new = first purchase ever.
    b = pl[(pl["quantity"] > 0) & pl["customer_id"].notna()][["customer_id", "ordered_at"]]
    first = b.groupby("customer_id")["ordered_at"].min()

    def active(name: str) -> Any:
        lo, hi = period.windows[name]
        return pd.Index(b.loc[(b["ordered_at"] >= lo) & (b["ordered_at"] < hi), "customer_id"].unique())

    act = {k: active(k) for k in ("p", "c", "e")}
    states = {}
    for side, (s_key, e_key, lo, hi) in {
        "prev": ("p", "c", period.prev, period.cur),
        "cur": ("c", "e", period.cur, period.end),
    }.items():
        s, e = act[s_key], act[e_key]
        new = int(((first >= lo) & (first < hi)).sum())
        lost = len(s.difference(e))
        states[side] = (len(s), len(e), new, lost)
    for kpi, f in {
        "active_customers": lambda s, e, n, lo: (e, e),
        "new_customers": lambda s, e, n, lo: (n, n),
        "retention_rate": lambda s, e, n, lo: (100.0 * (e - n) / s, s),
        "churn_rate": lambda s, e, n, lo: (100.0 * lo / s, s),
    }.items():
        values = {side: f(*states[side]) for side in ("cur", "prev")}
        put(
            kpi,
            pd.Series({k: v[0] for k, v in values.items()}),
            pd.Series({k: v[1] for k, v in values.items()}),
        )

    a = answers[in_range(answers["responded_at"]) & answers["score"].notna()].copy()
    a["p"] = label(a["responded_at"])
    a["score"] = a["score"].astype(float)
    nps = a[(a["kind"] == "nps") & (a["scale_min"] == 0) & (a["scale_max"] == 10)]
    g = nps.groupby("p")
    put(
        "nps",
        100.0
        * ((nps["score"] >= 9).groupby(nps["p"]).sum() - (nps["score"] <= 6).groupby(nps["p"]).sum())
        / g.size(),
        g.size(),
    )
    cs = a[a["kind"] == "csat"]
    points = cs["scale_max"] - cs["scale_min"] + 1
    satisfied = np.where(points >= 5, cs["score"] >= cs["scale_max"] - 1, cs["score"] >= cs["scale_max"])
    put("csat", 100.0 * pd.Series(satisfied, index=cs.index).groupby(cs["p"]).mean(), cs.groupby("p").size())
    ce = a[(a["kind"] == "ces") & (a["scale_max"] > a["scale_min"])]
    rescaled = 1 + 6 * (ce["score"] - ce["scale_min"]) / (ce["scale_max"] - ce["scale_min"])
    put("ces", rescaled.groupby(ce["p"]).mean(), ce.groupby("p").size())

    t = tickets[in_range(tickets["opened_at"])].copy()
    t["p"] = label(t["opened_at"])
    complaints = t["is_complaint"].fillna(False).astype(bool).groupby(t["p"]).sum()
    n_orders = per_order.groupby("p").size()  # purchase orders (a line with quantity > 0)
    put("complaints_per_1000_orders", 1000.0 * complaints / n_orders, n_orders)
    r = t[
        t["resolved_at"].notna() & (t["resolved_at"] >= t["opened_at"]) & (t["resolved_at"] <= period.as_of)
    ]
    hours = (r["resolved_at"] - r["opened_at"]).dt.total_seconds() / 3600
    put("resolution_median", hours.groupby(r["p"]).median(), r.groupby("p").size())

    v = reviews[
        in_range(reviews["posted_at"]) & ~reviews["is_competitor"].astype(bool) & reviews["rating"].notna()
    ]
    rating = v["rating"].astype(float)
    put(
        "average_rating",
        rating.groupby(label(v["posted_at"])).mean(),
        v.groupby(label(v["posted_at"])).size(),
    )

    return pd.DataFrame(
        [{"kpi": k, "value": f["cur"], "previous": f["prev"], "n": f["cur_n"]} for k, f in out.items()]
    )


# ---------------------------------------------------------------------- hand-written SQL


def _ts(t: dt.datetime) -> str:
    return f"TIMESTAMP '{t:%Y-%m-%d %H:%M:%S}'"


def sql_statements(period: Period) -> dict[str, str]:
    """The hand-written SQL, portable between DuckDB and PostgreSQL."""
    A, P, C, E = (_ts(t) for t in (period.as_of, period.prev, period.cur, period.end))
    w = {k: (_ts(lo), _ts(hi)) for k, (lo, hi) in period.windows.items()}
    grid = ", ".join(f"({r + 1}, {f + 1}, '{GRID[r][f]}')" for r in range(5) for f in range(5))
    segments = ", ".join(f"('{s}', {i})" for i, s in enumerate(SEGMENTS))
    score = "1 + CAST(floor(5.0 * (rank() OVER (ORDER BY {}) - 1) / count(*) OVER ()) AS INTEGER)"
    return {
        "revenue": f"""
WITH pl AS (
  SELECT date_trunc('month', o.ordered_at) AS period, l.order_id, o.customer_id, l.quantity, l.amount
  FROM order_lines l JOIN orders o ON l.order_id = o.order_id
  WHERE o.ordered_at >= {P} AND o.ordered_at < {E} AND o.ordered_at < {A}
),
totals AS (
  SELECT period,
         sum(amount) FILTER (WHERE quantity > 0) AS revenue,
         count(*) FILTER (WHERE quantity > 0) AS revenue_n,
         sum(amount) AS net_revenue, count(*) AS net_revenue_n
  FROM pl GROUP BY period
),
per_order AS (
  SELECT period, order_id, sum(amount) AS value FROM pl WHERE quantity > 0 GROUP BY period, order_id
),
aov AS (SELECT period, avg(value) AS aov, count(*) AS aov_n FROM per_order GROUP BY period),
per_customer AS (
  SELECT period, customer_id, count(DISTINCT order_id) FILTER (WHERE quantity > 0) AS purchase_orders,
         sum(amount) AS net
  FROM pl WHERE customer_id IS NOT NULL GROUP BY period, customer_id
),
buyers AS (
  SELECT period, sum(net) AS net, count(*) FILTER (WHERE purchase_orders > 0) AS buyers,
         count(*) FILTER (WHERE purchase_orders >= 2) AS repeaters
  FROM per_customer GROUP BY period
)
SELECT * FROM totals JOIN aov USING (period) JOIN buyers USING (period) ORDER BY period""",
        "customers": f"""
WITH bought AS (
  SELECT o.customer_id, o.ordered_at
  FROM order_lines l JOIN orders o ON l.order_id = o.order_id
  WHERE l.quantity > 0 AND o.customer_id IS NOT NULL AND o.ordered_at < {A}
),
c AS (
  SELECT customer_id, min(ordered_at) AS first_at,
    max(CASE WHEN ordered_at >= {w["p"][0]} AND ordered_at < {w["p"][1]} THEN 1 ELSE 0 END) AS at_p,
    max(CASE WHEN ordered_at >= {w["c"][0]} AND ordered_at < {w["c"][1]} THEN 1 ELSE 0 END) AS at_c,
    max(CASE WHEN ordered_at >= {w["e"][0]} AND ordered_at < {w["e"][1]} THEN 1 ELSE 0 END) AS at_e
  FROM bought GROUP BY customer_id
)
SELECT sum(at_p) AS s_prev, sum(at_c) AS e_prev,
       sum(CASE WHEN first_at >= {P} AND first_at < {C} THEN 1 ELSE 0 END) AS new_prev,
       sum(CASE WHEN at_p = 1 AND at_c = 0 THEN 1 ELSE 0 END) AS lost_prev,
       sum(at_c) AS s_cur, sum(at_e) AS e_cur,
       sum(CASE WHEN first_at >= {C} AND first_at < {E} THEN 1 ELSE 0 END) AS new_cur,
       sum(CASE WHEN at_c = 1 AND at_e = 0 THEN 1 ELSE 0 END) AS lost_cur
FROM c""",
        "surveys": f"""
SELECT date_trunc('month', responded_at) AS period,
  count(*) FILTER (WHERE kind = 'nps' AND scale_min = 0 AND scale_max = 10) AS nps_n,
  count(*) FILTER (WHERE kind = 'nps' AND scale_min = 0 AND scale_max = 10 AND score >= 9) AS promoters,
  count(*) FILTER (WHERE kind = 'nps' AND scale_min = 0 AND scale_max = 10 AND score <= 6) AS detractors,
  count(*) FILTER (WHERE kind = 'csat') AS csat_n,
  count(*) FILTER (WHERE kind = 'csat' AND CASE WHEN scale_max - scale_min + 1 >= 5
                   THEN score >= scale_max - 1 ELSE score >= scale_max END) AS csat_k,
  avg(1 + 6 * CAST(score - scale_min AS DOUBLE PRECISION) / (scale_max - scale_min))
      FILTER (WHERE kind = 'ces' AND scale_max > scale_min) AS ces,
  count(*) FILTER (WHERE kind = 'ces' AND scale_max > scale_min) AS ces_n
FROM survey_responses
WHERE score IS NOT NULL AND responded_at >= {P} AND responded_at < {E} AND responded_at < {A}
GROUP BY 1 ORDER BY 1""",
        "tickets": f"""
WITH t AS (
  SELECT date_trunc('month', opened_at) AS period, opened_at, resolved_at, is_complaint
  FROM tickets WHERE opened_at >= {P} AND opened_at < {E} AND opened_at < {A}
),
complaints AS (SELECT period, count(*) FILTER (WHERE is_complaint) AS complaints FROM t GROUP BY period),
resolution AS (
  SELECT period,
         percentile_cont(0.5) WITHIN GROUP (
           ORDER BY (extract(epoch FROM resolved_at) - extract(epoch FROM opened_at)) / 3600.0
         ) AS resolution_median,
         count(*) AS resolution_n
  FROM t WHERE resolved_at IS NOT NULL AND resolved_at >= opened_at AND resolved_at <= {A}
  GROUP BY period
)
SELECT * FROM complaints LEFT JOIN resolution USING (period)
ORDER BY period""",
        "reviews": f"""
SELECT date_trunc('month', posted_at) AS period, avg(rating) AS average_rating, count(*) AS n
FROM reviews
WHERE NOT is_competitor AND rating IS NOT NULL AND posted_at >= {P} AND posted_at < {E} AND posted_at < {A}
GROUP BY 1 ORDER BY 1""",
        "cohorts": f"""
WITH pl AS (
  SELECT o.customer_id, date_trunc('month', o.ordered_at) AS period, o.ordered_at, l.quantity, l.amount
  FROM order_lines l JOIN orders o ON l.order_id = o.order_id
  WHERE o.customer_id IS NOT NULL AND o.ordered_at < {A}
),
firsts AS (
  SELECT customer_id, date_trunc('month', min(ordered_at)) AS cohort
  FROM pl WHERE quantity > 0 GROUP BY customer_id
),
cells AS (
  SELECT f.cohort, pl.period,
         count(DISTINCT CASE WHEN pl.quantity > 0 THEN pl.customer_id END) AS customers,
         sum(pl.amount) AS revenue
  FROM pl JOIN firsts f ON pl.customer_id = f.customer_id
  WHERE pl.period >= f.cohort
  GROUP BY f.cohort, pl.period
),
sizes AS (SELECT cohort, customers AS cohort_size, revenue AS revenue_0 FROM cells WHERE period = cohort),
grid AS (
  SELECT s.cohort, a.age, s.cohort + a.age * INTERVAL '1 month' AS period, s.cohort_size, s.revenue_0
  FROM sizes s JOIN generate_series(0, 1200) AS a(age)
    ON s.cohort + a.age * INTERVAL '1 month' < {A}
)
SELECT g.cohort, g.age, g.period, g.cohort_size,
       coalesce(c.customers, 0) AS customers,
       100.0 * coalesce(c.customers, 0) / g.cohort_size AS retention,
       coalesce(c.revenue, 0) AS revenue,
       CASE WHEN g.revenue_0 > 0 THEN 100.0 * coalesce(c.revenue, 0) / g.revenue_0 END AS revenue_retention,
       g.period + INTERVAL '1 month' <= {A} AS complete
FROM grid g LEFT JOIN cells c ON c.cohort = g.cohort AND c.period = g.period
ORDER BY g.cohort, g.age""",
        "rfm_table": f"""
CREATE TEMP TABLE rfm AS
WITH pl AS (
  SELECT o.customer_id, o.ordered_at, l.order_id, l.quantity, l.amount
  FROM order_lines l JOIN orders o ON l.order_id = o.order_id
  WHERE o.customer_id IS NOT NULL AND o.ordered_at < {A}
),
per AS (
  SELECT customer_id, max(ordered_at) FILTER (WHERE quantity > 0) AS last_at,
         count(DISTINCT order_id) FILTER (WHERE quantity > 0) AS frequency, sum(amount) AS monetary
  FROM pl GROUP BY customer_id
),
base AS (
  SELECT customer_id,
         CAST(floor((extract(epoch FROM {A}) - extract(epoch FROM last_at)) / 86400) AS INTEGER)
           AS recency_days,
         frequency, monetary
  FROM per WHERE frequency > 0
),
scored AS (
  SELECT *, {score.format("recency_days DESC")} AS r_score, {score.format("frequency")} AS f_score,
         {score.format("monetary")} AS m_score
  FROM base
),
fm AS (SELECT *, CAST(floor((f_score + m_score + 1) / 2.0) AS INTEGER) AS fm_score FROM scored)
SELECT fm.*, g.segment
FROM fm JOIN (VALUES {grid}) AS g(r, f, segment) ON g.r = fm.r_score AND g.f = fm.fm_score""",
        "rfm": """
SELECT customer_id, recency_days, frequency, monetary, r_score, f_score, m_score, fm_score, segment
FROM rfm ORDER BY customer_id""",
        "segments": f"""
WITH per AS (
  SELECT segment, count(*) AS customers, sum(monetary) AS revenue, avg(recency_days) AS avg_recency_days,
         avg(frequency) AS avg_frequency, avg(monetary) AS avg_monetary
  FROM rfm GROUP BY segment
),
total AS (SELECT count(*) AS customers, sum(monetary) AS revenue FROM rfm)
SELECT s.segment, coalesce(per.customers, 0) AS customers,
       100.0 * coalesce(per.customers, 0) / total.customers AS share,
       coalesce(per.revenue, 0) AS revenue,
       CASE WHEN total.revenue > 0 THEN 100.0 * coalesce(per.revenue, 0) / total.revenue END AS revenue_share,
       per.avg_recency_days, per.avg_frequency, per.avg_monetary
FROM (VALUES {segments}) AS s(segment, pos) LEFT JOIN per ON per.segment = s.segment CROSS JOIN total
ORDER BY s.pos""",
    }


def run_sql(args: argparse.Namespace, period: Period, parts: list[str]) -> tuple[dict, dict]:
    import pandas as pd

    statements = sql_statements(period)
    timing: dict[str, Any] = {"parts": {}, "statements": {}}
    start = time.perf_counter()
    if args.case == "sql-duckdb":
        import duckdb

        con = duckdb.connect(args.store, read_only=True)

        def query(sql: str) -> pd.DataFrame:
            return con.sql(sql).df()

        def execute(sql: str) -> None:
            con.execute(sql)
    else:
        import psycopg

        con = psycopg.connect(args.store, autocommit=True)

        def query(sql: str) -> pd.DataFrame:
            with con.cursor() as cur:
                cur.execute(sql)
                columns = [d.name for d in cur.description or []]
                return pd.DataFrame(cur.fetchall(), columns=columns)

        def execute(sql: str) -> None:
            con.execute(sql)

    def timed(name: str, fn: Callable[[str], Any]) -> Any:
        t0 = time.perf_counter()
        out = fn(statements[name])
        timing["statements"][name] = time.perf_counter() - t0
        return out

    figures: dict[str, Any] = {}
    if "summary" in parts:
        t0 = time.perf_counter()
        got = {name: timed(name, query) for name in ("revenue", "customers", "surveys", "tickets", "reviews")}
        figures["summary"] = _sql_headline(got, period)
        timing["parts"]["summary"] = time.perf_counter() - t0
    if "cohorts" in parts:
        t0 = time.perf_counter()
        figures["cohorts"] = timed("cohorts", query)
        timing["parts"]["cohorts"] = time.perf_counter() - t0
    if "rfm" in parts:
        t0 = time.perf_counter()
        timed("rfm_table", execute)
        figures["rfm"] = timed("rfm", query)
        figures["segments"] = timed("segments", query)
        timing["parts"]["rfm"] = time.perf_counter() - t0
    timing["seconds"] = time.perf_counter() - start
    con.close()
    return figures, timing


def _sql_headline(got: dict[str, Any], period: Period) -> Any:
    """The KPI values from the hand-written queries' few rows (arithmetic only)."""
    import numpy as np
    import pandas as pd

    def by_month(frame: Any) -> dict[str, dict[str, float]]:
        out = {}
        for row in frame.to_dict("records"):
            month = pd.Timestamp(row["period"]).to_pydatetime()
            side = "cur" if month == period.cur else "prev" if month == period.prev else None
            if side:
                out[side] = {k: (np.nan if v is None else float(v)) for k, v in row.items() if k != "period"}
        return out

    rev, srv, tix, rvw = (by_month(got[k]) for k in ("revenue", "surveys", "tickets", "reviews"))
    cust = {k: float(v) for k, v in got["customers"].iloc[0].to_dict().items()}
    sides = {side: _sql_kpis(rev, srv, tix, rvw, cust, side) for side in ("cur", "prev")}
    rows = []
    for kpi in HEADLINE:
        (value, n), (previous, _) = sides["cur"][kpi], sides["prev"][kpi]
        rows.append({"kpi": kpi, "value": value, "previous": previous, "n": n})
    return pd.DataFrame(rows)


def _div(a: float, b: float) -> float:
    return a / b if b and b == b else float("nan")


def _sql_kpis(
    rev: dict, srv: dict, tix: dict, rvw: dict, cust: dict, side: str
) -> dict[str, tuple[float, float]]:
    """(value, n) of each headline KPI for one month, from the hand-written queries' sums."""

    def month(frame: dict[str, dict[str, float]], keys: str) -> dict[str, float]:
        return {k: float("nan") for k in keys.split()} | frame.get(side, {})

    r = month(rev, "revenue revenue_n net_revenue net_revenue_n aov aov_n net buyers repeaters")
    s = month(srv, "promoters detractors nps_n csat_k csat_n ces ces_n")
    t = month(tix, "complaints resolution_median resolution_n")
    v = month(rvw, "average_rating n")
    S, E, N, lost = (cust[f"{k}_{side}"] for k in ("s", "e", "new", "lost"))
    return {
        "revenue": (r["revenue"], r["revenue_n"]),
        "net_revenue": (r["net_revenue"], r["net_revenue_n"]),
        "aov": (r["aov"], r["aov_n"]),
        "revenue_per_customer": (_div(r["net"], r["buyers"]), r["buyers"]),
        "repeat_purchase_rate": (100.0 * _div(r["repeaters"], r["buyers"]), r["buyers"]),
        "active_customers": (E, E),
        "new_customers": (N, N),
        "retention_rate": (100.0 * _div(E - N, S), S),
        "churn_rate": (100.0 * _div(lost, S), S),
        "nps": (100.0 * _div(s["promoters"] - s["detractors"], s["nps_n"]), s["nps_n"]),
        "csat": (100.0 * _div(s["csat_k"], s["csat_n"]), s["csat_n"]),
        "ces": (s["ces"], s["ces_n"]),
        # per purchase order (an order with a line of quantity > 0), as the aov query counts them
        "complaints_per_1000_orders": (1000.0 * _div(t["complaints"], r["aov_n"]), r["aov_n"]),
        "resolution_median": (t["resolution_median"], t["resolution_n"]),
        "average_rating": (v["average_rating"], v["n"]),
    }


# ====================================================================== agreement


def normalise(kind: str, frame: Any) -> Any:
    """The figures in comparable dtypes: dates as datetime64, counts as float, ids as str."""
    import pandas as pd

    frame = frame.reset_index(drop=True).copy()
    columns = {
        "summary": ["kpi", "value", "previous", "n"],
        "cohorts": COHORT_COLUMNS,
        "rfm": RFM_COLUMNS,
        "segments": SEGMENT_COLUMNS,
    }[kind]
    frame = frame[columns]
    for c in columns:
        if c in ("cohort", "period"):
            frame[c] = pd.to_datetime(pd.Series(frame[c]).astype(str)).astype("datetime64[us]")
        elif c in ("kpi", "customer_id", "segment"):
            frame[c] = frame[c].astype(str).astype(object)
        elif c == "complete":
            frame[c] = frame[c].astype(bool)
        else:
            frame[c] = pd.to_numeric(frame[c].astype(object), errors="coerce").astype(float)
    return frame


def compare(reference: dict[str, Any], other: dict[str, Any]) -> list[str]:
    """Differences between two cases' figures ([] when they agree to RTOL)."""
    import numpy as np

    problems = []
    for kind in ("summary", "cohorts", "rfm", "segments"):
        if kind not in reference or kind not in other:
            continue
        a, b = reference[kind], other[kind]
        if len(a) != len(b):
            problems.append(f"{kind}: {len(b)} rows, reference {len(a)}")
            continue
        for c in a.columns:
            x, y = a[c].to_numpy(), b[c].to_numpy()
            if x.dtype.kind == "f" or y.dtype.kind == "f":
                x, y = x.astype(float), y.astype(float)
                bad = ~np.isclose(x, y, rtol=RTOL, atol=ATOL, equal_nan=True)
            else:
                bad = x != y
            if bad.any():
                i = int(np.flatnonzero(bad)[0])
                key = a.iloc[i, 0], (a.iloc[i, 1] if kind == "cohorts" else "")
                problems.append(
                    f"{kind}.{c}: {int(bad.sum())} rows differ, first at {key}: {y[i]!r} vs {x[i]!r}"
                )
    return problems


# ====================================================================== the parent


def run_child(argv: list[str]) -> dict[str, Any]:
    cmd = [sys.executable, "-m", "benchmarks.metrics_speed", *argv]
    load_before = os.getloadavg()[0]
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, cwd=ROOT, stdout=subprocess.PIPE, text=True, check=False)
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        raise RuntimeError(f"child {' '.join(argv[:2])} failed (exit {proc.returncode}); its stderr is above")
    out: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    out["process_seconds"] = wall
    # The machine is shared (2 cores): keep the 1-minute load average with every figure.
    out["loadavg_1m_before"] = load_before
    out["loadavg_1m_after"] = os.getloadavg()[0]
    return out


def ensure_data(args: argparse.Namespace, workdir: Path, backends: list[str]) -> dict[str, Any]:
    """Build the data, the DuckDB store and the PostgreSQL schema unless the work dir has them."""
    manifest_path = workdir / "manifest.json"
    want = {"customers": args.customers, "seed": args.seed, "as_of": args.as_of}
    manifest: dict[str, Any] = {}
    if manifest_path.exists() and not args.rebuild:
        manifest = json.loads(manifest_path.read_text())
        if {k: manifest.get(k) for k in want} != want:
            raise SystemExit(
                f"{workdir} holds other data ({manifest_path}); use another --workdir or --rebuild"
            )
    manifest.update(want)
    common = ["--workdir", str(workdir), "--customers", str(args.customers), "--seed", str(args.seed)]
    common += ["--as-of", args.as_of]
    if "generate" not in manifest:
        log(f"generating the demo business for {args.customers:,} customers in {workdir}")
        gen = run_child(["--case", "generate", *common])
        (workdir / "files.json").write_text(json.dumps(gen.pop("files")))
        manifest["generate"] = gen
        manifest.pop("duckdb", None)
        manifest.pop("postgres", None)
        manifest_path.write_text(json.dumps(manifest, indent=2))
        log(f"generated in {gen['seconds']:.1f}s: {gen['rows']}")
    store = workdir / "store.duckdb"
    if "duckdb" not in manifest or not store.exists():
        store.unlink(missing_ok=True)
        log(f"importing into the DuckDB store {store}")
        manifest["duckdb"] = {
            "store": str(store),
            **run_child(["--case", "load", *common, "--store", str(store)]),
        }
        manifest_path.write_text(json.dumps(manifest, indent=2))
        log(f"DuckDB store built in {manifest['duckdb']['seconds']:.1f}s")
    if "postgres" in backends:
        schema = f"cxbench_metrics_{args.customers}"
        url = pg_url(args.pg_url, schema)
        if not (manifest.get("postgres", {}).get("url") == url and _pg_has(url, manifest)):
            import psycopg

            with psycopg.connect(args.pg_url, autocommit=True) as conn:
                conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
                conn.execute(f'CREATE SCHEMA "{schema}"')
            log(f"importing into PostgreSQL schema {schema}")
            manifest["postgres"] = {"url": url, **run_child(["--case", "load", *common, "--store", url])}
            manifest_path.write_text(json.dumps(manifest, indent=2))
            log(f"PostgreSQL schema built in {manifest['postgres']['seconds']:.1f}s")
    return manifest


def _pg_has(url: str, manifest: dict[str, Any]) -> bool:
    import psycopg

    try:
        with psycopg.connect(url) as conn:
            row = conn.execute("SELECT count(*) FROM order_lines").fetchone()
    except psycopg.Error:
        return False
    return bool(row) and row[0] == manifest["duckdb"]["counts"]["order_lines"]


def available_parts() -> list[str]:
    """The figures cxloop can compute in this checkout (cohorts and RFM were in progress)."""
    parts = ["summary"]
    for part, module in (("cohorts", "cxloop.metrics.cohorts"), ("rfm", "cxloop.metrics.rfm")):
        try:
            __import__(module)
            parts.append(part)
        except ImportError:
            log(f"{module} is not importable: {part} left out of every case")
    return parts


def versions(with_pg: str | None) -> dict[str, str]:
    import duckdb
    import ibis
    import numpy as np
    import pandas as pd

    out = {
        "python": platform.python_version(),
        "duckdb": duckdb.__version__,
        "ibis": ibis.__version__,
        "pandas": pd.__version__,
        "numpy": np.__version__,
    }
    if with_pg:
        import psycopg

        out["psycopg"] = psycopg.__version__
        with psycopg.connect(with_pg) as conn:
            row = conn.execute("SHOW server_version").fetchone()
            out["postgres"] = str(row[0]) if row else "?"
    return out


def code_version() -> dict[str, Any]:
    def git(*cmd: str) -> str:
        proc = subprocess.run(["git", *cmd], cwd=ROOT, capture_output=True, text=True, check=False)
        return proc.stdout.rstrip()

    return {
        "commit": git("rev-parse", "--short", "HEAD"),
        "src_changes": git("status", "--porcelain", "--", "src/cxloop/metrics").splitlines(),
        "src_sha256": src_digest(),
    }


def parent_main(args: argparse.Namespace) -> int:
    cases = [c.strip() for c in args.cases.split(",") if c.strip()]
    for c in cases:
        if c not in CASES:
            raise SystemExit(f"unknown case {c!r}: choose from {', '.join(CASES)}")
    if args.no_postgres:
        cases = [c for c in cases if not c.endswith("postgres")]
    backends = ["duckdb"] + (["postgres"] if any(c.endswith("postgres") for c in cases) else [])
    workdir = Path(args.workdir or Path(tempfile.gettempdir()) / f"cxloop-metrics-bench-{args.customers}")
    workdir.mkdir(parents=True, exist_ok=True)
    manifest = ensure_data(args, workdir, backends)
    if args.build_only:
        return 0
    parts = [p for p in available_parts() if p in args.parts.split(",")]
    results: dict[str, Any] = {
        "issue": "3: headline summary + monthly cohort matrix + RFM",
        "date": dt.datetime.now().astimezone().isoformat(timespec="seconds"),
        "command": "python -m benchmarks.metrics_speed " + " ".join(sys.argv[1:]),
        "customers": args.customers,
        "as_of": args.as_of,
        "rows": manifest["duckdb"]["counts"],
        "parts": parts,
        "machine": {
            "cpus": os.cpu_count(),
            "ram_gb": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1),
            "platform": platform.platform(),
        },
        "versions": versions(args.pg_url if "postgres" in backends else None),
        "code": code_version(),
        "targets": {
            "pandas_speedup_min": TARGET_PANDAS_SPEEDUP,
            "sql_ratio_max": TARGET_SQL_RATIO,
            "peak_rss_mb_max": TARGET_RSS_MB,
        },
        "data_build": {k: manifest.get(k) for k in ("generate", "duckdb", "postgres")},
        "runs": {c: [] for c in cases},
    }
    out_dir = workdir / "out"
    out_dir.mkdir(exist_ok=True)
    as_of = dt.datetime.combine(dt.date.fromisoformat(args.as_of), dt.time())
    for r in range(args.repeat):
        for case in cases:
            store = manifest["postgres"]["url"] if case.endswith("postgres") else manifest["duckdb"]["store"]
            log(f"run {r + 1}/{args.repeat}: {case}")
            timing = run_child(
                [
                    "--case", case, "--store", store, "--as-of", as_of.isoformat(),
                    "--parts", ",".join(parts),
                    "--result", str(out_dir / f"{case}.pkl"),
                ]
            )  # fmt: skip
            log(
                f"  {case}: {timing['seconds']:.2f}s, peak RSS {timing['peak_rss_mb']:.0f} MB, "
                f"load {timing['loadavg_1m_before']:.1f} -> {timing['loadavg_1m_after']:.1f}"
            )
            results["runs"][case].append(timing)
            if r == 0:
                with open(out_dir / f"{case}.pkl", "rb") as fh:
                    figures = pickle.load(fh)
                results.setdefault("_figures", {})[case] = figures
    figures = results.pop("_figures")
    reference = "sql-duckdb" if "sql-duckdb" in figures else next(iter(figures))
    results["agreement"] = {
        case: compare(figures[reference], f) for case, f in figures.items() if case != reference
    }
    results["agreement_reference"] = reference
    results["cases"] = summarise(results)
    print_report(results, figures)
    out = Path(args.out or f"benchmarks/results/metrics-{_size_label(args.customers)}.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2, default=str) + "\n")
    log(f"results written to {out}")
    agree = all(not p for p in results["agreement"].values())
    met = all(c.get("pass") is not False for c in results["cases"].values())
    return 0 if agree and met else 1


def _size_label(customers: int) -> str:
    if customers % 1_000_000 == 0:
        return f"{customers // 1_000_000}m"
    if customers % 1_000 == 0:
        return f"{customers // 1_000}k"
    return str(customers)


def best(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """The fastest run of a case (the others are kept in the JSON)."""
    return min(runs, key=lambda r: r["seconds"])


def summarise(results: dict[str, Any]) -> dict[str, dict[str, Any]]:
    runs = {c: best(r) for c, r in results["runs"].items() if r}
    out: dict[str, dict[str, Any]] = {}
    for case, run in runs.items():
        engine = case.split("-")[-1] if case != "pandas" else "duckdb"
        entry: dict[str, Any] = {
            "seconds": run["seconds"],
            "peak_rss_mb": run["peak_rss_mb"],
            "parts": run["parts"],
            "loadavg_1m": [run["loadavg_1m_before"], run["loadavg_1m_after"]],
            "agrees": not results["agreement"].get(case),
        }
        if case.startswith("cxloop"):
            sql = runs.get(f"sql-{engine}")
            entry["sql_ratio"] = run["seconds"] / sql["seconds"] if sql else None
            entry["sql_ratio_parts"] = (
                {p: run["parts"][p] / sql["parts"][p] for p in run["parts"] if sql["parts"].get(p)}
                if sql
                else None
            )
            if engine == "duckdb":
                pandas = runs.get("pandas")
                entry["pandas_speedup"] = pandas["seconds"] / run["seconds"] if pandas else None
                checks = [
                    run["peak_rss_mb"] < TARGET_RSS_MB,
                    entry["sql_ratio"] is None or entry["sql_ratio"] <= TARGET_SQL_RATIO,
                    entry["pandas_speedup"] is None or entry["pandas_speedup"] >= TARGET_PANDAS_SPEEDUP,
                    entry["agrees"],
                ]
                entry["pass"] = all(checks)
            else:  # PostgreSQL: reported beside, no target of its own
                entry["pass"] = None if entry["agrees"] else False
        out[case] = entry
    return out


def print_report(results: dict[str, Any], figures: dict[str, Any]) -> None:
    rows = results["rows"]
    print()
    print(
        f"Metrics on {results['customers']:,} customers: {rows['order_lines']:,} order lines, "
        f"{rows['orders']:,} orders, {rows['survey_responses']:,} survey answers, "
        f"{rows['tickets']:,} tickets, "
        f"{rows['reviews']:,} reviews; as of {results['as_of']}; figures: {', '.join(results['parts'])}"
    )
    code = results["code"]
    dirty = " + uncommitted changes in src/cxloop/metrics" if code["src_changes"] else ""
    print(
        f"code: commit {code['commit']}{dirty} (src sha256 {code['src_sha256']}); "
        f"versions {results['versions']}"
    )
    shas = {r.get("src_sha256") for runs in results["runs"].values() for r in runs} - {None}
    if shas - {code["src_sha256"]}:
        print(f"!! src/cxloop changed during the run (hashes {sorted(shas)}): re-run for clean figures")
    print("agreement with " + results["agreement_reference"] + ": " + "; ".join(
        f"{case} {'OK' if not p else 'DIFFERS'}" for case, p in results["agreement"].items()
    ))  # fmt: skip
    for case, problems in results["agreement"].items():
        for p in problems[:10]:
            print(f"   !! {case}: {p}")
    cases = results["cases"]
    parts = results["parts"]
    head = (
        f"{'case':<16} {'seconds':>8} {' '.join(f'{p:>8}' for p in parts)} {'peakRSS MB':>10} "
        f"{'cxloop/this':>11} {'load 1m':>11}  {'result':<6}"
    )
    print(head)
    print("-" * len(head))
    cx = cases.get("cxloop-duckdb")
    for case, c in cases.items():
        engine = case.split("-")[-1] if case != "pandas" else "duckdb"
        mine = cases.get(f"cxloop-{engine}")
        ratio = f"{mine['seconds'] / c['seconds']:.2f}x" if mine and not case.startswith("cxloop") else "-"
        if case == "pandas" and cx:
            ratio = f"{cx['seconds'] / c['seconds']:.3f}x"
        verdict = {True: "PASS", False: "FAIL", None: "-"}[c.get("pass")]
        load = f"{c['loadavg_1m'][0]:.1f}->{c['loadavg_1m'][1]:.1f}"
        per = " ".join(f"{c['parts'].get(p, float('nan')):>8.2f}" for p in parts)
        print(
            f"{case:<16} {c['seconds']:>8.2f} {per} {c['peak_rss_mb']:>10,.0f} {ratio:>11} {load:>11}  "
            f"{verdict:<6}"
        )
    print()
    for case, c in cases.items():
        if case.startswith("cxloop") and c.get("sql_ratio") is not None:
            parts_txt = ", ".join(f"{p} {r:.2f}x" for p, r in (c["sql_ratio_parts"] or {}).items())
            extra = f"; {c['pandas_speedup']:.1f}x faster than pandas" if c.get("pandas_speedup") else ""
            print(f"{case}: {c['sql_ratio']:.2f}x the hand-written SQL ({parts_txt}){extra}")
    print(
        f"targets (cxloop-duckdb): >= {TARGET_PANDAS_SPEEDUP:.0f}x faster than pandas, "
        f"<= {TARGET_SQL_RATIO}x the "
        f"hand-written SQL, peak RSS < {TARGET_RSS_MB:.0f} MB; PostgreSQL reported beside (no target)"
    )
    for case, runs in results["runs"].items():
        run = best(runs)
        if run.get("per_kpi"):
            db = run.get("db_seconds", 0.0)
            print(f"\n{case}: where the time goes ({run['seconds']:.2f}s, of which database {db:.2f}s "
                  f"in {run.get('db_queries', 0)} queries)")  # fmt: skip
            for e in sorted(run["per_kpi"], key=lambda e: -e["seconds"]):
                print(f"  {e['seconds']:7.2f}s  (db {e['db_seconds']:6.2f}s)  summary: {e['kpi']}")
            for part in ("cohorts", "rfm"):
                if part in run["parts"]:
                    print(
                        f"  {run['parts'][part]:7.2f}s  (db {run.get(part + '_db_seconds', 0):6.2f}s)  {part}"
                    )
        if run.get("statements"):
            txt = ", ".join(f"{k} {v:.2f}" for k, v in run["statements"].items())
            print(f"{case} statements (s): {txt}")
        if case == "pandas":
            print(f"pandas: read {run['read_seconds']:.2f}s, merge lines+orders {run['join_seconds']:.2f}s")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.metrics_speed", description=__doc__.split("\n")[0])
    p.add_argument("--customers", type=int, default=1_000_000, help="demo customers (default 1M: ~10M lines)")
    p.add_argument(
        "--workdir", help="where the data and stores live (default: $TMPDIR/cxloop-metrics-bench-N)"
    )
    p.add_argument("--rebuild", action="store_true", help="rebuild the data even if the work dir has it")
    p.add_argument("--build-only", action="store_true", help="build (or check) the data, measure nothing")
    p.add_argument("--cases", default=",".join(CASES), help=f"comma list of {', '.join(CASES)}")
    p.add_argument("--no-postgres", action="store_true", help="leave out the PostgreSQL cases")
    p.add_argument("--parts", default=",".join(PARTS), help="comma list of summary, cohorts, rfm")
    p.add_argument("--repeat", type=int, default=1, help="runs per case; the fastest is reported")
    p.add_argument("--pg-url", default=DEFAULT_PG, help="PostgreSQL base URL (a schema is made in it)")
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--as-of", default=DEFAULT_AS_OF.isoformat(), help="end of the data (default 2026-01-01)")
    p.add_argument("--out", help="JSON results (default benchmarks/results/metrics-<size>.json)")
    # internal: one step in a child process, JSON on stdout
    p.add_argument("--case", help=argparse.SUPPRESS)
    p.add_argument("--store", help=argparse.SUPPRESS)
    p.add_argument("--result", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.case:
        child = {"generate": child_generate, "load": child_load}.get(args.case, child_case)
        print(json.dumps(child(args), default=str))
        return 0
    return parent_main(args)


if __name__ == "__main__":
    raise SystemExit(main())
