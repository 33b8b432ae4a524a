"""Reject files: what was refused, where, and why — written beside each other.

For an import of ``orders.csv`` two files are written to the rejects folder:

* ``orders.<import>.rejects.csv`` — one row per problem: ``line, field, value, reason``;
* ``orders.<import>.rejected-rows.csv`` — the refused rows as they were (with their ``line``), so
  they can be corrected and imported again.

``line`` is the physical line of the record in a text file (the header is line 1), the row
number in an XLSX sheet, and the row number in a Parquet file. Values that a spreadsheet would
run as a formula are neutralised (see :mod:`cxloop.ingest.csvsafe`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import duckdb
import pyarrow as pa

from cxloop.ingest.csvsafe import neutralise_sql
from cxloop.ingest.readers import RawTable
from cxloop.store.sql import ident, literal


@dataclass(frozen=True)
class RejectFiles:
    report: Path
    rows: Path


def count_rejected(conn: duckdb.DuckDBPyConnection, raw: RawTable) -> int:
    row = conn.execute("SELECT count(DISTINCT __row) FROM cx_errors").fetchone()
    return (int(row[0]) if row else 0) + len(raw.structural)


def stage_rejects(conn: duckdb.DuckDBPyConnection, raw: RawTable) -> None:
    """Build ``cx_reject_report`` (line, field, value, reason) ordered by line."""
    offset = raw.locator.constant_offset() if raw.locator else None
    if offset is not None:
        conn.execute(
            "CREATE OR REPLACE TEMP TABLE cx_lines_arrow AS "
            f"SELECT DISTINCT __row, __row + {int(offset)} AS line FROM cx_errors"
        )
    else:
        rows = [r for (r,) in conn.execute("SELECT DISTINCT __row FROM cx_errors").fetchall()]
        lines = raw.lines_of(rows) if rows else {}
        conn.register(
            "cx_lines_arrow",
            pa.table(
                {
                    "__row": pa.array(list(lines), pa.int64()),
                    "line": pa.array(list(lines.values()), pa.int64()),
                }
            ),
        )
    structural_lines = raw.lines_of_records([s.record for s in raw.structural])
    conn.register(
        "cx_structural_arrow",
        pa.table(
            {
                "line": pa.array([structural_lines[s.record] for s in raw.structural], pa.int64()),
                "value": pa.array([s.text for s in raw.structural], pa.string()),
                "reason": pa.array([s.reason for s in raw.structural], pa.string()),
            }
        ),
    )
    conn.execute(
        "CREATE OR REPLACE TEMP TABLE cx_reject_report AS "
        "SELECT l.line, e.__row, e.field, e.value, e.reason FROM cx_errors e "
        "JOIN cx_lines_arrow l USING (__row) "
        "UNION ALL SELECT line, NULL, '(record)', value, reason FROM cx_structural_arrow "
        "ORDER BY line, field"
    )
    if offset is None:
        conn.unregister("cx_lines_arrow")
    conn.unregister("cx_structural_arrow")


def sample(conn: duckdb.DuckDBPyConnection, limit: int = 20) -> list[dict[str, object]]:
    rows = conn.execute(
        f"SELECT line, field, value, reason FROM cx_reject_report LIMIT {int(limit)}"
    ).fetchall()
    return [dict(zip(("line", "field", "value", "reason"), r, strict=True)) for r in rows]


def parquet_report(report: Path) -> Path:
    """Where ``write(..., parquet=True)`` put the report as Parquet, beside the CSV ``report``."""
    return report.with_name(report.name.removesuffix(".csv") + ".parquet")


def write(
    conn: duckdb.DuckDBPyConnection, raw: RawTable, directory: Path, stem: str, *, parquet: bool = False
) -> RejectFiles:
    """The two CSV files; with ``parquet`` also the report as Parquet (:func:`parquet_report`), its
    values exactly as in the file (not neutralised: it is data for programs, not a spreadsheet)."""
    directory.mkdir(parents=True, exist_ok=True)
    files = RejectFiles(directory / f"{stem}.rejects.csv", directory / f"{stem}.rejected-rows.csv")
    if parquet:
        conn.execute(
            "COPY (SELECT line, field, value, reason FROM cx_reject_report ORDER BY line, field) "
            f"TO {literal(str(parquet_report(files.report)))} (FORMAT parquet)"
        )
    safe_value = neutralise_sql("value")
    conn.execute(
        f"COPY (SELECT line, field, {safe_value} AS value, reason FROM cx_reject_report "
        f"ORDER BY line, field) TO {literal(str(files.report))} (FORMAT csv, HEADER true)"
    )
    columns = ", ".join(
        f"{neutralise_sql(f'CAST(r.{ident(c)} AS VARCHAR)')} AS {ident(c)}" for c in raw.columns
    )
    conn.execute(
        "COPY (SELECT line, * EXCLUDE (line) FROM ("
        f"SELECT DISTINCT l.line, {columns} FROM {raw.table} r "
        "JOIN (SELECT DISTINCT __row, line FROM cx_reject_report WHERE __row IS NOT NULL) l "
        "USING (__row)) ORDER BY line) "
        f"TO {literal(str(files.rows))} (FORMAT csv, HEADER true)"
    )
    return files
