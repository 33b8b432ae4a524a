"""How a file's columns become canonical fields: auto-matching, presets, saved mappings, --map.

A field's source is one of:

* a column name (``customer_id = "Customer ID"``), optionally with date formats
  (``ordered_at = { column = "InvoiceDate", formats = ["%m/%d/%Y %H:%M"] }``);
* a constant (``kind = { value = "nps" }``, or ``--set kind=nps`` on the command line);
* columns joined with a separator (``order_id = { join = ["customer_id", "date"], sep = "-" }``);
* a DuckDB SQL expression over the file's columns (``{ expr = "..." }``), accepted only from preset
  files shipped with cxloop or put in its presets folder by an administrator — never from the
  command line, a saved mapping or the web, so untrusted input cannot run SQL.

Precedence, lowest first: columns whose names match a field (ignoring case, spaces and
punctuation), the preset, a saved mapping, then ``--map``/``--set``.
"""

from __future__ import annotations

import json
import re
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from importlib import resources
from pathlib import Path
from typing import Any

from cxloop.errors import ConfigError, InputError
from cxloop.ingest.entities import Entity
from cxloop.ingest.readers import ReadOptions


@dataclass(frozen=True)
class Column:
    name: str
    formats: tuple[str, ...] = ()
    optional: bool = False  # a preset's column that some exports lack: the field is then unmapped


@dataclass(frozen=True)
class Constant:
    value: str


@dataclass(frozen=True)
class Join:
    columns: tuple[str, ...]
    sep: str = "-"


@dataclass(frozen=True)
class Expr:
    sql: str
    columns: tuple[str, ...] = ()  # the file columns it reads, checked before running


Source = Column | Constant | Join | Expr


@dataclass(frozen=True)
class EntityMapping:
    """The resolved recipe for one import: which source feeds each field, and how to read."""

    fields: dict[str, Source] = field(default_factory=dict)
    date_formats: tuple[str, ...] = ()
    source: str | None = None
    reader: ReadOptions = field(default_factory=ReadOptions)
    preset: str | None = None

    def describe(self) -> dict[str, Any]:
        """A JSON-friendly description, stored with every import."""
        return {name: _describe_source(src) for name, src in sorted(self.fields.items())}


@dataclass(frozen=True)
class Preset:
    name: str
    title: str
    doc: str
    source: str
    entities: dict[str, dict[str, Any]]


def _describe_source(src: Source) -> Any:
    if isinstance(src, Column):
        if not src.formats and not src.optional:
            return src.name
        return {"column": src.name, "formats": list(src.formats), "optional": src.optional}
    if isinstance(src, Constant):
        return {"value": src.value}
    if isinstance(src, Join):
        return {"join": list(src.columns), "sep": src.sep}
    return {"expr": src.sql}


def normalise(name: str) -> str:
    return re.sub(r"[^0-9a-z]", "", name.lower())


# ---------------------------------------------------------------- presets


def preset_dirs(extra: Path | None = None) -> list[Path]:
    dirs = [Path(str(resources.files("cxloop.ingest") / "presets"))]
    if extra is not None:
        dirs.append(extra)
    return dirs


def list_presets(extra: Path | None = None) -> list[Preset]:
    found: dict[str, Preset] = {}
    for directory in preset_dirs(extra):
        for path in sorted(directory.glob("*.toml")):
            preset = load_preset_file(path)
            found[preset.name] = preset
    return sorted(found.values(), key=lambda p: p.name)


def get_preset(name: str, extra: Path | None = None) -> Preset:
    for preset in list_presets(extra):
        if preset.name == name:
            return preset
    names = ", ".join(p.name for p in list_presets(extra))
    raise ConfigError(f"unknown preset {name!r}; presets: {names}")


def load_preset_file(path: Path) -> Preset:
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None
    entities = {k: v for k, v in data.items() if isinstance(v, dict)}
    for key in ("name", "title"):
        if not isinstance(data.get(key), str):
            raise ConfigError(f"{path}: the preset needs a string {key!r}")
    return Preset(
        name=data["name"],
        title=data["title"],
        doc=str(data.get("doc", "")),
        source=str(data.get("source", data["name"])),
        entities=entities,
    )


# ---------------------------------------------------------------- parsing specs


def parse_source(spec: Any, *, where: str, allow_expr: bool) -> Source:
    """Turn one TOML/JSON field spec into a Source; ``where`` names it in errors."""
    if isinstance(spec, str):
        return Column(spec)
    if not isinstance(spec, Mapping):
        raise ConfigError(f"{where}: expected a column name or a table, got {spec!r}")
    keys = set(spec)
    if "column" in keys and keys <= {"column", "formats", "optional"}:
        return Column(
            str(spec["column"]),
            _strings(spec.get("formats", ()), f"{where}.formats"),
            optional=bool(spec.get("optional", False)),
        )
    if keys == {"value"}:
        return Constant(str(spec["value"]))
    if "join" in keys and keys <= {"join", "sep"}:
        return Join(_strings(spec["join"], f"{where}.join"), str(spec.get("sep", "-")))
    if "expr" in keys and keys <= {"expr", "columns"}:
        if not allow_expr:
            raise ConfigError(f"{where}: SQL expressions are only allowed in preset files")
        return Expr(str(spec["expr"]), _strings(spec.get("columns", ()), f"{where}.columns"))
    raise ConfigError(
        f"{where}: unknown field spec {dict(spec)!r}; use a column name, "
        "{column, formats, optional}, {value}, {join, sep} or (presets only) {expr, columns}"
    )


def _strings(value: Any, where: str) -> tuple[str, ...]:
    if isinstance(value, str):
        return (value,)
    if isinstance(value, Sequence) and all(isinstance(v, str) for v in value):
        return tuple(value)
    raise ConfigError(f"{where}: expected a list of strings, got {value!r}")


def parse_assignments(items: Sequence[str], option: str) -> dict[str, str]:
    """``["field=Column", ...]`` from ``--map``/``--set`` into a dict, with clear errors."""
    out: dict[str, str] = {}
    for item in items:
        name, sep, value = item.partition("=")
        if not sep or not name.strip():
            raise ConfigError(f"{option} {item!r}: write it as FIELD=VALUE")
        out[name.strip()] = value.strip() if option == "--map" else value
    return out


def entity_spec_mapping(
    spec: Mapping[str, Any], *, where: str, allow_expr: bool
) -> tuple[dict[str, Source], tuple[str, ...], ReadOptions | None, str | None]:
    fields = {
        name: parse_source(value, where=f"{where}.fields.{name}", allow_expr=allow_expr)
        for name, value in dict(spec.get("fields", {})).items()
    }
    formats = _strings(spec.get("date_formats", ()), f"{where}.date_formats")
    reader = None
    if "reader" in spec:
        reader_spec = dict(spec["reader"])
        unknown = set(reader_spec) - {"format", "delimiter", "encoding", "header", "columns", "sheet"}
        if unknown:
            raise ConfigError(f"{where}.reader: unknown options {sorted(unknown)}")
        reader = ReadOptions(
            format=reader_spec.get("format"),
            delimiter=reader_spec.get("delimiter"),
            encoding=reader_spec.get("encoding", "auto"),
            header=bool(reader_spec.get("header", True)),
            column_names=_strings(reader_spec.get("columns", ()), f"{where}.reader.columns"),
            sheet=reader_spec.get("sheet"),
        )
    source = spec.get("source")
    return fields, formats, reader, str(source) if source else None


def saved_spec(mapping: EntityMapping) -> str:
    """Serialise a mapping for the saved_mappings table (expressions are never saved)."""
    if any(isinstance(s, Expr) for s in mapping.fields.values()):
        raise ConfigError("a mapping with SQL expressions comes from a preset; save it as a preset file")
    return json.dumps(
        {"fields": mapping.describe(), "date_formats": list(mapping.date_formats), "source": mapping.source}
    )


# ---------------------------------------------------------------- resolution


def resolve(
    entity: Entity,
    columns: Sequence[str],
    *,
    file: str,
    preset: Preset | None = None,
    saved: Mapping[str, Any] | None = None,
    maps: Mapping[str, str] | None = None,
    sets: Mapping[str, str] | None = None,
    date_formats: Sequence[str] = (),
    source: str | None = None,
) -> EntityMapping:
    """Decide the source of every field, then check it against the file's columns."""
    known = set(entity.field_names)
    by_norm = {normalise(c): c for c in reversed(columns)}
    fields: dict[str, Source] = {
        f: Column(by_norm[normalise(f)]) for f in entity.field_names if normalise(f) in by_norm
    }
    formats: tuple[str, ...] = ()
    chosen_source = None
    if preset is not None:
        spec = preset.entities.get(entity.name)
        if spec is None:
            raise ConfigError(
                f"preset {preset.name!r} has no mapping for {entity.name}; "
                f"it maps: {', '.join(preset.entities) or 'nothing'}"
            )
        pf, formats, _, chosen_source = entity_spec_mapping(
            spec, where=f"preset {preset.name}.{entity.name}", allow_expr=True
        )
        fields.update(pf)
        chosen_source = chosen_source or preset.source
    if saved is not None:
        sf, sformats, _, ssource = entity_spec_mapping(saved, where="saved mapping", allow_expr=False)
        fields.update(sf)
        formats = sformats or formats
        chosen_source = ssource or chosen_source
    for name, column in (maps or {}).items():
        fields[name] = Column(column)
    for name, value in (sets or {}).items():
        fields[name] = Constant(value)
    unknown = sorted(set(fields) - known)
    if unknown:
        raise InputError(
            f"unknown field(s) {', '.join(unknown)} for {entity.name}; "
            f"fields are: {', '.join(entity.field_names)}",
            file=file,
        )
    fields = _bind_columns(fields, columns)
    _check_columns(fields, columns, file)
    _check_required(entity, fields, columns, file)
    return EntityMapping(
        fields=fields,
        date_formats=tuple(date_formats) or formats,
        source=source or chosen_source,
        preset=preset.name if preset else None,
    )


def _bind_columns(fields: Mapping[str, Source], columns: Sequence[str]) -> dict[str, Source]:
    """Point each named column at the file's own spelling of it.

    An exact name wins; otherwise a single column equal to it ignoring case and surrounding
    blanks (exports write "Review Id" one month and "Review ID" the next). Optional columns that
    are absent leave their field unmapped.
    """
    by_fold: dict[str, list[str]] = {}
    for column in columns:
        by_fold.setdefault(column.strip().casefold(), []).append(column)

    def bind(name: str) -> str | None:
        if name in columns:
            return name
        candidates = by_fold.get(name.strip().casefold(), [])
        return candidates[0] if len(candidates) == 1 else None

    bound: dict[str, Source] = {}
    for field_name, src in fields.items():
        if isinstance(src, Column):
            found = bind(src.name)
            if found is None and src.optional:
                continue
            bound[field_name] = replace(src, name=found or src.name)
        elif isinstance(src, Join):
            bound[field_name] = replace(src, columns=tuple(bind(c) or c for c in src.columns))
        else:
            bound[field_name] = src
    return bound


def _check_columns(fields: Mapping[str, Source], columns: Sequence[str], file: str) -> None:
    present = set(columns)
    for name, src in fields.items():
        needed = (
            (src.name,) if isinstance(src, Column) else src.columns if isinstance(src, Join | Expr) else ()
        )
        missing = [c for c in needed if c not in present]
        if missing:
            raise InputError(
                f"column {missing[0]!r} (for field {name!r}) is not in the file; "
                f"columns found: {_found(columns)}{_delimiter_hint(columns)}",
                file=file,
                field=name,
            )


def _check_required(entity: Entity, fields: Mapping[str, Source], columns: Sequence[str], file: str) -> None:
    missing = [f.name for f in entity.fields if f.required and f.name not in fields]
    if missing:
        hint = " (or --set kind=nps|csat|ces)" if "kind" in missing else ""
        raise InputError(
            f"required field(s) {', '.join(missing)} not found: no column matches and no mapping "
            f"was given; map them with --map FIELD=COLUMN{hint}. Columns found: "
            f"{_found(columns)}{_delimiter_hint(columns)}",
            file=file,
            field=missing[0],
        )


def _found(columns: Sequence[str]) -> str:
    shown = ", ".join(repr(c) for c in columns[:40])
    return shown + (f" … ({len(columns)} in all)" if len(columns) > 40 else "")


def _delimiter_hint(columns: Sequence[str]) -> str:
    if len(columns) != 1:
        return ""
    for delimiter, label in ((";", ";"), ("\t", "\\t"), ("|", "|"), (",", ",")):
        if delimiter in columns[0]:
            return f". The header looks separated by {label!r}: try --delimiter '{label}'"
    return ""


def with_reader(mapping: EntityMapping, reader: ReadOptions) -> EntityMapping:
    return replace(mapping, reader=reader)
