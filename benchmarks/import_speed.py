"""Benchmark: import N order lines (issue "import 10M order lines") into DuckDB and PostgreSQL.

Run from the project root (the venv active)::

    python -m benchmarks.import_speed                       # 10M lines, both backends, CSV and Parquet
    python -m benchmarks.import_speed --lines 100000        # smoke run, well under a minute
    python -m benchmarks.import_speed --lines 10000000 --backends duckdb,postgres \
        --formats csv,parquet --out benchmarks/results/import.json

What it does:

1. Generates (seeded numpy, vectorised, in chunks of ~1M lines so memory stays flat) an
   order-lines export: order_id, line_no, ordered_at, customer_id, product_id, product_name,
   category, quantity, unit_price, amount — about 3 lines per order. ``ordered_at`` is present, so
   importing ``order-lines`` also makes the orders from the lines (the line-level-invoice path).
   The same rows are written as CSV and as Parquet.
2. For each backend x format, in a fresh store (a new DuckDB file / a new PostgreSQL schema),
   times ``import_file(store, "order-lines", path, ImportOptions(rejects_dir=...))`` with
   validation on, in a child process so that the peak RSS (``ru_maxrss``) is that import's alone.
3. Baselines on the same file, also each in a child process: DuckDB's own
   ``CREATE TABLE t AS SELECT * FROM read_csv(...)`` / ``read_parquet(...)`` into a fresh DuckDB
   file, and a bare PostgreSQL ``COPY ... FROM STDIN (FORMAT csv)`` of the CSV into an unindexed
   table (streamed in 1 MiB chunks with psycopg). For Parquet -> PostgreSQL the baseline is still
   the bare COPY of the CSV of the same rows (PostgreSQL cannot read Parquet).
4. Re-imports the same file into the same store (everything unchanged) and times that too.
5. Prints a table (target: cxloop <= 2.0x the baseline and peak RSS < 2048 MB) and writes JSON.

``--profile`` additionally times every DuckDB statement and the Python-side steps (encoding
check, file hash, PostgreSQL COPYs) of each cxloop import and prints where the time goes.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import inspect
import json
import os
import platform
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_PG = "postgresql://postgres@127.0.0.1:5432/test"
TARGET_RATIO = 2.0
TARGET_RSS_MB = 2048.0
COPY_CHUNK = 1 << 20
CHUNK_LINES = 1_000_000

COLUMNS = (
    "order_id",
    "line_no",
    "ordered_at",
    "customer_id",
    "product_id",
    "product_name",
    "category",
    "quantity",
    "unit_price",
    "amount",
)
# The bare-COPY baseline table: the same columns, the types cxloop stores them as, no index.
BARE_TABLE_SQL = (
    "CREATE TABLE order_lines_bare (order_id text, line_no integer, ordered_at timestamp, "
    "customer_id text, product_id text, product_name text, category text, "
    "quantity numeric(18, 4), unit_price numeric(18, 4), amount numeric(18, 4))"
)
CATEGORIES = (
    "Apparel", "Shoes", "Accessories", "Home", "Kitchen", "Garden", "Toys", "Books", "Music",
    "Electronics", "Computers", "Phones", "Beauty", "Health", "Sports", "Outdoors", "Grocery",
    "Pet Supplies", "Office", "Automotive",
)  # fmt: skip
ADJECTIVES = (
    "Classic", "Organic", "Premium", "Compact", "Deluxe", "Eco", "Vintage", "Smart", "Ultra",
    "Soft", "Heavy-Duty", "Portable", "Wireless", "Handmade", "Essential", "Travel",
)  # fmt: skip
NOUNS = (
    "T-Shirt", "Sneaker", "Backpack", "Mug", "Lamp", "Blender", "Notebook", "Headphones",
    "Water Bottle", "Desk Chair", "Yoga Mat", "Candle", "Umbrella", "Wallet", "Jacket", "Kettle",
    "Speaker", "Pillow", "Watch", "Sunglasses",
)  # fmt: skip


# ====================================================================== data generation


def generate(workdir: Path, lines: int, seed: int, formats: set[str]) -> dict[str, Path]:
    """Write ``lines`` order lines as CSV and/or Parquet; return {format: path}."""
    # Imported here, not at module level, so that the measured child processes stay lean.
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.csv as pacsv
    import pyarrow.parquet as pq

    rng = np.random.default_rng(seed)
    n_products = max(100, min(50_000, lines // 10))
    n_customers = max(100, lines // 15)  # ~5 orders per customer
    est_orders = max(1, lines // 3)
    span_s = 2 * 365 * 86_400  # two years of orders
    step_s = span_s / est_orders
    start = np.datetime64("2023-01-01T00:00:00", "s")

    product_ids = pc.utf8_lpad(pa.array(np.arange(1, n_products + 1)).cast(pa.string()), 6, "0")
    product_ids = pc.binary_join_element_wise("SKU-", product_ids, "")
    product_names = pa.array(
        [
            f"{ADJECTIVES[i % len(ADJECTIVES)]} {NOUNS[(i // len(ADJECTIVES)) % len(NOUNS)]} {i + 1}"
            for i in range(n_products)
        ]
    )
    product_category = pa.array([CATEGORIES[i] for i in rng.integers(0, len(CATEGORIES), n_products)])
    price_cents = np.clip(np.round(rng.lognormal(3.0, 0.9, n_products) * 100), 50, 500_000).astype(np.int64)

    paths: dict[str, Path] = {}
    csv_path = workdir / "order-lines.csv"
    pq_path = workdir / "order-lines.parquet"
    csv_out = None
    pq_out = None
    if "csv" in formats:
        csv_out = csv_path.open("wb")
        csv_out.write((",".join(COLUMNS) + "\n").encode())
        paths["csv"] = csv_path
    written = 0
    order_base = 0
    try:
        while written < lines:
            # Orders of 1-5 lines (3 on average) until the chunk holds ~CHUNK_LINES lines
            # (``want`` orders always suffice: each has at least one line).
            want = min(CHUNK_LINES, lines - written)
            sizes = rng.integers(1, 6, size=want)
            cum = np.cumsum(sizes)
            k = int(np.searchsorted(cum, want, side="left")) + 1
            sizes = sizes[:k]
            sizes[-1] -= int(cum[k - 1]) - want  # the last order of the file may be cut short
            n = want
            order_idx = np.repeat(np.arange(order_base, order_base + k), sizes)
            firsts = np.repeat(np.cumsum(sizes) - sizes, sizes)
            line_no = (np.arange(n) - firsts + 1).astype(np.int32)
            # Order-level values (one per order, repeated on its lines).
            cust = np.repeat(rng.integers(1, n_customers + 1, size=k), sizes)
            at = start + (np.arange(order_base, order_base + k) * step_s).astype(np.int64)
            at = at + rng.integers(0, max(1, int(step_s)), size=k)
            ordered_at = np.repeat(at.astype("datetime64[s]"), sizes)
            # Line-level values.
            product = rng.integers(0, n_products, size=n)
            qty = rng.integers(1, 6, size=n).astype(np.int32)
            qty[rng.random(n) < 0.02] *= -1  # 2% returns
            unit_cents = price_cents[product]
            amount_cents = qty.astype(np.int64) * unit_cents
            order_ids = pc.binary_join_element_wise(
                "SO", pc.utf8_lpad(pa.array(order_idx + 1).cast(pa.string()), 9, "0"), ""
            )
            customer_ids = pc.binary_join_element_wise(
                "C", pc.utf8_lpad(pa.array(cust).cast(pa.string()), 8, "0"), ""
            )
            prod = pa.array(product)
            table = pa.table(
                {
                    "order_id": order_ids,
                    "line_no": pa.array(line_no),
                    "ordered_at": pa.array(ordered_at, pa.timestamp("s")),
                    "customer_id": customer_ids,
                    "product_id": pc.take(product_ids, prod),
                    "product_name": pc.take(product_names, prod),
                    "category": pc.take(product_category, prod),
                    "quantity": pa.array(qty),
                    "unit_price": pa.array(unit_cents / 100.0).cast(pa.decimal128(12, 2)),
                    "amount": pa.array(amount_cents / 100.0).cast(pa.decimal128(12, 2)),
                }
            )
            if csv_out is not None:
                pacsv.write_csv(
                    table,
                    csv_out,
                    pacsv.WriteOptions(include_header=False, quoting_style="needed"),
                )
            if "parquet" in formats:
                if pq_out is None:
                    pq_out = pq.ParquetWriter(pq_path, table.schema, compression="snappy")
                    paths["parquet"] = pq_path
                pq_out.write_table(table, row_group_size=CHUNK_LINES)
            written += n
            order_base += k
    finally:
        if csv_out is not None:
            csv_out.close()
        if pq_out is not None:
            pq_out.close()
    return paths


# ====================================================================== child processes


def peak_rss_mb() -> float:
    """This process's peak resident set size, in MiB.

    ``VmHWM`` from /proc is the high-water mark of this process's own address space. We do not use
    ``getrusage(RUSAGE_SELF).ru_maxrss`` for it: on Linux a child started by fork/vfork + exec
    inherits the parent's high-water mark there (a 9 MB child of an 800 MB parent reports 810 MB),
    so it would report the benchmark parent's memory, not the import's.
    """
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024.0  # kB
    except OSError:
        pass
    return ru_maxrss_mb()


def ru_maxrss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # KiB on Linux


def cpu_seconds() -> float:
    """User + system CPU time of this process so far (every thread: DuckDB's workers too).

    Far less sensitive than wall time to other work on a shared machine: it counts what this
    process computed, not how long it waited for a core.
    """
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def process_cpu_seconds(pid: int) -> float | None:
    """User + system CPU time of another process on this machine (a PostgreSQL backend)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None  # PostgreSQL on another machine: its CPU is not measured
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def pg_backend_cpu(conn: Any) -> tuple[int, float | None]:
    """(pid, CPU seconds so far) of the PostgreSQL backend serving a psycopg connection."""
    row = conn.execute("SELECT pg_backend_pid()").fetchone()
    pid = int(row[0])
    return pid, process_cpu_seconds(pid)


def child_main(args: argparse.Namespace) -> dict[str, Any]:
    if args.case == "cxloop":
        return child_cxloop(args)
    if args.case == "duckdb-baseline":
        return child_duckdb_baseline(args)
    if args.case == "pg-copy":
        return child_pg_copy(args)
    raise SystemExit(f"unknown case {args.case!r}")


def child_cxloop(args: argparse.Namespace) -> dict[str, Any]:
    from cxloop.ingest.pipeline import ImportOptions, import_file
    from cxloop.store.store import Store

    profiler = Profiler() if args.profile else None
    code = src_digest()
    t0 = time.perf_counter()
    store = Store.open(args.store)
    open_s = time.perf_counter() - t0
    memory_limit = store.settings.import_memory_limit
    steps: dict[str, float] = {}
    current: list[Any] = [None, 0.0]

    def on_step(name: str) -> None:
        now = time.perf_counter()
        if current[0] is not None:
            steps[current[0]] = steps.get(current[0], 0.0) + now - current[1]
        current[0], current[1] = name, now
        if profiler:
            profiler.phase = name

    backends = _watch_pg_backends()
    with profiler.installed() if profiler else contextlib.nullcontext(), backends:
        cpu0 = cpu_seconds()
        t0 = time.perf_counter()
        result = import_file(
            store,
            "order-lines",
            Path(args.file),
            ImportOptions(rejects_dir=Path(args.rejects)),
            on_step=on_step,
        )
        import_seconds = time.perf_counter() - t0
        pg_cpu = backends.cpu_used()
        # Closing is part of the import a user waits for (the CLI closes the store before it
        # exits; DuckDB checkpoints then), as it is part of the baseline's time.
        t0 = time.perf_counter()
        store.close()
        close_seconds = time.perf_counter() - t0
        cpu = cpu_seconds() - cpu0
    on_step("done")
    rss = peak_rss_mb()
    store = Store.open(args.store)
    with store.engine.connect() as conn:
        from sqlalchemy import text

        stored_lines = conn.execute(text("SELECT count(*) FROM order_lines")).scalar_one()
        stored_orders = conn.execute(text("SELECT count(*) FROM orders")).scalar_one()
    store.close()
    out: dict[str, Any] = {
        "seconds": import_seconds + close_seconds,
        "import_seconds": import_seconds,
        "close_seconds": close_seconds,
        "open_seconds": open_s,
        "cpu_seconds": cpu,
        "pg_backend_cpu_seconds": pg_cpu,
        "total_cpu_seconds": cpu + (pg_cpu or 0.0),
        "peak_rss_mb": rss,
        "ru_maxrss_mb": ru_maxrss_mb(),
        "steps": steps,
        "rows_read": result.rows_read,
        "loaded": result.loaded,
        "updated": result.updated,
        "unchanged": result.unchanged,
        "rejected": result.rejected,
        "tables": {k: vars(v) for k, v in result.tables.items()},
        "stored_order_lines": stored_lines,
        "stored_orders": stored_orders,
        "reject_file": result.reject_file,
        "src_sha256": code,
        "import_memory_limit": memory_limit,
    }
    if profiler:
        out["profile"] = profiler.report()
    return out


class _PgBackends:
    """The PostgreSQL backends cxloop's import transactions ran on, and their CPU time."""

    def __init__(self) -> None:
        self.start: dict[int, float | None] = {}
        self._restore: Any = None

    def __enter__(self) -> _PgBackends:
        from cxloop.store import bulk

        original = bulk.postgres_transaction
        watcher = self

        @contextlib.contextmanager
        def watched(*a: Any, **kw: Any) -> Iterator[Any]:
            with original(*a, **kw) as tx:
                pid, cpu = pg_backend_cpu(tx.pg)
                watcher.start.setdefault(pid, cpu)
                yield tx

        bulk.postgres_transaction = watched
        self._restore = (bulk, original)
        return self

    def __exit__(self, *exc: object) -> None:
        owner, original = self._restore
        owner.postgres_transaction = original

    def cpu_used(self) -> float | None:
        """CPU seconds the backends used since the import began (they outlive the transaction:
        the connection goes back to the pool); None on DuckDB or a remote server."""
        used = 0.0
        for pid, start in self.start.items():
            now = process_cpu_seconds(pid)
            if start is None or now is None:
                return None
            used += now - start
        return used if self.start else None


def _watch_pg_backends() -> _PgBackends:
    return _PgBackends()


def child_duckdb_baseline(args: argparse.Namespace) -> dict[str, Any]:
    import duckdb

    reader = "read_parquet" if args.file.endswith(".parquet") else "read_csv"
    cpu0 = cpu_seconds()
    t0 = time.perf_counter()
    conn = duckdb.connect(args.store)
    conn.execute(f"CREATE TABLE t AS SELECT * FROM {reader}('{args.file}')")
    conn.close()
    seconds = time.perf_counter() - t0
    cpu = cpu_seconds() - cpu0
    rss = peak_rss_mb()
    conn = duckdb.connect(args.store, read_only=True)
    row = conn.execute("SELECT count(*) FROM t").fetchone()
    conn.close()
    return {
        "seconds": seconds,
        "cpu_seconds": cpu,
        "total_cpu_seconds": cpu,
        "peak_rss_mb": rss,
        "ru_maxrss_mb": ru_maxrss_mb(),
        "rows": int(row[0]) if row else 0,
    }


def child_pg_copy(args: argparse.Namespace) -> dict[str, Any]:
    import psycopg

    cpu0 = cpu_seconds()
    t0 = time.perf_counter()
    with psycopg.connect(args.store) as conn:
        pid, pg_cpu0 = pg_backend_cpu(conn)
        with conn.cursor() as cur:
            cur.execute("DROP TABLE IF EXISTS order_lines_bare")
            cur.execute(BARE_TABLE_SQL)
            with (
                cur.copy(
                    f"COPY order_lines_bare ({', '.join(COLUMNS)}) FROM STDIN (FORMAT csv, HEADER true)"
                ) as copy,
                open(args.file, "rb") as src,
            ):
                while data := src.read(COPY_CHUNK):
                    copy.write(data)
        conn.commit()
        seconds = time.perf_counter() - t0
        cpu = cpu_seconds() - cpu0
        pg_cpu_now = process_cpu_seconds(pid)
        pg_cpu = None if pg_cpu0 is None or pg_cpu_now is None else pg_cpu_now - pg_cpu0
        rss = peak_rss_mb()
        with conn.cursor() as cur:
            cur.execute("SELECT count(*) FROM order_lines_bare")
            row = cur.fetchone()
            cur.execute("DROP TABLE order_lines_bare")
    return {
        "seconds": seconds,
        "cpu_seconds": cpu,
        "pg_backend_cpu_seconds": pg_cpu,
        "total_cpu_seconds": cpu + (pg_cpu or 0.0),
        "peak_rss_mb": rss,
        "ru_maxrss_mb": ru_maxrss_mb(),
        "rows": int(row[0]) if row else 0,
    }


# ---------------------------------------------------------------------- profiling (child side)


class TimedConnection:
    """Wraps a DuckDB connection and times each ``execute`` (DuckDB runs a statement eagerly)."""

    def __init__(self, conn: Any, profiler: Profiler) -> None:
        self._conn = conn
        self._profiler = profiler

    def execute(self, sql: str, *args: Any, **kwargs: Any) -> Any:
        t0 = time.perf_counter()
        try:
            return self._conn.execute(sql, *args, **kwargs)
        finally:
            self._profiler.add("sql", _label(sql), time.perf_counter() - t0)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._conn, name)


def _label(sql: str) -> str:
    text = " ".join(sql.split())
    return text if len(text) <= 110 else text[:107] + "..."


class Profiler:
    """Per-phase timings of DuckDB statements and of selected Python-side functions."""

    def __init__(self) -> None:
        self.phase = "start"
        self.entries: list[dict[str, Any]] = []
        self._depth = 0

    def add(self, kind: str, label: str, seconds: float) -> None:
        self.entries.append(
            {"phase": self.phase, "kind": kind, "label": label, "seconds": seconds, "depth": self._depth}
        )

    @contextlib.contextmanager
    def installed(self) -> Iterator[None]:
        from cxloop.ingest import encoding, pipeline, readers
        from cxloop.store import bulk

        patches: list[tuple[Any, str, Any]] = []

        def wrap(owner: Any, name: str, label: str) -> None:
            if not hasattr(owner, name):  # the core moved on: profile what is still there
                print(f"profile: {owner.__name__}.{name} not found, not timed", file=sys.stderr)
                return
            original = getattr(owner, name)
            profiler = self

            def timed(*a: Any, **kw: Any) -> Any:
                profiler._depth += 1
                t0 = time.perf_counter()
                try:
                    return original(*a, **kw)
                finally:
                    profiler._depth -= 1
                    profiler.add("py", label, time.perf_counter() - t0)

            static = inspect.getattr_static(owner, name)
            patches.append((owner, name, static))
            setattr(owner, name, staticmethod(timed) if isinstance(static, staticmethod) else timed)

        wrap(encoding, "detect", "python: encoding.detect (whole-file UTF-8 check)")
        wrap(pipeline, "_sha256", "python: sha256 of the file")
        wrap(bulk.PostgresTransaction, "_copy_in", "python+pg: COPY csv -> PostgreSQL")
        wrap(bulk.PostgresTransaction, "lock", "pg: LOCK TABLEs")
        wrap(readers.LineLocator, "_is_simple", "python: count newlines (LineLocator)")
        original_staging = pipeline._staging

        @contextlib.contextmanager
        def timed_staging(store: Any, workdir: Path) -> Iterator[Any]:
            with original_staging(store, workdir) as conn:
                yield TimedConnection(conn, self)

        patches.append((pipeline, "_staging", original_staging))
        pipeline._staging = timed_staging
        # The PG COPY OUT in PostgresTransaction.lookup is timed as the whole lookup minus its
        # DuckDB statements (see report()).
        wrap(bulk.PostgresTransaction, "lookup", "pg: lookup (keys out, COPY in, COPY out, read back)")
        wrap(bulk.PostgresTransaction, "write", "pg: write (export new/changed, COPY in, UPDATE)")
        try:
            yield
        finally:
            for owner, name, original in reversed(patches):
                setattr(owner, name, original)

    def report(self) -> list[dict[str, Any]]:
        return self.entries


# ====================================================================== the parent


def run_child(
    case: str,
    *,
    file: Path,
    store: str,
    rejects: Path | None = None,
    profile: bool = False,
    import_memory_limit: str | None = None,
) -> dict[str, Any]:
    cmd = [
        sys.executable,
        "-m",
        "benchmarks.import_speed",
        "--case",
        case,
        "--file",
        str(file),
        "--store",
        store,
    ]
    if rejects is not None:
        cmd += ["--rejects", str(rejects)]
    if profile:
        cmd.append("--profile")
    t0 = time.perf_counter()
    env = dict(os.environ)
    if import_memory_limit:
        env["CXLOOP_IMPORT_MEMORY_LIMIT"] = import_memory_limit
    proc = subprocess.run(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, text=True, check=False)
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        raise RuntimeError(f"child {case} failed (exit {proc.returncode}); its stderr is above")
    last = proc.stdout.strip().splitlines()[-1]
    out: dict[str, Any] = json.loads(last)
    out["process_seconds"] = wall
    # The machine may be shared (2 cores): keep the 1-minute load average next to each figure.
    out["loadavg_1m_after"] = os.getloadavg()[0]
    return out


def pg_url(base: str, schema: str) -> str:
    sep = "&" if "?" in base else "?"
    return f"{base}{sep}options=-csearch_path%3D{schema}"


@contextlib.contextmanager
def pg_schema(base: str, name: str, keep: bool) -> Iterator[str]:
    import psycopg

    with psycopg.connect(base, autocommit=True) as conn:
        conn.execute(f'DROP SCHEMA IF EXISTS "{name}" CASCADE')
        conn.execute(f'CREATE SCHEMA "{name}"')
    try:
        yield pg_url(base, name)
    finally:
        if not keep:
            with psycopg.connect(base, autocommit=True) as conn:
                conn.execute(f'DROP SCHEMA IF EXISTS "{name}" CASCADE')


def log(msg: str) -> None:
    print(f"[{dt.datetime.now():%H:%M:%S}] {msg}", file=sys.stderr, flush=True)


def versions(pg_base: str | None) -> dict[str, str]:
    import duckdb
    import numpy as np
    import pyarrow as pa

    out = {
        "python": platform.python_version(),
        "duckdb": duckdb.__version__,
        "pyarrow": pa.__version__,
        "numpy": np.__version__,
    }
    try:
        import cxloop

        out["cxloop"] = getattr(cxloop, "__version__", "")
    except ImportError:
        pass
    if pg_base:
        import psycopg

        out["psycopg"] = psycopg.__version__
        with psycopg.connect(pg_base) as conn:
            row = conn.execute("SHOW server_version").fetchone()
            out["postgres"] = str(row[0]) if row else "?"
    return out


def code_version() -> dict[str, Any]:
    """Which cxloop was measured: the git commit, whether src/ had local changes, a content hash."""

    def git(*cmd: str) -> str:
        try:
            return subprocess.run(
                ["git", *cmd], cwd=ROOT, capture_output=True, text=True, check=False
            ).stdout.rstrip()
        except OSError:
            return ""

    return {
        "commit": git("rev-parse", "--short", "HEAD"),
        "src_changes": git("status", "--porcelain", "--", "src").splitlines(),
        "src_sha256": src_digest(),
    }


def src_digest() -> str:
    """A hash of src/cxloop/**/*.py, recorded per measured import (others edit the core meanwhile)."""
    import hashlib

    digest = hashlib.sha256()
    for path in sorted((ROOT / "src" / "cxloop").rglob("*.py")):
        digest.update(str(path.relative_to(ROOT)).encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def parent_main(args: argparse.Namespace) -> int:
    backends = [b.strip() for b in args.backends.split(",") if b.strip()]
    formats = [f.strip() for f in args.formats.split(",") if f.strip()]
    for b in backends:
        if b not in ("duckdb", "postgres"):
            raise SystemExit(f"unknown backend {b!r}: use duckdb, postgres")
    for f in formats:
        if f not in ("csv", "parquet"):
            raise SystemExit(f"unknown format {f!r}: use csv, parquet")
    workdir = Path(args.workdir) if args.workdir else Path(tempfile.mkdtemp(prefix="cxbench-"))
    workdir.mkdir(parents=True, exist_ok=True)
    made_workdir = not args.workdir
    tag = f"cxbench_{os.getpid()}"
    results: dict[str, Any] = {
        "issue": "import 10M order lines",
        "date": dt.datetime.now().astimezone().isoformat(timespec="seconds"),
        "command": "python -m benchmarks.import_speed " + " ".join(sys.argv[1:]),
        "lines": args.lines,
        "seed": args.seed,
        "machine": {
            "cpus": os.cpu_count(),
            "ram_gb": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1),
            "platform": platform.platform(),
        },
        "versions": versions(args.pg_url if "postgres" in backends else None),
        "code": code_version(),
        "targets": {"max_ratio": TARGET_RATIO, "max_peak_rss_mb": TARGET_RSS_MB},
        "import_memory_limit": args.import_memory_limit or os.environ.get("CXLOOP_IMPORT_MEMORY_LIMIT"),
        "cases": [],
    }
    try:
        need = set(formats) | ({"csv"} if "postgres" in backends else set())
        log(f"generating {args.lines:,} order lines ({', '.join(sorted(need))}) in {workdir}")
        t0 = time.perf_counter()
        files = generate(workdir, args.lines, args.seed, need)
        results["generate_seconds"] = time.perf_counter() - t0
        results["files"] = {f: {"path": str(p), "bytes": p.stat().st_size} for f, p in files.items()}
        log(
            f"generated in {results['generate_seconds']:.1f}s: "
            + ", ".join(f"{f} {p.stat().st_size / 2**20:,.0f} MiB" for f, p in files.items())
        )
        pg_copy: dict[str, Any] | None = None
        duck_base: dict[str, dict[str, Any]] = {}
        for backend in backends:
            for fmt in formats:
                case = f"{backend}:{fmt}"
                path = files[fmt]
                # -- baseline
                baseline: dict[str, Any] | None = None
                if not args.no_baselines:
                    if backend == "duckdb":
                        if fmt not in duck_base:
                            db = workdir / f"baseline-{fmt}.duckdb"
                            db.unlink(missing_ok=True)
                            log(f"{case}: baseline DuckDB CREATE TABLE AS {fmt} reader")
                            duck_base[fmt] = run_child("duckdb-baseline", file=path, store=str(db))
                            duck_base[fmt]["what"] = (
                                f"DuckDB CREATE TABLE t AS SELECT * FROM "
                                f"{'read_parquet' if fmt == 'parquet' else 'read_csv'}(file), fresh file"
                            )
                            db.unlink(missing_ok=True)
                        baseline = duck_base[fmt]
                    else:
                        if pg_copy is None:
                            log(f"{case}: baseline bare PostgreSQL COPY of the CSV")
                            with pg_schema(args.pg_url, f"{tag}_bare", args.keep) as url:
                                pg_copy = run_child("pg-copy", file=files["csv"], store=url)
                            pg_copy["what"] = (
                                "bare COPY order_lines_bare FROM STDIN (FORMAT csv) of the CSV, "
                                "unindexed table, psycopg 1 MiB chunks"
                            )
                        baseline = pg_copy
                # -- cxloop: first import into a fresh store, then the same file again
                rejects = workdir / f"rejects-{backend}-{fmt}"
                with contextlib.ExitStack() as stack:
                    if backend == "duckdb":
                        db = workdir / f"store-{fmt}.duckdb"
                        db.unlink(missing_ok=True)
                        store = str(db)
                    else:
                        store = stack.enter_context(pg_schema(args.pg_url, f"{tag}_{fmt}", args.keep))
                    log(f"{case}: cxloop import into a fresh store")
                    first = run_child(
                        "cxloop",
                        file=path,
                        store=store,
                        rejects=rejects,
                        profile=args.profile,
                        import_memory_limit=args.import_memory_limit,
                    )
                    log(f"{case}: {first['seconds']:.1f}s, peak RSS {first['peak_rss_mb']:.0f} MB")
                    again = None
                    if not args.no_reimport:
                        log(f"{case}: cxloop re-import (unchanged)")
                        again = run_child(
                            "cxloop",
                            file=path,
                            store=store,
                            rejects=rejects,
                            profile=args.profile,
                            import_memory_limit=args.import_memory_limit,
                        )
                        rss = again["peak_rss_mb"]
                        log(f"{case}: re-import {again['seconds']:.1f}s, peak RSS {rss:.0f} MB")
                    if backend == "duckdb" and not args.keep:
                        store_bytes = Path(store).stat().st_size
                        Path(store).unlink(missing_ok=True)
                        Path(store + ".wal").unlink(missing_ok=True)
                    else:
                        store_bytes = None
                results["cases"].append(
                    summarise(case, backend, fmt, args.lines, first, again, baseline, store_bytes)
                )
        print_table(results)
        if args.profile:
            print_profiles(results)
    finally:
        if made_workdir and not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2, default=str) + "\n")
    log(f"results written to {out}")
    return 1 if any(c["pass"] is False for c in results["cases"]) else 0


def summarise(
    case: str,
    backend: str,
    fmt: str,
    lines: int,
    first: dict[str, Any],
    again: dict[str, Any] | None,
    baseline: dict[str, Any] | None,
    store_bytes: int | None,
) -> dict[str, Any]:
    seconds = first["seconds"]
    ratio = seconds / baseline["seconds"] if baseline else None
    base_cpu = baseline.get("total_cpu_seconds") if baseline else None
    cpu_ratio = first["total_cpu_seconds"] / base_cpu if base_cpu else None
    ok_rows = first["loaded"] == lines and first["rejected"] == 0 and first["stored_order_lines"] == lines
    ok_again = again is None or (
        again["unchanged"] == lines
        and again["loaded"] == 0
        and again["updated"] == 0
        and again["stored_order_lines"] == lines
    )
    met_rss = first["peak_rss_mb"] < TARGET_RSS_MB
    # Without a baseline the speed target cannot be judged: the verdict is None (shown as n/a).
    passed: bool | None = ok_rows and ok_again and met_rss
    if passed:
        passed = None if ratio is None else ratio <= TARGET_RATIO
    return {
        "case": case,
        "backend": backend,
        "format": fmt,
        "rows": lines,
        "seconds": seconds,
        "rows_per_s": lines / seconds if seconds else None,
        "peak_rss_mb": first["peak_rss_mb"],
        "baseline": baseline,
        "baseline_seconds": baseline["seconds"] if baseline else None,
        "ratio": ratio,
        "cpu_seconds": first["total_cpu_seconds"],
        "baseline_cpu_seconds": base_cpu,
        "cpu_ratio": cpu_ratio,
        "rows_ok": ok_rows,
        "reimport_ok": ok_again,
        "pass": passed,
        "store_bytes": store_bytes,
        "import": first,
        "reimport": again,
    }


def print_table(results: dict[str, Any]) -> None:
    head = (
        f"{'case':<17} {'rows':>11} {'seconds':>8} {'rows/s':>10} {'peakRSS MB':>10} "
        f"{'base s':>7} {'ratio':>6} {'base RSS':>8}  {'target':<22} {'result':<6} "
        f"{'re-import s':>11} {'re RSS MB':>9} {'CPU s':>7} {'base CPU':>8} {'CPU ratio':>9}"
    )
    print()
    print(f"cxloop import of {results['lines']:,} order lines (versions: {results['versions']})")
    code = results["code"]
    dirty = " + uncommitted changes in src/" if code["src_changes"] else ""
    print(f"code: commit {code['commit']}{dirty} (src sha256 {code['src_sha256']})")
    seen = {r["src_sha256"] for c in results["cases"] for r in (c["import"], c["reimport"]) if r}
    if seen - {code["src_sha256"]}:
        print(f"!! src/cxloop changed during the run (hashes seen: {sorted(seen)}): re-run for clean figures")
    print(head)
    print("-" * len(head))
    for c in results["cases"]:
        base = c["baseline"]
        again = c["reimport"]
        base_s = f"{base['seconds']:.1f}" if base else "-"
        ratio = f"{c['ratio']:.2f}x" if c["ratio"] is not None else "-"
        base_rss = f"{base['peak_rss_mb']:.0f}" if base else "-"
        again_s = f"{again['seconds']:.1f}" if again else "-"
        again_rss = f"{again['peak_rss_mb']:.0f}" if again else "-"
        verdict = {True: "PASS", False: "FAIL", None: "n/a"}[c["pass"]]
        base_cpu = f"{c['baseline_cpu_seconds']:.1f}" if c["baseline_cpu_seconds"] else "-"
        cpu_ratio = f"{c['cpu_ratio']:.2f}x" if c["cpu_ratio"] is not None else "-"
        print(
            f"{c['case']:<17} {c['rows']:>11,} {c['seconds']:>8.1f} {c['rows_per_s']:>10,.0f} "
            f"{c['peak_rss_mb']:>10,.0f} {base_s:>7} {ratio:>6} {base_rss:>8}  "
            f"{'<=2.0x, RSS<2048MB':<22} {verdict:<6} {again_s:>11} {again_rss:>9} "
            f"{c['cpu_seconds']:>7.1f} {base_cpu:>8} {cpu_ratio:>9}"
        )
        if not (c["rows_ok"] and c["reimport_ok"]):
            print(f"   !! row counts wrong: import={_counts(c['import'])} re-import={_counts(again)}")
    print()
    print("Baselines: duckdb:* = DuckDB CREATE TABLE AS SELECT * FROM read_csv/read_parquet of the file;")
    print("           postgres:* = bare COPY of the CSV into an unindexed table (also for parquet).")
    print("CPU: user + system seconds of the measured process, plus its PostgreSQL backend's on postgres:*")
    print("     (the wall ratio is the target; CPU time depends far less on what else the machine runs).")
    print("Steps of each import (seconds):")
    for c in results["cases"]:
        for label, run in (("import", c["import"]), ("re-import", c["reimport"])):
            if run:
                steps = ", ".join(f"{k} {v:.1f}" for k, v in run["steps"].items())
                print(f"  {c['case']:<17} {label:<10} {steps}")


def _counts(run: dict[str, Any] | None) -> str:
    if not run:
        return "-"
    return ", ".join(f"{k}={run[k]}" for k in ("rows_read", "loaded", "updated", "unchanged", "rejected"))


def print_profiles(results: dict[str, Any]) -> None:
    for c in results["cases"]:
        for label, run in (("import", c["import"]), ("re-import", c["reimport"])):
            if not run or "profile" not in run:
                continue
            print(f"\nProfile {c['case']} {label} ({run['seconds']:.1f}s):")
            for e in sorted(run["profile"], key=lambda e: -e["seconds"])[:25]:
                print(f"  {e['seconds']:8.2f}s  {e['phase']:<8} {e['kind']:<3} {e['label']}")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.import_speed", description=__doc__.split("\n")[0])
    p.add_argument("--lines", type=int, default=10_000_000, help="order lines to generate (default 10M)")
    p.add_argument("--backends", default="duckdb,postgres", help="comma list of duckdb, postgres")
    p.add_argument("--formats", default="csv,parquet", help="comma list of csv, parquet")
    p.add_argument("--out", default="benchmarks/results/import.json", help="JSON results file")
    p.add_argument("--workdir", help="where to write the files and stores (default: a temp dir, removed)")
    p.add_argument("--seed", type=int, default=20240331)
    p.add_argument("--pg-url", default=DEFAULT_PG, help="PostgreSQL base URL (a schema per case is made)")
    p.add_argument("--no-baselines", action="store_true", help="skip the DuckDB/COPY baselines")
    p.add_argument("--no-reimport", action="store_true", help="skip the second (unchanged) import")
    p.add_argument("--profile", action="store_true", help="time each SQL statement of each import")
    p.add_argument("--keep", action="store_true", help="keep the work dir, stores and PG schemas")
    p.add_argument(
        "--import-memory-limit",
        help="set CXLOOP_IMPORT_MEMORY_LIMIT (DuckDB memory limit of an import, default 1GB) for the imports",
    )
    # internal: one measured case in a child process, JSON on stdout
    p.add_argument("--case", help=argparse.SUPPRESS)
    p.add_argument("--file", help=argparse.SUPPRESS)
    p.add_argument("--store", help=argparse.SUPPRESS)
    p.add_argument("--rejects", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.case:
        print(json.dumps(child_main(args), default=str))
        return 0
    return parent_main(args)


if __name__ == "__main__":
    raise SystemExit(main())
