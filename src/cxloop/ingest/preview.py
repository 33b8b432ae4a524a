"""A mapping preview: the first rows of a file, and which column feeds each field.

For the upload page: read the file as the importer would (same readers, same encodings), resolve
the mapping as the importer would (names matched ignoring case and punctuation, then the preset,
a saved mapping, ``maps`` and ``sets``), and say what is missing — without importing anything.
Reading is done in a DuckDB of its own, in memory: the store is consulted only for a saved mapping.

Only the first rows are needed, so the page may send just the start of a big CSV (the first MiB,
say): a record cut at the end is ignored.
"""

from __future__ import annotations

import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import duckdb

from cxloop.errors import ConfigError, InputError
from cxloop.ingest.entities import Entity, get_entity
from cxloop.ingest.mapping import Column, Constant, Expr, Join, Source, get_preset, normalise, resolve
from cxloop.ingest.pipeline import (  # the importer's own rules for reading and saved mappings
    ImportOptions,
    _load_saved,
    _read_options,
)
from cxloop.ingest.readers import read
from cxloop.store.sql import ident
from cxloop.store.store import Store

__all__ = ["preview_file"]


def preview_file(
    path: str | Path,
    entity: str,
    *,
    preset: str | None = None,
    maps: Mapping[str, str] | None = None,
    sets: Mapping[str, str] | None = None,
    mapping_name: str | None = None,
    store: Store | None = None,
    delimiter: str | None = None,
    encoding: str = "auto",
    sheet: str | None = None,
    format: str | None = None,
    rows: int = 20,
) -> dict[str, Any]:
    """The preview of ``path`` as ``entity``::

        {"entity", "format", "encoding", "columns": [...], "rows": [{column: text}, ...],
         "mapping": {field: {"column": ...} | {"value": ...} | {"join": [...]} | {"expr": ...}},
         "fields": [{"name", "kind", "required", "source"}...], "unused_columns": [...],
         "missing_required": [...], "problems": [...], "ok": bool}

    ``rows`` are the first data rows, values as text exactly as read (the page escapes them).
    ``problems`` holds the importer's refusal (a mapped column absent, an unknown field, a
    required field without a source); ``ok`` is whether the importer would start. Raises
    ``InputError`` when the file cannot be read at all, ``ConfigError`` for an unknown entity or preset.
    """
    kind = get_entity(entity)
    chosen = get_preset(preset) if preset else None
    options = ImportOptions(preset=preset, delimiter=delimiter, encoding=encoding, sheet=sheet, format=format)
    read_options = _read_options(options, chosen.entities.get(kind.name) if chosen else None)
    if mapping_name and store is None:
        raise ConfigError("a saved mapping needs the store")
    saved = _load_saved(store, mapping_name, kind) if store is not None and mapping_name else None
    with tempfile.TemporaryDirectory(prefix="cxloop-preview-") as tmp, duckdb.connect() as conn:
        raw = read(conn, Path(path), read_options, Path(tmp))
        columns = raw.columns
        shown = ", ".join(f"CAST({ident(c)} AS VARCHAR)" for c in columns)
        found = conn.execute(f"SELECT {shown} FROM {raw.table} ORDER BY __row LIMIT {int(rows)}").fetchall()
    problems: list[str] = []
    try:
        fields: dict[str, Source] = resolve(
            kind,
            columns,
            file=Path(path).name,
            preset=chosen,
            saved=saved,
            maps=maps,
            sets=sets,
        ).fields
    except (InputError, ConfigError) as exc:
        problems.append(str(exc).removeprefix(f"{Path(path).name}: "))
        fields = _matched(kind, columns, maps or {}, sets or {})
    used = {c for src in fields.values() for c in _columns_of(src)}
    missing = [f.name for f in kind.fields if f.required and f.name not in fields]
    return {
        "entity": kind.name,
        "format": raw.format,
        "encoding": raw.encoding,
        "columns": columns,
        "rows": [dict(zip(columns, row, strict=True)) for row in found],
        "mapping": {name: _describe(src) for name, src in fields.items()},
        "fields": [
            {
                "name": f.name,
                "kind": f.kind,
                "required": f.required,
                "source": _describe(fields[f.name]) if f.name in fields else None,
            }
            for f in kind.fields
        ],
        "unused_columns": [c for c in columns if c not in used],
        "missing_required": missing,
        "problems": problems,
        "ok": not problems and not missing,
    }


def _matched(
    kind: Entity, columns: Sequence[str], maps: Mapping[str, str], sets: Mapping[str, str]
) -> dict[str, Source]:
    """What can be shown when the mapping does not resolve: names that match, and the valid parts
    of ``maps`` and ``sets``."""
    by_norm = {normalise(c): c for c in reversed(columns)}
    fields: dict[str, Source] = {
        f: Column(by_norm[normalise(f)]) for f in kind.field_names if normalise(f) in by_norm
    }
    for name, column in maps.items():
        if name in kind.field_names and column in columns:
            fields[name] = Column(column)
    for name, value in sets.items():
        if name in kind.field_names:
            fields[name] = Constant(value)
    return fields


def _columns_of(src: Source) -> tuple[str, ...]:
    if isinstance(src, Column):
        return (src.name,)
    if isinstance(src, Join | Expr):
        return tuple(src.columns)
    return ()


def _describe(src: Source) -> dict[str, Any]:
    if isinstance(src, Column):
        return {"column": src.name}
    if isinstance(src, Constant):
        return {"value": src.value}
    if isinstance(src, Join):
        return {"join": list(src.columns), "sep": src.sep}
    return {"expr": src.sql}
