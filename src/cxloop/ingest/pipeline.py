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
from contextlib import contextmanager, suppress
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import duckdb
import sqlalchemy as sa

from cxloop.errors import InputError, StoreWriteError, is_interrupted_query
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
    rejects_parquet: bool = False
    """Also write the report as Parquet with the values exactly as in the file (for the server)."""


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
    except Exception as exc:
        if is_interrupted_query(exc):
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
        digest = raw.sha256 or _sha256(path)
        job = _Job(
            store, conn, workdir, kind, mapping, raw, path, import_id, source, options, digest, started
        )
        result = None
        if not raw.structural and stage.fast_path_applies(kind, mapping):
            result = _fast_import(job, ctx_source, clock=clock, step=step)
        if result is None:
            result = _full_import(job, ctx_source, clock=clock, step=step)
        step("report")
    return result


@dataclass(frozen=True)
class _Job:
    """One import's inputs, once the file is read and mapped."""

    store: Store
    conn: duckdb.DuckDBPyConnection
    workdir: Path
    kind: Entity
    mapping: EntityMapping
    raw: readers.RawTable
    path: Path
    import_id: str
    source: str
    options: ImportOptions
    digest: str
    started: dt.datetime


def _fast_import(
    job: _Job, ctx: stage.StageContext, *, clock: Clock, step: StepCallback
) -> ImportResult | None:
    """A first load in one typed pass; None (and nothing written) when the full path is needed.

    Into empty tables every row is new, so each is parsed, checked and hashed on its way in.
    When fewer rows went in than the file has (some failed a check) or two share a key, the
    transaction is rolled back and :func:`_full_import` finds and reports exactly what is wrong.
    """
    conn, kind, mapping = job.conn, job.kind, job.mapping
    try:
        with _transaction(job.store, conn, job.workdir, kind, mapping) as tx:
            if not all(tx.is_empty(t) for t in stage.fast_path_tables(kind, mapping)):
                return None
            outputs = stage.build_fast_outputs(conn, job.raw, kind, mapping, ctx)
            *derived, main = outputs
            step("write")
            counts = {main.table.name: tx.load(main.table, main.relation, main.columns, job.import_id)}
            if counts[main.table.name] != job.raw.rows or tx.has_duplicates(main.table.name, main.key):
                raise _Fallback
            for o in derived:
                counts[o.table.name] = tx.load(o.table, o.relation, o.columns, job.import_id)
            tables = {o.table.name: TableCounts(counts[o.table.name], 0, 0) for o in outputs}
            result = _result(job, tables, rejected=0)
            if job.options.dry_run:
                raise _DryRun
            _record(tx, job, result, clock)
    except (_Fallback, bulk.KeyConflict):
        return None
    return result


def _full_import(
    job: _Job, ctx_source: stage.StageContext, *, clock: Clock, step: StepCallback
) -> ImportResult:
    """Type and check every row, report the rejects, classify against the store, write."""
    conn, raw, kind, mapping, options = job.conn, job.raw, job.kind, job.mapping, job.options
    stage.build_typed(conn, raw, kind, mapping, ctx_source)
    with _transaction(job.store, conn, job.workdir, kind, mapping) as tx:
        ctx = replace(ctx_source, lookup=tx.lookup)
        stage.collect_errors(conn, raw, kind, mapping, ctx)
        outputs = stage.build_outputs(conn, kind, mapping, ctx)
        step("compare")
        counts = {o.table.name: _classify(conn, tx, o) for o in outputs}
        result = _result(job, counts, rejected=rejects.count_rejected(conn, raw))
        if result.rejected:
            # Written inside the transaction: a dry run's rollback drops the staged tables.
            rejects.stage_rejects(conn, raw)
            result.reject_sample = rejects.sample(conn)
            files = rejects.write(
                conn,
                raw,
                options.rejects_dir,
                f"{job.path.stem}.{job.import_id[:8]}",
                parquet=options.rejects_parquet,
            )
            result.reject_file, result.rejected_rows_file = str(files.report), str(files.rows)
        if options.dry_run:
            raise _DryRun
        step("write")
        for o in outputs:
            tx.write(o.table, f"cx_cls_{o.table.name}", o.key, o.columns, job.import_id)
        _record(tx, job, result, clock)
    return result


def _record(tx: bulk.Transaction, job: _Job, result: ImportResult, clock: Clock) -> None:
    """The import's row in ``imports`` (and the saved mapping), in the import's transaction."""
    tx.insert_row(
        schema.imports,
        {
            "import_id": job.import_id,
            "entity": job.kind.name,
            "file_name": str(job.path),
            "file_sha256": job.digest,
            "source": job.source,
            "preset": job.mapping.preset,
            "mapping": json.dumps(job.mapping.describe()),
            "started_at": job.started,
            "finished_at": clock(),
            "rows_read": result.rows_read,
            "loaded": result.loaded,
            "updated": result.updated,
            "unchanged": result.unchanged,
            "rejected": result.rejected,
            "reject_file": result.reject_file,
        },
    )
    if job.options.save_mapping:
        _save_mapping(tx, job.options.save_mapping, job.kind, job.mapping, clock())


class _Fallback(Exception):
    """Raised inside a fast first load to roll it back and take the full path."""


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
                "SELECT current_setting('TimeZone'), current_setting('memory_limit'), "
                "current_setting('max_vacuum_tasks')"
            ).fetchone()
            assert previous is not None
            # The store's DuckDB works within the import's memory limit, spilling past it.
            conn.execute(f"SET TimeZone = {literal(settings.timezone)}")
            conn.execute(f"SET memory_limit = {literal(settings.import_memory_limit)}")
            # Within that limit a bulk insert flushes row groups before they are full, and the
            # next checkpoint would merge them all again ("vacuum"): 10 s for 10M order lines,
            # paid when the store is closed. Partly filled row groups cost nothing to keep.
            conn.execute("SET max_vacuum_tasks = 0")
            try:
                yield conn
                _checkpoint(conn)
            finally:
                _drop_temp_tables(conn)
                conn.execute(f"SET TimeZone = {literal(str(previous[0]))}")
                conn.execute(f"SET memory_limit = {literal(str(previous[1]))}")
                conn.execute(f"SET max_vacuum_tasks = {int(previous[2])}")
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


def _checkpoint(conn: duckdb.DuckDBPyConnection) -> None:
    """Write the committed import into the store file now, without merging row groups.

    Best effort: the import is committed and durable already (DuckDB's log holds what the file
    does not), and DuckDB refuses a checkpoint while another transaction is open.
    """
    with suppress(duckdb.Error):
        conn.execute("CHECKPOINT")


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


def _result(job: _Job, counts: dict[str, TableCounts], *, rejected: int) -> ImportResult:
    kind, mapping, raw = job.kind, job.mapping, job.raw
    main = counts[kind.table.name]
    used = {c for src in mapping.fields.values() for c in _columns_of(src)}
    return ImportResult(
        import_id=job.import_id,
        entity=kind.name,
        file=str(job.path),
        source=job.source,
        dry_run=job.options.dry_run,
        rows_read=raw.rows + len(raw.structural),
        loaded=main.loaded,
        updated=main.updated,
        unchanged=main.unchanged,
        rejected=rejected,
        tables=counts,
        mapping=mapping.describe(),
        unused_columns=[] if kind.keep_extra_columns_in else [c for c in raw.columns if c not in used],
        encoding=raw.encoding,
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
