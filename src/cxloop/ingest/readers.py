"""Read an export (CSV/TSV, whitespace-separated text, Parquet, JSON Lines, XLSX) into DuckDB.

Every reader leaves a relation named by :attr:`RawTable.table` with a ``__row`` column (the
record's 1-based position among the rows read) followed by the file's own columns, unchanged:
delimited text is read as text (``all_varchar``) so that nothing is coerced before validation —
zip codes keep their leading zeros, ids stay ids. Records that cannot be parsed at all (too many or
too few fields, a broken quote, an over-long line) become structural rejects with their line.
"""

from __future__ import annotations

import csv
import datetime as dt
import itertools
import sys
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa

from cxloop.errors import InputError
from cxloop.ingest import encoding as enc
from cxloop.store.sql import ident, literal

FORMATS = ("csv", "tsv", "whitespace", "parquet", "jsonl", "xlsx")
_EXTENSIONS = {
    ".csv": "csv",
    ".txt": "csv",
    ".tsv": "tsv",
    ".tab": "tsv",
    ".parquet": "parquet",
    ".pq": "parquet",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".json": "jsonl",
    ".xlsx": "xlsx",
}
# DuckDB refuses longer lines as structural rejects; text fields are refused earlier by validation
# (settings.max_field_bytes) with a clearer reason, so the reader takes lines well past that.
# DuckDB's read buffer must hold a whole line; its default (16 lines) would take 256 MiB.
MAX_LINE_BYTES = 16 * 1024 * 1024
READ_BUFFER_BYTES = 2 * MAX_LINE_BYTES


@dataclass(frozen=True)
class ReadOptions:
    """How to read a file; every field may also come from a preset's ``[reader]`` table."""

    format: str | None = None
    delimiter: str | None = None
    encoding: str = "auto"
    header: bool = True
    column_names: tuple[str, ...] = ()
    sheet: str | None = None


@dataclass(frozen=True)
class StructuralReject:
    record: int  # 1-based record index in the file, header excluded
    reason: str
    text: str


@dataclass
class RawTable:
    """The rows of one file, staged in DuckDB, and how to point back at their lines."""

    table: str
    columns: list[str]
    types: dict[str, str]
    rows: int
    format: str
    encoding: str | None
    structural: list[StructuralReject] = field(default_factory=list)
    locator: LineLocator | None = None
    sha256: str | None = None  # of the file, when reading it computed it on the way
    nul_free: bool = False  # the file holds no NUL byte: no value read from it can hold one

    def lines_of(self, rows: Sequence[int]) -> dict[int, int]:
        """Map ``__row`` values to the line (or sheet row) a person would look at."""
        assert self.locator is not None
        return self.locator.lines_of_rows(rows)

    def lines_of_records(self, records: Sequence[int]) -> dict[int, int]:
        assert self.locator is not None
        return self.locator.lines_of_records(records)


def detect_format(path: Path, requested: str | None) -> str:
    if requested:
        if requested not in FORMATS:
            raise InputError(f"unknown format {requested!r}; use one of {', '.join(FORMATS)}")
        return requested
    fmt = _EXTENSIONS.get(path.suffix.lower())
    if fmt:
        return fmt
    with path.open("rb") as fh:
        head = fh.read(4)
    if head == b"PAR1":
        return "parquet"
    if head == b"PK\x03\x04":
        return "xlsx"
    return "csv"


def read(conn: duckdb.DuckDBPyConnection, path: Path, options: ReadOptions, workdir: Path) -> RawTable:
    """Stage ``path`` in ``conn`` as relation ``cx_raw``; raise InputError if it is unreadable."""
    if not path.exists():
        raise InputError("no such file", file=str(path))
    if path.is_dir():
        raise InputError("is a directory, not a file", file=str(path))
    if path.stat().st_size == 0:
        raise InputError("the file is empty (0 bytes)", file=str(path))
    fmt = detect_format(path, options.format)
    reader = {
        "csv": _read_delimited,
        "tsv": _read_delimited,
        "whitespace": _read_whitespace,
        "parquet": _read_parquet,
        "jsonl": _read_jsonl,
        "xlsx": _read_xlsx,
    }[fmt]
    try:
        raw = reader(conn, path, options, workdir, fmt)
    except duckdb.Error as exc:
        raise InputError(f"cannot read it as {fmt}: {short_error(exc)}", file=str(path)) from None
    if not raw.columns:
        raise InputError("no columns found", file=str(path))
    if raw.rows == 0 and not raw.structural:
        raise InputError("no data rows (only a header, or nothing)", file=str(path))
    return raw


def short_error(exc: BaseException, limit: int = 300) -> str:
    """DuckDB errors can quote a whole 10 MB line back; keep the first useful sentence."""
    text = str(exc).strip().splitlines()
    first = " ".join(line.strip() for line in text[:3] if line.strip())
    return first if len(first) <= limit else first[: limit - 1] + "…"


def _utf8_path(path: Path, options: ReadOptions, workdir: Path) -> tuple[Path, enc.Detected]:
    """A UTF-8 version of ``path`` (the file itself when it already is) and its encoding."""
    if options.encoding.lower() in ("auto", ""):
        detected = enc.detect(path)
    else:
        detected = enc.Detected(options.encoding.lower(), "named")
        with path.open("rb") as fh:
            enc.refuse_binary(path, fh.read(enc.CHUNK))
    encoding = detected.encoding
    if encoding in ("utf-8", "utf8", "utf-8-sig"):
        if options.encoding.lower() not in ("auto", ""):
            enc.check_decodes(path, "utf-8-sig")
        return path, detected
    try:
        return enc.transcode_to_utf8(path, encoding, workdir / "transcoded.txt"), detected
    except LookupError:
        raise InputError(f"unknown encoding {options.encoding!r}", file=str(path)) from None


def _learnt(raw: RawTable, detected: enc.Detected) -> RawTable:
    """What detection learnt reading a delimited text file, where values are the file's bytes."""
    raw.sha256 = detected.sha256
    raw.nul_free = detected.nul_free
    return raw


def _read_delimited(
    conn: duckdb.DuckDBPyConnection, path: Path, options: ReadOptions, workdir: Path, fmt: str
) -> RawTable:
    text_path, detected = _utf8_path(path, options, workdir)
    delimiter = options.delimiter or ("\t" if fmt == "tsv" else None)
    args = [
        literal(str(text_path)),
        "all_varchar = true",
        f"header = {'true' if options.header else 'false'}",
        "store_rejects = true",
        "rejects_table = 'cx_rejects'",
        "rejects_scan = 'cx_rejects_scan'",
        f"max_line_size = {MAX_LINE_BYTES}",
        f"buffer_size = {READ_BUFFER_BYTES}",
    ]
    if delimiter:
        args.append(f"delim = {literal(delimiter)}")
    if options.column_names:
        args.append("names = [" + ", ".join(literal(n) for n in options.column_names) + "]")
    conn.execute("DROP TABLE IF EXISTS cx_rejects; DROP TABLE IF EXISTS cx_rejects_scan")
    conn.execute(f"CREATE OR REPLACE TEMP TABLE cx_raw_file AS SELECT * FROM read_csv({', '.join(args)})")
    conn.execute("CREATE OR REPLACE TEMP VIEW cx_raw AS SELECT rowid + 1 AS __row, * FROM cx_raw_file")
    structural = [
        StructuralReject(
            record=int(line) - (1 if options.header else 0),
            reason=f"{str(kind).lower()}: {message}",
            text=str(text or "")[:1000],
        )
        for line, kind, message, text in conn.execute(
            "SELECT line, error_type, error_message, csv_line FROM cx_rejects ORDER BY line"
        ).fetchall()
    ]
    raw = _learnt(_describe(conn, "cx_raw", fmt, detected.encoding), detected)
    raw.structural = structural
    raw.locator = LineLocator(
        text_path,
        header_lines=1 if options.header else 0,
        delimiter=delimiter or (lambda: _sniffed_delimiter(conn, text_path)),
        records=raw.rows + len(structural),
        structural=[s.record for s in structural],
    )
    return raw


def _sniffed_delimiter(conn: duckdb.DuckDBPyConnection, path: Path) -> str:
    row = conn.execute(
        # The same sniffer options as the read (store_rejects implies ignore_errors).
        f"SELECT Delimiter FROM sniff_csv({literal(str(path))}, ignore_errors = true, "
        f"all_varchar = true, header = true, max_line_size = {MAX_LINE_BYTES}, "
        f"buffer_size = {READ_BUFFER_BYTES})"
    ).fetchone()
    return str(row[0]) if row else ","


def _read_whitespace(
    conn: duckdb.DuckDBPyConnection, path: Path, options: ReadOptions, workdir: Path, fmt: str
) -> RawTable:
    """Fixed-width-ish text where runs of blanks separate fields (the CDNOW files)."""
    text_path, detected = _utf8_path(path, options, workdir)
    conn.execute(
        "CREATE OR REPLACE TEMP TABLE cx_text_lines AS SELECT line FROM read_csv("
        f"{literal(str(text_path))}, columns = {{'line': 'VARCHAR'}}, header = false, "
        "delim = '\x1f', quote = '', escape = '', auto_detect = false, "
        f"max_line_size = {MAX_LINE_BYTES}, buffer_size = {READ_BUFFER_BYTES})"
    )
    # A table keeps the file's order, so its rowid is the line's position.
    conn.execute(
        "CREATE OR REPLACE TEMP TABLE cx_lines AS SELECT rowid + 1 AS __line, "
        "string_split_regex(trim(line), '\\s+') AS parts FROM cx_text_lines WHERE trim(line) <> ''"
    )
    names = list(options.column_names)
    first_data_line = 1
    if options.header:
        first = conn.execute("SELECT __line, parts FROM cx_lines ORDER BY __line LIMIT 1").fetchone()
        if first is None:
            raise InputError("no lines", file=str(path))
        first_data_line = int(first[0]) + 1
        names = names or [str(p) for p in first[1]]
    if not names:
        raise InputError("no header: name the columns", file=str(path))
    width = len(names)
    picks = ", ".join(f"parts[{i + 1}] AS {ident(n)}" for i, n in enumerate(names))
    conn.execute(
        "CREATE OR REPLACE TEMP TABLE cx_raw AS SELECT row_number() OVER (ORDER BY __line) AS __row, "
        f"__line, {picks} FROM cx_lines WHERE __line >= {first_data_line} AND len(parts) = {width}"
    )
    structural = [
        StructuralReject(
            record=int(line) - (first_data_line - 1),
            reason=f"expected {width} fields separated by blanks, found {n}",
            text=" ".join(parts)[:1000],
        )
        for line, n, parts in conn.execute(
            f"SELECT __line, len(parts), parts FROM cx_lines WHERE __line >= {first_data_line} "
            f"AND len(parts) <> {width} ORDER BY __line"
        ).fetchall()
    ]
    raw = _learnt(_describe(conn, "cx_raw", fmt, detected.encoding, hidden=("__row", "__line")), detected)
    raw.structural = structural
    raw.locator = LineLocator(
        text_path,
        header_lines=first_data_line - 1,
        delimiter=None,
        records=raw.rows + len(structural),
        structural=[s.record for s in structural],
        line_column=(conn, "cx_raw"),
    )
    return raw


def _read_parquet(
    conn: duckdb.DuckDBPyConnection, path: Path, options: ReadOptions, workdir: Path, fmt: str
) -> RawTable:
    with path.open("rb") as fh:
        if fh.read(4) != b"PAR1":
            raise InputError("not a Parquet file (no PAR1 magic)", file=str(path))
    conn.execute(
        "CREATE OR REPLACE TEMP VIEW cx_raw AS SELECT * EXCLUDE (file_row_number), "
        "file_row_number + 1 AS __row "
        f"FROM read_parquet({literal(str(path))}, file_row_number = true)"
    )
    raw = _describe(conn, "cx_raw", fmt, None)
    raw.locator = LineLocator.identity()
    return raw


def _read_jsonl(
    conn: duckdb.DuckDBPyConnection, path: Path, options: ReadOptions, workdir: Path, fmt: str
) -> RawTable:
    text_path, detected = _utf8_path(path, options, workdir)
    # Keys come from DuckDB's reader (over every line); values are taken as the text they are,
    # because the reader would turn "2024-03-05T13:01:22Z" into a naive TIMESTAMP, losing the Z.
    keys = [
        str(row[0])
        for row in conn.execute(
            f"DESCRIBE SELECT * FROM read_json({literal(str(text_path))}, "
            "format = 'newline_delimited', records = true, sample_size = -1, "
            f"maximum_object_size = {MAX_LINE_BYTES})"
        ).fetchall()
    ]
    values = ", ".join(f"json_extract_string(json, {literal(_json_path(k))}) AS {ident(k)}" for k in keys)
    conn.execute(
        f"CREATE OR REPLACE TEMP TABLE cx_raw_file AS SELECT {values} FROM read_json_objects("
        f"{literal(str(text_path))}, format = 'newline_delimited', "
        f"maximum_object_size = {MAX_LINE_BYTES})"
    )
    conn.execute("CREATE OR REPLACE TEMP VIEW cx_raw AS SELECT rowid + 1 AS __row, * FROM cx_raw_file")
    raw = _describe(conn, "cx_raw", fmt, detected.encoding)
    raw.sha256 = detected.sha256  # not nul_free: JSON writes a NUL as \u0000
    raw.locator = LineLocator.identity()
    return raw


def _json_path(key: str) -> str:
    return '$."' + key.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _read_xlsx(
    conn: duckdb.DuckDBPyConnection, path: Path, options: ReadOptions, workdir: Path, fmt: str
) -> RawTable:
    """XLSX through openpyxl's streaming reader; cells become text as a person would type them."""
    import openpyxl

    try:
        book = openpyxl.load_workbook(path, read_only=True, data_only=True)
    except Exception as exc:  # openpyxl raises many unrelated types for a bad file
        raise InputError(f"not a readable XLSX workbook: {exc}", file=str(path)) from None
    try:
        if options.sheet:
            if options.sheet not in book.sheetnames:
                raise InputError(
                    f"no sheet {options.sheet!r}; sheets: {', '.join(book.sheetnames)}",
                    file=str(path),
                )
            sheet = book[options.sheet]
        else:
            sheet = book.worksheets[0]
        rows = sheet.iter_rows(values_only=True)
        header_row, names = _xlsx_header(rows, options)
        table = _xlsx_table(rows, names, first_row=header_row + 1)
    finally:
        book.close()
    conn.register("cx_xlsx_arrow", table)
    conn.execute("CREATE OR REPLACE TEMP TABLE cx_raw AS SELECT * FROM cx_xlsx_arrow")
    conn.unregister("cx_xlsx_arrow")
    raw = _describe(conn, "cx_raw", fmt, None, hidden=("__row", "__line"))
    raw.locator = LineLocator(
        path,
        header_lines=0,
        delimiter=None,
        records=raw.rows,
        structural=[],
        line_column=(conn, "cx_raw"),
    )
    return raw


def _xlsx_header(rows: Iterator[tuple[Any, ...]], options: ReadOptions) -> tuple[int, list[str]]:
    if not options.header:
        return 0, list(options.column_names)
    for number, row in enumerate(rows, start=1):
        if any(v not in (None, "") for v in row):
            return number, _unique_names([_cell_text(v) or f"column_{i + 1}" for i, v in enumerate(row)])
    return 0, []


def _xlsx_table(rows: Iterator[tuple[Any, ...]], names: list[str], first_row: int) -> pa.Table:
    columns: list[list[str | None]] = [[] for _ in names]
    lines: list[int] = []
    for number, row in zip(itertools.count(first_row), rows, strict=False):
        if all(v in (None, "") for v in row):
            continue
        lines.append(number)
        for i, column in enumerate(columns):
            column.append(_cell_text(row[i]) if i < len(row) else None)
    arrays = {
        "__row": pa.array(range(1, len(lines) + 1), pa.int64()),
        "__line": pa.array(lines, pa.int64()),
    }
    arrays.update({name: pa.array(col, pa.string()) for name, col in zip(names, columns, strict=True)})
    return pa.table(arrays)


def _cell_text(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer() and abs(value) < 2**53:
        return str(int(value))
    if isinstance(value, dt.datetime | dt.date | dt.time):
        return value.isoformat()
    return str(value)


def _unique_names(names: Iterable[str]) -> list[str]:
    seen: dict[str, int] = {}
    out = []
    for name in names:
        name = name.strip()
        count = seen.get(name, 0)
        seen[name] = count + 1
        out.append(name if count == 0 else f"{name}_{count + 1}")
    return out


def _describe(
    conn: duckdb.DuckDBPyConnection,
    table: str,
    fmt: str,
    encoding: str | None,
    hidden: Sequence[str] = ("__row",),
) -> RawTable:
    described = conn.execute(f"DESCRIBE {table}").fetchall()
    types = {str(name): str(kind) for name, kind, *_ in described if name not in hidden}
    count = conn.execute(f"SELECT count(*) FROM {table}").fetchone()
    return RawTable(
        table=table,
        columns=list(types),
        types=types,
        rows=int(count[0]) if count else 0,
        format=fmt,
        encoding=encoding,
    )


class LineLocator:
    """Points a record back at the line a person would open the file at.

    When no record spans several lines, record *n* starts on line *n* + header lines; only when
    quoted fields hold line breaks (or blank lines were skipped) is the file scanned once, up to
    the last record asked for.
    """

    def __init__(
        self,
        path: Path | None,
        *,
        header_lines: int,
        delimiter: str | Callable[[], str] | None,
        records: int,
        structural: Sequence[int],
        line_column: tuple[duckdb.DuckDBPyConnection, str] | None = None,
    ) -> None:
        self.path = path
        self.header_lines = header_lines
        self.delimiter = delimiter
        self.records = records
        self.structural = sorted(structural)
        self.line_column = line_column
        self._simple: bool | None = None

    @classmethod
    def identity(cls) -> LineLocator:
        return cls(None, header_lines=0, delimiter=None, records=0, structural=[])

    def constant_offset(self) -> int | None:
        """``line = __row + offset`` for every row, when that holds (the common case)."""
        if self.line_column is not None or self.structural:
            return None
        if self.path is None or self.delimiter is None or self._is_simple():
            return self.header_lines
        return None

    def lines_of_rows(self, rows: Sequence[int]) -> dict[int, int]:
        if self.line_column is not None:
            conn, table = self.line_column
            wanted = pa.table({"r": pa.array(sorted(set(rows)), pa.int64())})
            conn.register("cx_wanted_rows", wanted)
            try:
                found = conn.execute(
                    f"SELECT __row, __line FROM {table} JOIN cx_wanted_rows ON __row = r"
                ).fetchall()
            finally:
                conn.unregister("cx_wanted_rows")
            return {int(r): int(line) for r, line in found}
        records = {row: self._record_of_row(row) for row in rows}
        lines = self.lines_of_records(list(records.values()))
        return {row: lines[rec] for row, rec in records.items()}

    def lines_of_records(self, records: Sequence[int]) -> dict[int, int]:
        if self.path is None or self.delimiter is None or self._is_simple():
            return {r: r + self.header_lines for r in records}
        if callable(self.delimiter):
            self.delimiter = self.delimiter()  # sniffed only when a scan is really needed
        return self._scan(set(records))

    def _record_of_row(self, row: int) -> int:
        # The n-th good row is the n-th record not rejected structurally.
        record = row
        for rejected in self.structural:
            if rejected <= record:
                record += 1
            else:
                break
        return record

    def _is_simple(self) -> bool:
        if self._simple is None:
            assert self.path is not None
            newlines = 0
            last = b""
            with self.path.open("rb") as fh:
                while chunk := fh.read(enc.CHUNK):
                    newlines += chunk.count(b"\n")
                    last = chunk[-1:]
            lines = newlines + (1 if last not in (b"\n", b"") else 0)
            self._simple = lines == self.records + self.header_lines
        return self._simple

    def _scan(self, wanted: set[int]) -> dict[int, int]:
        assert self.path is not None and isinstance(self.delimiter, str)
        found: dict[int, int] = {}
        if not wanted:
            return found
        last_wanted = max(wanted)
        csv.field_size_limit(sys.maxsize)
        with self.path.open(encoding="utf-8-sig", newline="") as fh:
            reader = csv.reader(fh, delimiter=self.delimiter)
            previous_end = 0
            record = -self.header_lines
            for row in reader:
                start = previous_end + 1
                previous_end = reader.line_num
                if not row:
                    continue
                record += 1
                if record in wanted:
                    found[record] = start
                    if record >= last_wanted:
                        break
        return found
