"""SQL fragments that turn a file's text into typed values, and say why when they cannot.

Everything here returns DuckDB SQL text; identifiers go through ``ident`` and constants through
``literal``. Parsing and checking happen in one vectorised pass: each row gets a list of
``{field, value, reason}`` structs, empty when the row is good.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import NamedTuple

from cxloop.ingest.entities import Field
from cxloop.ingest.mapping import Column, Constant, Join, Source
from cxloop.store.sql import ident, literal

# Long free text keeps its inner whitespace; every other text value is trimmed.
LONG_TEXT = frozenset({"comment", "body", "subject", "text", "title"})
TRUE_WORDS = ("true", "t", "yes", "y", "1")
FALSE_WORDS = ("false", "f", "no", "n", "0")
REPORTED_VALUE_CHARS = 200
ISO_HINT = "ISO 8601 such as 2024-03-31 or 2024-03-31 14:05:00+02:00"
# Offsets DuckDB's ISO cast misses: minutes without seconds, and a space before the offset.
_COLUMN = re.compile(r'"(?:[^"]|"")*"|[A-Za-z_][A-Za-z0-9_]*')
OFFSET_FORMATS = ("%Y-%m-%dT%H:%M%z", "%Y-%m-%d %H:%M%z", "%Y-%m-%d %H:%M:%S %z", "%Y-%m-%d %H:%M %z")


def raw_text(src: Source, types: dict[str, str]) -> str:
    """The field's value as the file has it, as VARCHAR (NULL when absent)."""
    if isinstance(src, Column):
        column = ident(src.name)
        return column if types.get(src.name) == "VARCHAR" else f"CAST({column} AS VARCHAR)"
    if isinstance(src, Constant):
        return literal(src.value)
    if isinstance(src, Join):
        parts = [raw_text(Column(c), types) for c in src.columns]
        any_null = " OR ".join(f"NULLIF(trim({p}), '') IS NULL" for p in parts)
        joined = f"concat_ws({literal(src.sep)}, {', '.join(f'trim({p})' for p in parts)})"
        return f"(CASE WHEN {any_null} THEN NULL ELSE {joined} END)"
    return f"CAST(({src.sql}) AS VARCHAR)"


def blank(raw: str) -> str:
    """``NULLIF(trim(raw), '')``, without trimming values that need none.

    DuckDB's ``trim`` copies every string it is given, which made it the largest single cost of
    the typed pass (13 s for ten columns of 10M rows, against 3 s for ``NULLIF`` alone). Among
    ASCII characters it removes only the space, so an ASCII value (as many bytes as characters)
    with no space at either end is returned as it is; any other value is trimmed as before.
    """
    if not _COLUMN.fullmatch(raw):
        return f"NULLIF(trim({raw}), '')"  # an expression: evaluated once
    return (
        f"(CASE WHEN strlen({raw}) = length({raw}) AND NOT prefix({raw}, ' ') "
        f"AND NOT suffix({raw}, ' ') THEN NULLIF({raw}, '') ELSE NULLIF(trim({raw}), '') END)"
    )


def native_column(src: Source, types: dict[str, str]) -> tuple[str, str] | None:
    """(SQL, DuckDB type) of a typed file column (Parquet, JSON), to avoid a text round trip."""
    if isinstance(src, Column) and types.get(src.name, "VARCHAR") != "VARCHAR":
        return ident(src.name), types[src.name]
    return None


def typed_value(
    f: Field, raw: str, native: tuple[str, str] | None, formats: Sequence[str], *, utc: bool
) -> str:
    """SQL that parses ``raw`` into the field's type; NULL when empty or unparseable."""
    blank_sql = blank(raw)
    if f.kind == "text":
        if f.choices:
            return f"lower({blank_sql})"
        if f.name in LONG_TEXT:
            return f"(CASE WHEN {blank_sql} IS NULL AND {raw} IS NOT NULL THEN NULL ELSE {raw} END)"
        return blank_sql
    if f.kind == "decimal":
        if native and _is_numeric(native[1]):
            return f"TRY_CAST({native[0]} AS DECIMAL(18, 4))"
        return f"TRY_CAST({blank_sql} AS DECIMAL(18, 4))"
    if f.kind == "int":
        if native and _is_numeric(native[1]):
            number, whole = f"TRY_CAST({native[0]} AS DOUBLE)", f"TRY_CAST({native[0]} AS INTEGER)"
        else:
            number, whole = f"TRY_CAST({blank_sql} AS DOUBLE)", f"TRY_CAST({blank_sql} AS INTEGER)"
        # The integer cast rounds "1.5" to 2: keep it only when it equals the number written.
        return f"(CASE WHEN {number} = {whole} THEN {whole} END)"
    if f.kind == "bool":
        words = f"lower({blank_sql})"
        return (
            f"(CASE WHEN {words} IN ({_words(TRUE_WORDS)}) THEN true "
            f"WHEN {words} IN ({_words(FALSE_WORDS)}) THEN false END)"
        )
    return _timestamp(blank_sql, native, formats, utc)


def _timestamp(blank: str, native: tuple[str, str] | None, formats: Sequence[str], utc: bool) -> str:
    """Parse a time; naive times are in the business time zone, and all are stored in UTC.

    The business zone is the session's TimeZone during an import. When it is UTC, naive times
    need no conversion — the common case, and ICU time zone arithmetic is the slow part.
    """

    def local_to_utc(naive: str) -> str:
        return naive if utc else f"timezone('UTC', CAST({naive} AS TIMESTAMPTZ))"

    if native and native[1].startswith("TIMESTAMP WITH TIME ZONE"):
        return f"timezone('UTC', {native[0]})"
    if native and (native[1].startswith("TIMESTAMP") or native[1] == "DATE"):
        return local_to_utc(f"CAST({native[0]} AS TIMESTAMP)")
    # strptime's %z does not take "Z" for UTC; write it as an offset first.
    text = f"regexp_replace({blank}, '([0-9])Z$', '\\1+00:00')"
    if not formats:
        # A cast to TIMESTAMP would silently drop an offset, so only offset-free text takes it;
        # the date part never holds '+', and holds '-' only in its first ten characters.
        after_date = f"substr({blank}, 11)"
        has_offset = f"(suffix({blank}, 'Z') OR contains({after_date}, '+') OR contains({after_date}, '-'))"
        with_offset = (
            f"timezone('UTC', coalesce(TRY_CAST({text} AS TIMESTAMPTZ), "
            f"try_strptime({text}, {_format_list(OFFSET_FORMATS)})))"
        )
        return (
            f"(CASE WHEN {has_offset} THEN {with_offset} "
            f"ELSE {local_to_utc(f'TRY_CAST({blank} AS TIMESTAMP)')} END)"
        )
    with_offset_formats = [f for f in formats if "%z" in f or "%Z" in f]
    local = [f for f in formats if f not in with_offset_formats]
    parts = []
    if with_offset_formats:
        parts.append(f"timezone('UTC', try_strptime({text}, {_format_list(with_offset_formats)}))")
    if local:
        parts.append(local_to_utc(f"try_strptime({blank}, {_format_list(local)})"))
    return parts[0] if len(parts) == 1 else f"coalesce({', '.join(parts)})"


def _format_list(formats: Sequence[str]) -> str:
    return "[" + ", ".join(literal(f) for f in formats) + "]"


def is_scalar(duck_type: str) -> bool:
    """A number, time or yes/no: its text is short and holds no NUL."""
    base = duck_type.split("(")[0]
    return (
        _is_numeric(duck_type)
        or base in {"BOOLEAN", "DATE", "TIME", "INTERVAL"}
        or base.startswith("TIMESTAMP")
    )


def _is_numeric(duck_type: str) -> bool:
    return duck_type.split("(")[0] in {
        "TINYINT",
        "SMALLINT",
        "INTEGER",
        "BIGINT",
        "HUGEINT",
        "UTINYINT",
        "USMALLINT",
        "UINTEGER",
        "UBIGINT",
        "FLOAT",
        "DOUBLE",
        "DECIMAL",
    }


def _words(words: Sequence[str]) -> str:
    return ", ".join(literal(w) for w in words)


class Check(NamedTuple):
    """A rule a row must pass: the SQL condition that fails it, and the error it reports."""

    condition: str
    entry: str


def error(field: str, value_sql: str, reason_sql: str, condition: str) -> Check:
    """A check whose failure reports ``{field, value, reason}`` for the row."""
    shown = (
        f"CASE WHEN length({value_sql}) > {REPORTED_VALUE_CHARS} "
        f"THEN left({value_sql}, {REPORTED_VALUE_CHARS}) || '…' ELSE {value_sql} END"
    )
    return Check(
        condition,
        f"CASE WHEN {condition} THEN {{'field': {literal(field)}, 'value': {shown}, "
        f"'reason': {reason_sql}}} END",
    )


def field_checks(
    f: Field,
    raw: str,
    typed: str,
    *,
    required: bool,
    formats: Sequence[str],
    max_bytes: int,
    text_checks: bool = True,
    nul_check: bool = True,
) -> list[Check]:
    """The checks every field gets: presence, type, range, choices, size, NUL bytes.

    ``text_checks=False`` leaves out size and NUL checks for values that cannot fail them (the
    text of a number or a time); ``nul_check=False`` the NUL check for values read from a file
    that holds no NUL byte.
    """
    missing = f"{blank(raw)} IS NULL"
    present = f"NOT ({missing})"
    checks: list[Check] = []
    if required:
        checks.append(error(f.name, raw, literal("required value is missing"), missing))
    if f.kind != "text":
        checks.append(error(f.name, raw, literal(_type_reason(f, formats)), f"{present} AND {typed} IS NULL"))
    if f.kind == "timestamp":
        checks.append(
            error(
                f.name,
                raw,
                literal("implausible date: outside the years 1900-2200"),
                f"{typed} IS NOT NULL AND (year({typed}) < 1900 OR year({typed}) > 2200)",
            )
        )
    if f.minimum is not None:
        checks.append(
            error(
                f.name,
                raw,
                literal(f"below the minimum {f.minimum:g}"),
                f"{typed} IS NOT NULL AND {typed} < {f.minimum}",
            )
        )
    if f.maximum is not None:
        checks.append(
            error(
                f.name,
                raw,
                literal(f"above the maximum {f.maximum:g}"),
                f"{typed} IS NOT NULL AND {typed} > {f.maximum}",
            )
        )
    if f.choices:
        checks.append(
            error(
                f.name,
                raw,
                literal(f"must be one of: {', '.join(f.choices)}"),
                f"{typed} IS NOT NULL AND {typed} NOT IN ({_words(f.choices)})",
            )
        )
    if not text_checks:
        return checks
    checks.append(
        error(
            f.name,
            raw,
            f"'the value is ' || format('{{:,}}', strlen({raw})) "
            f"|| ' bytes long; the limit is {max_bytes:,} bytes'",
            f"strlen({raw}) > {max_bytes}",
        )
    )
    if nul_check:
        checks.append(error(f.name, raw, literal("contains a NUL character"), f"contains({raw}, chr(0))"))
    return checks


def _type_reason(f: Field, formats: Sequence[str]) -> str:
    if f.kind == "decimal":
        return "not a number (use digits with a dot for decimals, at most 14 before it)"
    if f.kind == "int":
        return "not a whole number"
    if f.kind == "bool":
        return "not a yes/no value (true/false, yes/no, 1/0)"
    if formats:
        return f"not a date/time in the stated format(s) {', '.join(formats)}"
    return f"not a date/time: expected {ISO_HINT} (or state the format with --date-format)"


def error_list(checks: Sequence[Check]) -> str:
    """The row's list of errors (built only for rows that fail: it is the expensive part)."""
    if not checks:
        return "CAST([] AS STRUCT(field VARCHAR, value VARCHAR, reason VARCHAR)[])"
    return f"list_filter([{', '.join(c.entry for c in checks)}], e -> e IS NOT NULL)"


def any_failed(checks: Sequence[Check]) -> str:
    """True when the row fails any check: a cheap flag computed for every row."""
    if not checks:
        return "false"
    return "(" + " OR ".join(f"coalesce({c.condition}, false)" for c in checks) + ")"


def row_hash(columns: Sequence[str], alias: str = "", *, when_set: Sequence[str] = ()) -> str:
    """md5 of a row's content; NULL and '' hash differently (chr(30) stands for NULL).

    ``when_set``: columns added to a table later, hashed after the others and only when not NULL
    (``concat_ws`` skips NULLs), so the rows stored before they existed keep their hash."""
    parts = [f"coalesce(CAST({alias}{ident(c)} AS VARCHAR), chr(30))" for c in columns]
    parts += [f"CAST({alias}{ident(c)} AS VARCHAR)" for c in when_set]
    return f"md5(concat_ws(chr(31), {', '.join(parts)}))"
