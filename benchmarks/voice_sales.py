"""Benchmark: sales preferences on the demo business (issue 5, item 6).

Run from the project root (the venv active)::

    python -m benchmarks.voice_sales --store /tmp/sales1m.duckdb    # a store made by `cxloop demo`
    python -m benchmarks.voice_sales --customers 20000               # smoke run: builds its own store
    python -m benchmarks.voice_sales --store X.duckdb --pandas       # also the pandas baseline

What it does:

1. **Data**: the DuckDB store given by ``--store`` (``cxloop --db X.duckdb demo --customers
   1000000`` makes the 1M-customer demo, ~10M order lines, in 1-3 minutes), else a demo of
   ``--customers`` built once into ``--workdir``.
2. **Cases**, each in its own child process (its peak RSS, ``VmHWM``, is its own; the time is
   the computation's, after imports and opening the store, and so is the CPU time, DuckDB's
   threads included -- on a shared machine it varies less than the wall time):

   * ``scan`` -- the floor: hand-written SQL reading every order line joined to its order once
     (a count and two sums), what any answer over order lines costs at least;
   * ``sql-baskets`` -- hand-written DuckDB SQL of the product pairs, with cxloop's definitions
     (cancelled orders out, net quantity per order and product > 0, counts, pairs by self-join,
     lift), the baseline of ``cxloop-baskets``;
   * ``cxloop-baskets`` / ``cxloop-baskets-category`` -- :func:`cxloop.voice.baskets.basket_pairs`
     at product / category level (every pair in 10+ orders, ranked by lift);
   * ``cxloop-trends`` -- :func:`cxloop.voice.sales.item_trends`, products per segment, the last
     month against the one before; ``cxloop-top`` -- :func:`~cxloop.voice.sales.top_items`,
     products per region;
   * ``pandas-baskets`` (with ``--pandas``) -- the same pairs written plainly in pandas (the
     needed columns read with DuckDB ``.df()``, the read included; groupby, self-merge).

3. **Agreement**: the pairs and counts of ``cxloop-baskets`` must equal the SQL's (and pandas').
4. A table (seconds, peak RSS, ratio to the SQL and to the scan), JSON in ``benchmarks/results/``.

The machine is shared: run it when it is quiet, and read the ratios (measured in the same run)
rather than the seconds.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import platform
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
AS_OF = dt.datetime(2026, 1, 1)
MIN_COUNT = 10
CASES = (
    "scan",
    "sql-baskets",
    "cxloop-baskets",
    "cxloop-baskets-category",
    "cxloop-trends",
    "cxloop-top",
)

SCAN = """
SELECT count(*), sum(CAST(l.quantity AS DOUBLE)), sum(CAST(l.amount AS DOUBLE))
FROM order_lines l JOIN orders o ON l.order_id = o.order_id
WHERE o.ordered_at < TIMESTAMP '{as_of}'
"""

SQL_BASKETS = """
WITH items AS (
    SELECT l.order_id, l.product_id AS item
    FROM order_lines l JOIN orders o ON l.order_id = o.order_id
    WHERE o.ordered_at < TIMESTAMP '{as_of}'
      AND (o.status IS NULL OR lower(trim(o.status)) NOT IN ('cancelled', 'canceled'))
      AND l.product_id IS NOT NULL
    GROUP BY 1, 2
    HAVING sum(CAST(l.quantity AS DOUBLE)) > 0
),
counts AS (SELECT item, count(*) AS n FROM items GROUP BY 1),
total AS (SELECT count(DISTINCT order_id) AS n FROM items),
pairs AS (
    SELECT a.item AS item_a, b.item AS item_b, count(*) AS orders_ab
    FROM items a JOIN items b ON a.order_id = b.order_id AND a.item < b.item
    GROUP BY 1, 2
)
SELECT item_a, item_b, orders_ab, ca.n AS orders_a, cb.n AS orders_b,
       orders_ab * total.n / (ca.n * cb.n) AS lift
FROM pairs JOIN counts ca ON item_a = ca.item JOIN counts cb ON item_b = cb.item CROSS JOIN total
WHERE orders_ab >= {min_count}
ORDER BY lift DESC, orders_ab DESC, item_a, item_b
"""


def peak_rss_mb() -> float:
    """This process's own peak resident set size (``VmHWM``), in MiB (not ``ru_maxrss``, which
    a forked child inherits from its parent)."""
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024.0
    return float("nan")


def cpu_seconds() -> float:
    import resource

    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def log(msg: str) -> None:
    print(f"[{dt.datetime.now():%H:%M:%S}] {msg}", file=sys.stderr, flush=True)


# -- one case, in a child process ----------------------------------------------------------------


def _pairs_of(rows: list[tuple[Any, ...]]) -> list[list[Any]]:
    return [[str(r[0]), str(r[1]), int(r[2]), int(r[3]), int(r[4])] for r in rows]


def run_case(case: str, store_path: str) -> dict[str, Any]:
    import duckdb

    as_of = AS_OF.strftime("%Y-%m-%d %H:%M:%S")
    if case in ("scan", "sql-baskets"):
        conn = duckdb.connect(store_path, read_only=True)
        sql = (SCAN if case == "scan" else SQL_BASKETS).format(as_of=as_of, min_count=MIN_COUNT)
        started, cpu = time.perf_counter(), cpu_seconds()
        rows = conn.execute(sql).fetchall()
        seconds = time.perf_counter() - started
        pairs = _pairs_of(rows) if case == "sql-baskets" else None
        return {"seconds": seconds, "cpu_seconds": cpu_seconds() - cpu, "pairs": pairs}
    if case == "pandas-baskets":
        conn = duckdb.connect(store_path, read_only=True)
        started, cpu = time.perf_counter(), cpu_seconds()
        pairs = _pandas_baskets(conn)
        return {"seconds": time.perf_counter() - started, "cpu_seconds": cpu_seconds() - cpu, "pairs": pairs}

    from cxloop import Store
    from cxloop.metrics import store_source
    from cxloop.voice.baskets import basket_pairs
    from cxloop.voice.sales import item_trends, top_items

    with Store.open(store_path) as store, store_source(store) as source:
        started, cpu = time.perf_counter(), cpu_seconds()
        if case.startswith("cxloop-baskets"):
            level = "category" if case.endswith("category") else "product"
            frame = basket_pairs(
                source, level=level, as_of=AS_OF, min_count=MIN_COUNT, min_support=0, limit=None
            )
            columns = ["item_a", "item_b", "orders_ab", "orders_a", "orders_b"]
            rows = list(frame[columns].itertuples(index=False))
            result = _pairs_of(rows) if level == "product" else None
        elif case == "cxloop-trends":
            frame = item_trends(source, level="product", per="segment", as_of=AS_OF)
            result = None
        elif case == "cxloop-top":
            frame = top_items(source, level="product", per="region", as_of=AS_OF)
            result = None
        else:
            raise SystemExit(f"unknown case {case!r}")
        seconds = time.perf_counter() - started
        return {"seconds": seconds, "cpu_seconds": cpu_seconds() - cpu, "pairs": result, "rows": len(frame)}


def _pandas_baskets(conn: Any) -> list[list[Any]]:
    """The pairs as a pandas user would write them, from the definition."""
    lines = conn.execute("SELECT order_id, product_id, quantity::DOUBLE quantity FROM order_lines").df()
    orders = conn.execute("SELECT order_id, ordered_at, status FROM orders").df()
    cancelled = orders.status.str.strip().str.lower().isin(["cancelled", "canceled"])
    orders = orders[(orders.ordered_at < AS_OF) & ~cancelled]
    lines = lines[lines.order_id.isin(orders.order_id) & lines.product_id.notna()]
    net = lines.groupby(["order_id", "product_id"], as_index=False, sort=False).quantity.sum()
    items = net.loc[net.quantity > 0, ["order_id", "product_id"]]
    n = items.order_id.nunique()
    counts = items.product_id.value_counts()
    both = items.merge(items, on="order_id")
    both = both[both.product_id_x < both.product_id_y]
    together = both.groupby(["product_id_x", "product_id_y"]).size()
    together = together[together >= MIN_COUNT].reset_index(name="orders_ab")
    together["orders_a"] = together.product_id_x.map(counts)
    together["orders_b"] = together.product_id_y.map(counts)
    together["lift"] = together.orders_ab * n / (together.orders_a * together.orders_b)
    together = together.sort_values(
        ["lift", "orders_ab", "product_id_x", "product_id_y"], ascending=[False, False, True, True]
    )
    return _pairs_of(list(together.drop(columns="lift").itertuples(index=False)))


def child_main(case: str, store_path: str) -> None:
    result = run_case(case, store_path)
    result["peak_rss_mb"] = peak_rss_mb()
    sys.stdout.write(json.dumps(result))


# -- the run ---------------------------------------------------------------------------------------


def in_child(case: str, store_path: str) -> dict[str, Any]:
    log(f"case {case}")
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks.voice_sales", "--child", case, "--store", store_path],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise SystemExit(f"case {case} failed:\n{done.stderr}")
    result: dict[str, Any] = json.loads(done.stdout)
    return result


def ensure_store(args: argparse.Namespace) -> str:
    if args.store:
        if not Path(args.store).exists():
            raise SystemExit(f"--store {args.store}: no such file (make it with `cxloop --db FILE demo`)")
        return str(args.store)
    path = Path(args.workdir) / f"demo-{args.customers}.duckdb"
    if not path.exists():
        from cxloop import Store
        from cxloop.demo_store import load_demo

        path.parent.mkdir(parents=True, exist_ok=True)
        log(f"building the demo with {args.customers:,} customers into {path}")
        with Store.open(str(path)) as store:
            load_demo(store, customers=args.customers, as_of=AS_OF.date())
    return str(path)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--store", help="A DuckDB store made by `cxloop demo` (default: build one).")
    parser.add_argument("--customers", type=int, default=20_000, help="Demo size when building one.")
    parser.add_argument("--workdir", default="/tmp/cxloop-voice-sales", help="Where a built demo is kept.")
    parser.add_argument("--pandas", action="store_true", help="Also run the pandas baseline (memory hungry).")
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "voice_sales.json"))
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        child_main(args.child, args.store)
        return 0

    store_path = ensure_store(args)
    cases = [*CASES, *(["pandas-baskets"] if args.pandas else [])]
    results = {case: in_child(case, store_path) for case in cases}
    reference = results["sql-baskets"]["pairs"]
    for case in ("cxloop-baskets", "pandas-baskets"):
        if case in results and results[case]["pairs"] != reference:
            raise SystemExit(f"{case} disagrees with the hand-written SQL")
    log(f"cxloop-baskets agrees with the SQL ({len(reference)} pairs in {MIN_COUNT}+ orders)")

    sql, scan = results["sql-baskets"]["seconds"], results["scan"]["seconds"]
    print(f"\nstore {store_path}, as of {AS_OF:%Y-%m-%d}; pairs in {MIN_COUNT}+ orders: {len(reference)}")
    sql_cpu = results["sql-baskets"]["cpu_seconds"]
    print(f"{'case':<26}{'seconds':>9}{'cpu s':>8}{'peak MB':>9}{'/ sql':>8}{'/ scan':>8}{'cpu/sql':>9}")
    for case, r in results.items():
        seconds, cpu = r["seconds"], r["cpu_seconds"]
        print(
            f"{case:<26}{seconds:>9.2f}{cpu:>8.1f}{r['peak_rss_mb']:>9.0f}{seconds / sql:>8.2f}"
            f"{seconds / scan:>8.2f}{cpu / sql_cpu:>9.2f}"
        )
    record = {
        "store": store_path,
        "as_of": AS_OF.isoformat(),
        "machine": {"python": platform.python_version(), "cpus": __import__("os").cpu_count()},
        "when": dt.datetime.now().isoformat(timespec="seconds"),
        "cases": {c: {k: v for k, v in r.items() if k != "pairs"} for c, r in results.items()},
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(record, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
