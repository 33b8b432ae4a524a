"""Diagnostic: what the PostgreSQL side of a bulk load costs, table shape by table shape.

Streams the same order-lines CSV with ``COPY ... FROM STDIN (FORMAT csv)`` (psycopg, 1 MiB chunks,
exactly as cxloop and the import_speed baseline do) into tables that differ only in their key:

* ``bare``      no index (the import_speed baseline);
* ``pk``        PRIMARY KEY (order_id, line_no) in the database's default collation (what cxloop's
                 ``order_lines`` has on PostgreSQL);
* ``pk_c``      the same key with ``order_id COLLATE "C"`` (byte order: no locale comparisons);
* ``pk_after``  COPY into the bare table, then ``ADD PRIMARY KEY`` in the same transaction (what an
                 importer could do when the table is empty, i.e. on a first load).

Usage::

    python -m benchmarks.pg_copy_variants --lines 10000000
    python -m benchmarks.pg_copy_variants --file /path/to/order-lines.csv

Everything happens in a scratch schema that is dropped at the end. cxloop is not used.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks.import_speed import COLUMNS, COPY_CHUNK, DEFAULT_PG, generate, pg_schema

COLUMN_TYPES = (
    "order_id text{collate}, line_no integer, ordered_at timestamp, customer_id text, product_id text, "
    "product_name text, category text, quantity numeric(18, 4), unit_price numeric(18, 4), "
    "amount numeric(18, 4)"
)
VARIANTS = {
    "bare": (COLUMN_TYPES.format(collate=""), None),
    "pk": (COLUMN_TYPES.format(collate="") + ", PRIMARY KEY (order_id, line_no)", None),
    "pk_c": (COLUMN_TYPES.format(collate=' COLLATE "C"') + ", PRIMARY KEY (order_id, line_no)", None),
    "pk_after": (COLUMN_TYPES.format(collate=""), "ALTER TABLE t ADD PRIMARY KEY (order_id, line_no)"),
}


def copy_variant(url: str, name: str, path: Path) -> dict[str, Any]:
    import psycopg

    columns, after = VARIANTS[name]
    with psycopg.connect(url) as conn:
        with conn.cursor() as cur:
            cur.execute("DROP TABLE IF EXISTS t")
            cur.execute(f"CREATE TABLE t ({columns})")
        conn.commit()
        t0 = time.perf_counter()
        with conn.cursor() as cur:
            with (
                cur.copy(f"COPY t ({', '.join(COLUMNS)}) FROM STDIN (FORMAT csv, HEADER true)") as copy,
                path.open("rb") as src,
            ):
                while data := src.read(COPY_CHUNK):
                    copy.write(data)
            copied = time.perf_counter() - t0
            if after:
                cur.execute(after)
        conn.commit()
        seconds = time.perf_counter() - t0
        with conn.cursor() as cur:
            cur.execute("SELECT count(*), pg_total_relation_size('t') FROM t")
            rows, size = cur.fetchone() or (0, 0)
            cur.execute("DROP TABLE t")
        conn.commit()
    return {"variant": name, "seconds": seconds, "copy_seconds": copied, "rows": rows, "bytes": size}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m benchmarks.pg_copy_variants", description=__doc__.split("\n")[0]
    )
    p.add_argument("--file", help="an order-lines CSV (from benchmarks.import_speed --keep)")
    p.add_argument("--lines", type=int, default=1_000_000, help="generate this many lines if no --file")
    p.add_argument("--seed", type=int, default=20240331)
    p.add_argument("--pg-url", default=DEFAULT_PG)
    p.add_argument("--variants", default=",".join(VARIANTS), help=f"comma list of {', '.join(VARIANTS)}")
    p.add_argument("--out", help="write the timings as JSON here")
    args = p.parse_args(argv)
    results = []
    with tempfile.TemporaryDirectory(prefix="cxpgcopy-") as tmp:
        path = Path(args.file) if args.file else generate(Path(tmp), args.lines, args.seed, {"csv"})["csv"]
        with pg_schema(args.pg_url, f"cxbench_copy_{os.getpid()}", keep=False) as url:
            for name in args.variants.split(","):
                r = copy_variant(url, name.strip(), path)
                results.append(r)
                print(
                    f"{r['variant']:<10} {r['rows']:>11,} rows  {r['seconds']:7.1f}s "
                    f"(COPY {r['copy_seconds']:.1f}s)  {r['rows'] / r['seconds']:>9,.0f} rows/s  "
                    f"{r['bytes'] / 2**20:,.0f} MiB",
                    flush=True,
                )
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps({"file": str(path), "results": results}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
