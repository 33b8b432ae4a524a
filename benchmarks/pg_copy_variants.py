"""Diagnostic: what the PostgreSQL side of a bulk load costs, table shape by table shape.

Streams the same order-lines CSV with ``COPY ... FROM STDIN (FORMAT csv)`` (psycopg, 1 MiB chunks,
exactly as cxloop and the import_speed baseline do) into tables that differ only in their key:

* ``bare``      no index (the import_speed baseline);
* ``pk``        PRIMARY KEY (order_id, line_no) in the database's default collation (what cxloop's
                 ``order_lines`` has on PostgreSQL);
* ``pk_c``      the same key with ``order_id COLLATE "C"`` (byte order: no locale comparisons);
* ``pk_after``  COPY into the bare table, then ``ADD PRIMARY KEY`` in the same transaction (what an
                 importer could do when the table is empty, i.e. on a first load).
* ``cx_lines``  what cxloop's first load writes for the lines: ``order_lines``' own columns (no
                 order-level fields, but ``source``, a 32-character ``row_hash`` and ``import_id``),
                 key added after the COPY;
* ``cx_orders`` the 3.33M orders cxloop derives from the lines (one per order, with ``source``,
                 ``row_hash`` and ``import_id``), key added after the COPY. ``cx_lines`` + ``cx_orders``
                 is the PostgreSQL work of a cxloop first load alone, without any validation.

The ``cx_*`` files are made from the order-lines CSV with DuckDB first (not timed). Besides the
wall time, the CPU time of the PostgreSQL backend is reported (read from /proc when the server
runs on this machine), which hardly depends on what else the machine runs.

Usage::

    python -m benchmarks.pg_copy_variants --lines 10000000
    python -m benchmarks.pg_copy_variants --file /path/to/order-lines.csv

Everything happens in a scratch schema that is dropped at the end. cxloop is not used.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks.import_speed import COLUMNS, COPY_CHUNK, DEFAULT_PG, generate, pg_backend_cpu, pg_schema

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
    "cx_lines": (
        "order_id text, line_no integer, product_id text, product_name text, category text, "
        "quantity numeric(18, 4), unit_price numeric(18, 4), amount numeric(18, 4), source text, "
        "row_hash text, import_id text",
        "ALTER TABLE t ADD PRIMARY KEY (order_id, line_no)",
    ),
    "cx_orders": (
        "order_id text, customer_id text, ordered_at timestamp, status text, channel text, "
        "currency text, country text, total_amount numeric(18, 4), source text, row_hash text, "
        "import_id text",
        "ALTER TABLE t ADD PRIMARY KEY (order_id)",
    ),
}
IMPORT_ID = "0123456789abcdef0123456789abcdef"
CX_FILES = {
    "cx_lines": (
        "SELECT order_id, line_no, product_id, product_name, category, quantity, unit_price, amount, "
        "'default' AS source, md5(concat_ws(chr(31), order_id, line_no, product_id, product_name, "
        f"category, quantity, unit_price, amount)) AS row_hash, '{IMPORT_ID}' AS import_id FROM {{csv}}"
    ),
    "cx_orders": (
        "SELECT order_id, customer_id, ordered_at, NULL AS status, NULL AS channel, NULL AS currency, "
        "NULL AS country, NULL AS total_amount, 'default' AS source, "
        "md5(concat_ws(chr(31), order_id, customer_id, ordered_at)) AS row_hash, "
        f"'{IMPORT_ID}' AS import_id FROM (SELECT order_id, min(customer_id) AS customer_id, "
        "min(ordered_at) AS ordered_at FROM {csv} GROUP BY order_id)"
    ),
}


def cx_file(name: str, path: Path, workdir: Path) -> Path:
    """The CSV cxloop would COPY for ``name`` (made once, beside nothing else: not timed)."""
    import duckdb

    out = workdir / f"{name}.csv"
    if not out.exists():
        sql = CX_FILES[name].format(csv=f"read_csv('{path}', all_varchar = true)")
        with duckdb.connect() as conn:
            conn.execute(f"COPY ({sql}) TO '{out}' (FORMAT csv, HEADER true)")
    return out


def copy_variant(url: str, name: str, path: Path) -> dict[str, Any]:
    import psycopg

    columns, after = VARIANTS[name]
    # Split at the commas between columns, not those inside numeric(18, 4).
    names = [c.split()[0] for c in re.split(r",\s*(?![^()]*\))", columns) if not c.startswith("PRIMARY")]
    names = list(COLUMNS) if name in ("bare", "pk", "pk_c", "pk_after") else names
    with psycopg.connect(url) as conn:
        with conn.cursor() as cur:
            cur.execute("DROP TABLE IF EXISTS t")
            cur.execute(f"CREATE TABLE t ({columns})")
        conn.commit()
        _, cpu0 = pg_backend_cpu(conn)
        t0 = time.perf_counter()
        with conn.cursor() as cur:
            with (
                cur.copy(f"COPY t ({', '.join(names)}) FROM STDIN (FORMAT csv, HEADER true)") as copy,
                path.open("rb") as src,
            ):
                while data := src.read(COPY_CHUNK):
                    copy.write(data)
            copied = time.perf_counter() - t0
            if after:
                cur.execute(after)
        conn.commit()
        seconds = time.perf_counter() - t0
        _, cpu1 = pg_backend_cpu(conn)
        with conn.cursor() as cur:
            cur.execute("SELECT count(*), pg_total_relation_size('t') FROM t")
            rows, size = cur.fetchone() or (0, 0)
            cur.execute("DROP TABLE t")
        conn.commit()
    cpu = None if cpu0 is None or cpu1 is None else cpu1 - cpu0
    return {
        "variant": name,
        "seconds": seconds,
        "copy_seconds": copied,
        "backend_cpu_seconds": cpu,
        "rows": rows,
        "bytes": size,
        "loadavg_1m_after": os.getloadavg()[0],
    }


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
            for name in (n.strip() for n in args.variants.split(",")):
                source = cx_file(name, path, Path(tmp)) if name in CX_FILES else path
                r = copy_variant(url, name, source)
                results.append(r)
                cpu = r["backend_cpu_seconds"]
                print(
                    f"{r['variant']:<10} {r['rows']:>11,} rows  {r['seconds']:7.1f}s "
                    f"(COPY {r['copy_seconds']:.1f}s)  {r['rows'] / r['seconds']:>9,.0f} rows/s  "
                    f"{r['bytes'] / 2**20:,.0f} MiB  backend CPU "
                    f"{'-' if cpu is None else f'{cpu:.1f}s'}  load {r['loadavg_1m_after']:.1f}",
                    flush=True,
                )
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps({"file": str(path), "results": results}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
