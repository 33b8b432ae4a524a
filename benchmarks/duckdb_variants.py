"""Diagnostic: DuckDB costs behind the import, measured without cxloop (so it survives core changes).

On the order-lines file of ``benchmarks.import_speed`` (generated here, or ``--csv``/``--parquet``):

* ``insert``: INSERT 10M staged rows (the shape of cxloop's ``cx_out_order_lines``, with an md5
  row hash) into a store table, when the staged temp table was committed before ``BEGIN`` vs.
  created inside the same transaction (as cxloop does today);
* ``parse``: the cost of parsing each kind of field from text, 10M values each;
* ``hash``: staging the output rows without a hash, with md5, md5_number and DuckDB's ``hash()``.

Usage::

    python -m benchmarks.duckdb_variants --lines 10000000 [--only insert,parse,hash] [--memory-limit 1GB]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks.import_speed import COLUMNS, generate

STORE_COLUMNS = (
    "order_id VARCHAR, line_no INTEGER, product_id VARCHAR, product_name VARCHAR, category VARCHAR, "
    "quantity DECIMAL(18,4), unit_price DECIMAL(18,4), amount DECIMAL(18,4), source VARCHAR, "
    "row_hash VARCHAR, import_id VARCHAR"
)
CONTENT = "order_id, line_no, product_id, product_name, category, quantity, unit_price, amount"
MD5 = (
    "md5(concat_ws(chr(31), "
    + ", ".join(f"coalesce(CAST({c} AS VARCHAR), chr(30))" for c in CONTENT.split(", "))
    + "))"
)
STAGED = (
    "SELECT order_id, line_no, product_id, product_name, category, "
    "CAST(quantity AS DECIMAL(18,4)) AS quantity, CAST(unit_price AS DECIMAL(18,4)) AS unit_price, "
    "CAST(amount AS DECIMAL(18,4)) AS amount, 'default' AS source, {hash} AS row_hash "
    "FROM read_parquet('{parquet}')"
)


def timed(results: dict[str, float], name: str, fn: Any, repeat: int = 1) -> None:
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    results[name] = round(best, 2)
    print(f"  {best:7.2f}s  {name}", flush=True)


def insert_variants(parquet: Path, work: Path, limit: str) -> dict[str, float]:
    import duckdb

    results: dict[str, float] = {}
    for name, one_tx, mem in (
        ("insert, staged table committed before BEGIN", False, limit),
        ("insert, staged table created in the same transaction (as cxloop)", True, limit),
        ("insert, same transaction, memory_limit 4GB", True, "4GB"),
    ):
        db = work / "insert.duckdb"
        db.unlink(missing_ok=True)
        conn = duckdb.connect(str(db), config={"memory_limit": mem})
        conn.execute(f"CREATE TABLE main.order_lines ({STORE_COLUMNS})")
        if one_tx:
            conn.execute("BEGIN")
        conn.execute("CREATE TEMP TABLE cx_out AS " + STAGED.format(hash=MD5, parquet=parquet))
        if not one_tx:
            conn.execute("BEGIN")
        timed(
            results,
            name,
            lambda conn=conn: conn.execute(
                "INSERT INTO main.order_lines SELECT *, 'c0ffee0123456789c0ffee0123456789' FROM cx_out"
            ),
        )
        conn.execute("COMMIT")
        conn.close()
        db.unlink(missing_ok=True)
    return results


def parse_variants(csv: Path, limit: str) -> dict[str, float]:
    import duckdb

    conn = duckdb.connect(config={"memory_limit": limit})
    conn.execute("SET TimeZone = 'UTC'")
    conn.execute(f"CREATE TABLE r AS SELECT * FROM read_csv('{csv}', all_varchar = true)")
    results: dict[str, float] = {}
    b = "NULLIF(trim(line_no), '')"
    d38, d18 = f"TRY_CAST({b} AS DECIMAL(38, 4))", f"TRY_CAST({b} AS DECIMAL(18, 4))"
    exprs = {
        "line_no: CASE over TRY_CAST DECIMAL(38,4) (cxloop before 13:17)": (
            f"CASE WHEN {d38} = floor({d38}) AND abs({d38}) < 2147483648 THEN CAST({d38} AS INTEGER) END"
        ),
        "line_no: one TRY_CAST DECIMAL(38,4)": d38,
        "line_no: one TRY_CAST DECIMAL(18,4)": d18,
        "line_no: TRY_CAST DOUBLE = TRY_CAST INTEGER (cxloop now)": (
            f"CASE WHEN TRY_CAST({b} AS DOUBLE) = TRY_CAST({b} AS INTEGER) THEN TRY_CAST({b} AS INTEGER) END"
        ),
        "line_no: TRY_CAST INTEGER": f"TRY_CAST({b} AS INTEGER)",
        "3 decimals: TRY_CAST DECIMAL(18,4)": ", ".join(
            f"TRY_CAST(NULLIF(trim({c}), '') AS DECIMAL(18, 4))" for c in ("quantity", "unit_price", "amount")
        ),
        "ordered_at: timezone('UTC', TRY_CAST TIMESTAMPTZ)": (
            "timezone('UTC', TRY_CAST(NULLIF(trim(ordered_at), '') AS TIMESTAMPTZ))"
        ),
        "ordered_at: TRY_CAST TIMESTAMP": "TRY_CAST(NULLIF(trim(ordered_at), '') AS TIMESTAMP)",
        "5 text fields: NULLIF(trim())": ", ".join(
            f"NULLIF(trim({c}), '')"
            for c in ("order_id", "product_id", "product_name", "category", "customer_id")
        ),
        "size and NUL checks, 10 columns": " OR ".join(
            f"strlen({c}) > 1000000 OR contains({c}, chr(0))" for c in COLUMNS
        ),
    }
    for name, expr in exprs.items():
        timed(
            results,
            name,
            lambda expr=expr: conn.execute(f"SELECT count(({expr})) FROM r").fetchone(),
            repeat=3,
        )
    conn.close()
    return results


def hash_variants(parquet: Path, work: Path, limit: str) -> dict[str, float]:
    import duckdb

    conn = duckdb.connect(str(work / "hash.duckdb"), config={"memory_limit": limit})
    results: dict[str, float] = {}
    parts = ", ".join(f"coalesce(CAST({c} AS VARCHAR), chr(30))" for c in CONTENT.split(", "))
    for name, expr in (
        ("stage output rows, no hash", "NULL"),
        ("stage output rows + md5 (cxloop)", MD5),
        ("stage output rows + md5_number", f"md5_number(concat_ws(chr(31), {parts}))"),
        ("stage output rows + hash() (64-bit)", f"hash({CONTENT})"),
    ):
        timed(
            results,
            name,
            lambda expr=expr: conn.execute(
                "CREATE OR REPLACE TEMP TABLE h AS " + STAGED.format(hash=expr, parquet=parquet)
            ),
            repeat=2,
        )
    conn.close()
    return results


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m benchmarks.duckdb_variants", description=__doc__.split("\n")[0]
    )
    p.add_argument("--lines", type=int, default=1_000_000)
    p.add_argument("--csv", help="an order-lines CSV from benchmarks.import_speed")
    p.add_argument("--parquet", help="the same rows as Parquet")
    p.add_argument("--seed", type=int, default=20240331)
    p.add_argument("--only", default="insert,parse,hash")
    p.add_argument("--memory-limit", default="1GB", help="as cxloop's CXLOOP_IMPORT_MEMORY_LIMIT")
    p.add_argument("--out", help="write the timings as JSON here")
    args = p.parse_args(argv)
    only = set(args.only.split(","))
    out: dict[str, Any] = {"memory_limit": args.memory_limit}
    with tempfile.TemporaryDirectory(prefix="cxduckvar-") as tmp:
        work = Path(tmp)
        files: dict[str, Path] = {}
        if args.csv:
            files["csv"] = Path(args.csv)
        if args.parquet:
            files["parquet"] = Path(args.parquet)
        missing = {"csv", "parquet"} - set(files)
        if missing:
            files.update(generate(work, args.lines, args.seed, missing))
        if "insert" in only:
            print("insert:", flush=True)
            out["insert"] = insert_variants(files["parquet"], work, args.memory_limit)
        if "parse" in only:
            print("parse (best of 3):", flush=True)
            out["parse"] = parse_variants(files["csv"], args.memory_limit)
        if "hash" in only:
            print("hash (best of 2):", flush=True)
            out["hash"] = hash_variants(files["parquet"], work, args.memory_limit)
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps(out, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
