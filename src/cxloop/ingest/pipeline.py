"""Import one file into the store: all or nothing, idempotent, every refusal explained.

``import_file`` is the one entry point the CLI, the API and tests share. The steps:

read (DuckDB, text as text) → map columns to fields → type and check every row in one pass →
find duplicate keys and broken references → in one store transaction: compare each good row's
content hash with the stored row, insert the new, update the changed, record the import → write
the reject files. A crash or Ctrl-C before the commit leaves the store exactly as it was.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import tempfile
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import duckdb
import sqlalchemy as sa

from cxloop.errors import InputError, StoreWriteError
from cxloop.ingest import readers, rejects, stage
from cxloop.ingest.entities import Entity, get_entity
from cxloop.ingest.mapping import (
    EntityMapping,
    entity_spec_mapping,
    get_preset,
    resolve,
    saved_spec,
)
from cxloop.ingest.readers import ReadOptions
from cxloop.store import bulk, schema
from cxloop.store.sql import literal
from cxloop.store.store import Store

Clock = Callable[[], dt.datetime]
StepCallback = Callable[[str], None]
STEPS = ("read", "check", "compare", "write", "report")


def utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)


@dataclass(frozen=True)
class ImportOptions:
    """Everything about an import except the store, the entity and the file."""

    preset: str | None = None
    mapping_name: str | None = None
    save_mapping: str | None = None
    maps: Mapping[str, str] = field(default_factory=dict)
    sets: Mapping[str, str] = field(default_factory=dict)
    date_formats: Sequence[str] = ()
    source: str | None = None
    format: str | None = None
    delimiter: str | None = None
    encoding: str = "auto"
    sheet: str | None = None
    dry_run: bool = False
    rejects_dir: Path = Path("cxloop-rejects")


@dataclass(frozen=True)
class TableCounts:
    loaded: int
    updated: int
    unchanged: int


@dataclass
class ImportResult:
    import_id: str
    entity: str
    file: str
    source: str
    dry_run: bool
    rows_read: int
    loaded: int
    updated: int
    unchanged: int
    rejected: int
    tables: dict[str, TableCounts]
    mapping: dict[str, Any]
    unused_columns: list[str]
    encoding: str | None
    reject_file: str | None = None
    rejected_rows_file: str | None = None
    reject_sample: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def import_file(
    store: Store,
    entity: str | Entity,
    path: str | Path,
    options: ImportOptions | None = None,
    *,
    clock: Clock = utc_now,
    on_step: StepCallback | None = None,
) -> ImportResult:
    """Import ``path`` as ``entity`` into ``store``; see the module docstring for the steps."""
    try:
        return _import_file(store, entity, path, options, clock=clock, on_step=on_step)
    except RuntimeError as exc:
        # DuckDB answers Ctrl-C (SIGINT) by interrupting the running query with this error.
        if "interrupted" in str(exc).lower():
            raise KeyboardInterrupt from None
        raise


def _import_file(
    store: Store,
    entity: str | Entity,
    path: str | Path,
    options: ImportOptions | None,
    *,
    clock: Clock,
    on_step: StepCallback | None,
) -> ImportResult:
    options = options or ImportOptions()
    kind = entity if isinstance(entity, Entity) else get_entity(entity)
    path = Path(path)
    step = on_step or (lambda _: None)
    started = clock()
    import_id = uuid.uuid4().hex
    preset = get_preset(options.preset) if options.preset else None
    saved = _load_saved(store, options.mapping_name, kind) if options.mapping_name else None
    read_options = _read_options(options, preset.entities.get(kind.name) if preset else None)
    with tempfile.TemporaryDirectory(prefix="cxloop-import-") as tmp, _staging(store, Path(tmp)) as conn:
        workdir = Path(tmp)
        step("read")
        raw = readers.read(conn, path, read_options, workdir)
        mapping = resolve(
            kind,
            raw.columns,
            file=str(path),
            preset=preset,
            saved=saved,
            maps=options.maps,
            sets=options.sets,
            date_formats=options.date_formats,
            source=options.source,
        )
        source = mapping.source or "default"
        ctx_source = stage.StageContext(
            source, store.settings.max_field_bytes, _no_lookup, timezone=store.settings.timezone
        )
        step("check")
        stage.build_typed(conn, raw, kind, mapping, ctx_source)
        digest = _sha256(path)
        with _transaction(store, conn, workdir, kind, mapping) as tx:
            ctx = replace(ctx_source, lookup=tx.lookup)
            stage.collect_errors(conn, raw, kind, mapping, ctx)
            outputs = stage.build_outputs(conn, kind, mapping, ctx)
            step("compare")
            counts = {o.table.name: _classify(conn, tx, o) for o in outputs}
            result = _result(conn, raw, kind, mapping, path, import_id, source, counts, options)
            if result.rejected:
                # Written inside the transaction: a dry run's rollback drops the staged tables.
                files = rejects.write(conn, raw, options.rejects_dir, f"{path.stem}.{import_id[:8]}")
                result.reject_file, result.rejected_rows_file = str(files.report), str(files.rows)
            if options.dry_run:
                raise _DryRun
            step("write")
            for o in outputs:
                tx.write(o.table, f"cx_cls_{o.table.name}", o.key, o.columns, import_id)
            tx.insert_row(
                schema.imports,
                {
                    "import_id": import_id,
                    "entity": kind.name,
                    "file_name": str(path),
                    "file_sha256": digest,
                    "source": source,
                    "preset": mapping.preset,
                    "mapping": json.dumps(mapping.describe()),
                    "started_at": started,
                    "finished_at": clock(),
                    "rows_read": result.rows_read,
                    "loaded": result.loaded,
                    "updated": result.updated,
                    "unchanged": result.unchanged,
                    "rejected": result.rejected,
                    "reject_file": result.reject_file,
                },
            )
            if options.save_mapping:
                _save_mapping(tx, options.save_mapping, kind, mapping, clock())
        step("report")
    return result


class _DryRun(Exception):
    """Raised inside the transaction to roll a dry run back."""


def _no_lookup(table: str, key: tuple[str, ...], values: tuple[str, ...], keys_sql: str) -> str:
    raise AssertionError("the store is consulted only inside the import transaction")


def _read_options(options: ImportOptions, preset_entity: Mapping[str, Any] | None) -> ReadOptions:
    base = ReadOptions()
    if preset_entity is not None:
        _, _, preset_reader, _ = entity_spec_mapping(preset_entity, where="preset", allow_expr=True)
        base = preset_reader or base
    return replace(
        base,
        format=options.format or base.format,
        delimiter=options.delimiter or base.delimiter,
        encoding=options.encoding if options.encoding != "auto" else base.encoding,
        sheet=options.sheet or base.sheet,
    )


@contextmanager
def _staging(store: Store, workdir: Path) -> Iterator[duckdb.DuckDBPyConnection]:
    """The DuckDB connection that reads and checks the file, with import-time settings."""
    settings = store.settings
    if store.dialect == "duckdb":
        with store.duckdb_connection() as conn:
            previous = conn.execute(
                "SELECT current_setting('TimeZone'), current_setting('memory_limit')"
            ).fetchone()
            assert previous is not None
            # The store's DuckDB works within the import's memory limit, spilling past it.
            conn.execute(f"SET TimeZone = {literal(settings.timezone)}")
            conn.execute(f"SET memory_limit = {literal(settings.import_memory_limit)}")
            try:
                yield conn
            finally:
                _drop_temp_tables(conn)
                conn.execute(f"SET TimeZone = {literal(str(previous[0]))}")
                conn.execute(f"SET memory_limit = {literal(str(previous[1]))}")
        return
    conn = duckdb.connect(
        config={
            "memory_limit": settings.import_memory_limit,
            "temp_directory": str(workdir / "spill"),
        }
    )
    try:
        conn.execute(f"SET TimeZone = {literal(settings.timezone)}")
        yield conn
    finally:
        conn.close()


def _drop_temp_tables(conn: duckdb.DuckDBPyConnection) -> None:
    for name, kind in conn.execute(
        "SELECT table_name, table_type FROM information_schema.tables "
        "WHERE table_catalog = 'temp' AND table_name LIKE 'cx\\_%' ESCAPE '\\'"
    ).fetchall():
        conn.execute(f'DROP {"VIEW" if kind == "VIEW" else "TABLE"} IF EXISTS temp.main."{name}"')


@contextmanager
def _transaction(
    store: Store,
    conn: duckdb.DuckDBPyConnection,
    workdir: Path,
    kind: Entity,
    mapping: EntityMapping,
) -> Iterator[bulk.Transaction]:
    try:
        if store.dialect == "duckdb":
            with bulk.duckdb_transaction(conn) as tx:
                yield tx
        else:
            tables = [kind.table.name, "imports", "saved_mappings"]
            if kind.name == "order-lines":
                tables.append("orders")
            if kind.name == "customers":
                tables.append("customer_aliases")
            with bulk.postgres_transaction(store.engine, conn, workdir, tables) as tx:
                yield tx
    except _DryRun:
        pass
    except _database_errors() as exc:
        raise StoreWriteError(
            f"the store refused the import, so nothing was written: {readers.short_error(exc)}"
        ) from exc


def _database_errors() -> tuple[type[BaseException], ...]:
    """Errors that mean the store said no (a constraint, a lock, a full disk), not a bug here."""
    errors: list[type[BaseException]] = [
        sa.exc.DBAPIError,
        duckdb.ConstraintException,
        duckdb.TransactionException,
        duckdb.IOException,
        duckdb.OutOfMemoryException,
    ]
    try:
        import psycopg

        errors.append(psycopg.Error)
    except ImportError:  # PostgreSQL support is an extra
        pass
    return tuple(errors)


def _classify(conn: duckdb.DuckDBPyConnection, tx: bulk.Transaction, out: stage.Output) -> TableCounts:
    key = out.key
    if tx.is_empty(out.table.name):
        # A first load: every row is new, so skip the join (and a copy of every row).
        conn.execute(
            f"CREATE OR REPLACE TEMP VIEW cx_cls_{out.table.name} AS "
            f"SELECT *, 'new' AS __status FROM {out.relation}"
        )
        count = conn.execute(f"SELECT count(*) FROM {out.relation}").fetchone()
        return TableCounts(int(count[0]) if count else 0, 0, 0)
    keys_sql = f"SELECT {', '.join(key)} FROM {out.relation}"
    existing = tx.lookup(out.table.name, key, ("row_hash",), keys_sql)
    match = " AND ".join(f"o.{k} = e.{k}" for k in key)
    conn.execute(
        f"CREATE OR REPLACE TEMP TABLE cx_cls_{out.table.name} AS SELECT o.*, "
        "CASE WHEN e.row_hash IS NULL THEN 'new' WHEN e.row_hash <> o.row_hash THEN 'changed' "
        f"ELSE 'same' END AS __status FROM {out.relation} o LEFT JOIN {existing} e ON {match}"
    )
    got = dict(
        conn.execute(f"SELECT __status, count(*) FROM cx_cls_{out.table.name} GROUP BY __status").fetchall()
    )
    return TableCounts(int(got.get("new", 0)), int(got.get("changed", 0)), int(got.get("same", 0)))


def _result(
    conn: duckdb.DuckDBPyConnection,
    raw: readers.RawTable,
    kind: Entity,
    mapping: EntityMapping,
    path: Path,
    import_id: str,
    source: str,
    counts: dict[str, TableCounts],
    options: ImportOptions,
) -> ImportResult:
    main = counts[kind.table.name]
    rejected = rejects.count_rejected(conn, raw)
    used = {c for src in mapping.fields.values() for c in _columns_of(src)}
    sample: list[dict[str, Any]] = []
    if rejected:
        rejects.stage_rejects(conn, raw)
        sample = rejects.sample(conn)
    return ImportResult(
        import_id=import_id,
        entity=kind.name,
        file=str(path),
        source=source,
        dry_run=options.dry_run,
        rows_read=raw.rows + len(raw.structural),
        loaded=main.loaded,
        updated=main.updated,
        unchanged=main.unchanged,
        rejected=rejected,
        tables=counts,
        mapping=mapping.describe(),
        unused_columns=[] if kind.keep_extra_columns_in else [c for c in raw.columns if c not in used],
        encoding=raw.encoding,
        reject_sample=sample,
    )


def _columns_of(src: object) -> tuple[str, ...]:
    name = getattr(src, "name", None)
    return (name,) if isinstance(name, str) else tuple(getattr(src, "columns", ()))


def _sha256(path: Path) -> str:
    with path.open("rb") as fh:
        return hashlib.file_digest(fh, "sha256").hexdigest()


def _load_saved(store: Store, name: str, kind: Entity) -> dict[str, Any]:
    table = schema.saved_mappings
    with store.engine.connect() as conn:
        row = conn.execute(sa.select(table).where(table.c.name == name)).first()
    if row is None:
        raise InputError(f"no saved mapping named {name!r}")
    if row.entity != kind.name:
        raise InputError(f"saved mapping {name!r} is for {row.entity}, not {kind.name}")
    spec: dict[str, Any] = json.loads(row.spec)
    return spec


def _save_mapping(
    tx: bulk.Transaction, name: str, kind: Entity, mapping: EntityMapping, now: dt.datetime
) -> None:
    tx.delete_where(schema.saved_mappings, "name", name)
    tx.insert_row(
        schema.saved_mappings,
        {
            "name": name,
            "entity": kind.name,
            "spec": saved_spec(mapping),
            "saved_at": now,
        },
    )
