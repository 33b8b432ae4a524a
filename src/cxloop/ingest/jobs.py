"""Import jobs: a file imported in the background, its state in the store for every process to see.

The web server accepts an upload, records a job (``queued``) in ``import_jobs`` and hands it to its
:class:`ImportRunner`, one background thread per server process that runs jobs one after the
other with :func:`~cxloop.ingest.pipeline.import_file` — the CLI's import, same checks, same
transaction. The job moves to ``running`` (with the importer's current ``step``) and ends ``done``
with the counts, or ``failed`` with the reason. Its reject report (line, field, value, reason) is
kept in ``import_job_rejects`` (up to a limit), so any server process can serve it; the uploaded
file and the job's work folder are deleted when the job ends.

A job whose process died (a restart mid-import) would stay ``running`` forever: when a runner
starts, jobs left ``queued`` or ``running`` by a process of the same host that no longer exists
are marked ``failed`` (:func:`fail_abandoned`). Their imports wrote nothing: an import is one
transaction.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import re
import shutil
import socket
import threading
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import pyarrow.parquet as pq
import sqlalchemy as sa

from cxloop.errors import CxloopError
from cxloop.ingest.pipeline import ImportOptions, import_file
from cxloop.ingest.rejects import parquet_report
from cxloop.store import schema
from cxloop.store.sql import literal
from cxloop.store.store import Store

__all__ = [
    "JOB_STATUSES",
    "ImportRunner",
    "JobOptions",
    "create_job",
    "fail_abandoned",
    "get_job",
    "iter_rejects",
    "list_jobs",
    "past_imports",
    "rejects_page",
    "run_job",
    "safe_file_name",
]

Clock = Callable[[], dt.datetime]
JobStatus = Literal["queued", "running", "done", "failed"]
JOB_STATUSES: tuple[JobStatus, ...] = ("queued", "running", "done", "failed")
J = schema.import_jobs
JR = schema.import_job_rejects
log = logging.getLogger("cxloop.imports")
REJECT_BATCH = 10_000


@dataclass(frozen=True)
class JobOptions:
    """The import options a job may carry (the CLI's, less the rejects folder: the job keeps its own)."""

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

    def to_json(self) -> str:
        return json.dumps(
            {
                "preset": self.preset,
                "mapping_name": self.mapping_name,
                "save_mapping": self.save_mapping,
                "maps": dict(self.maps),
                "sets": dict(self.sets),
                "date_formats": list(self.date_formats),
                "source": self.source,
                "format": self.format,
                "delimiter": self.delimiter,
                "encoding": self.encoding,
                "sheet": self.sheet,
                "dry_run": self.dry_run,
            }
        )

    @classmethod
    def from_json(cls, text: str) -> JobOptions:
        data = json.loads(text)
        data["date_formats"] = tuple(data.get("date_formats", ()))
        return cls(**data)

    def import_options(self, rejects_dir: Path) -> ImportOptions:
        return ImportOptions(
            preset=self.preset,
            mapping_name=self.mapping_name,
            save_mapping=self.save_mapping,
            maps=dict(self.maps),
            sets=dict(self.sets),
            date_formats=tuple(self.date_formats),
            source=self.source,
            format=self.format,
            delimiter=self.delimiter,
            encoding=self.encoding,
            sheet=self.sheet,
            dry_run=self.dry_run,
            rejects_dir=rejects_dir,
            rejects_parquet=True,
        )


def this_worker() -> str:
    """``host:pid`` of this process."""
    return f"{socket.gethostname()}:{os.getpid()}"


def safe_file_name(name: str | None) -> str:
    """An uploaded file's name reduced to a harmless base name (its extension tells the format)."""
    base = re.split(r"[\\/]", name or "")[-1]
    cleaned = re.sub(r"[^A-Za-z0-9._ -]", "_", base).strip(" .")[-120:]
    return cleaned or "upload"


def create_job(
    store: Store,
    *,
    entity: str,
    file_name: str,
    stored_path: Path,
    file_bytes: int,
    options: JobOptions,
    user_id: str | None,
    now: dt.datetime,
    job_id: str | None = None,
) -> str:
    """Record a queued job for the file at ``stored_path`` (the runner of this process will run it)."""
    job_id = job_id or uuid.uuid4().hex
    with store.engine.begin() as conn:
        conn.execute(
            J.insert().values(
                job_id=job_id,
                status="queued",
                entity=entity,
                file_name=file_name,
                file_bytes=file_bytes,
                stored_path=str(stored_path),
                options=options.to_json(),
                dry_run=options.dry_run,
                user_id=user_id,
                worker=this_worker(),
                created_at=now,
            )
        )
    return job_id


def _view(row: Any) -> dict[str, Any]:
    job = {k: v for k, v in row._mapping.items() if k not in ("stored_path", "worker")}
    job["options"] = json.loads(job["options"])
    return job


def get_job(store: Store, job_id: str) -> dict[str, Any] | None:
    """The job as a dict (every column but the server's path and process; ``options`` parsed)."""
    with store.engine.connect() as conn:
        row = conn.execute(sa.select(J).where(J.c.job_id == job_id)).first()
    return None if row is None else _view(row)


def list_jobs(store: Store, *, limit: int = 50) -> list[dict[str, Any]]:
    """The most recent jobs, newest first."""
    with store.engine.connect() as conn:
        found = conn.execute(sa.select(J).order_by(J.c.created_at.desc(), J.c.job_id).limit(limit))
        return [_view(row) for row in found]


def past_imports(store: Store, *, limit: int = 50) -> list[dict[str, Any]]:
    """The most recent rows of ``imports`` (CLI and server alike), newest first; an upload's
    ``file_name`` is the name it was uploaded with, and ``job_id`` names its job."""
    i = schema.imports
    query = (
        sa.select(
            i.c.import_id,
            i.c.entity,
            sa.func.coalesce(J.c.file_name, i.c.file_name).label("file_name"),
            i.c.source,
            i.c.preset,
            i.c.started_at,
            i.c.finished_at,
            i.c.rows_read,
            i.c.loaded,
            i.c.updated,
            i.c.unchanged,
            i.c.rejected,
            J.c.job_id,
        )
        .select_from(i.outerjoin(J, J.c.import_id == i.c.import_id))
        .order_by(i.c.started_at.desc(), i.c.import_id)
        .limit(limit)
    )
    with store.engine.connect() as conn:
        return [dict(row._mapping) for row in conn.execute(query)]


def _update(store: Store, job_id: str, **values: Any) -> int:
    with store.engine.begin() as conn:
        return conn.execute(J.update().where(J.c.job_id == job_id).values(**values)).rowcount


def _set_step(store: Store, job_id: str, step: str) -> None:
    """Record the importer's step while its transaction is open.

    On DuckDB this thread's pooled connection is the importer's, inside its transaction: an update
    made through it would commit the import halfway. A cursor of the raw connection is a connection
    of its own to the same database, with its own transaction.
    """
    if store.dialect != "duckdb":
        _update(store, job_id, step=step)
        return
    with store.duckdb_connection() as conn:
        cursor = conn.cursor()
        try:
            cursor.execute("UPDATE import_jobs SET step = ? WHERE job_id = ?", [step, job_id])
        finally:
            cursor.close()


def run_job(
    store: Store,
    job_id: str,
    *,
    clock: Clock,
    rejects_kept: int = 100_000,
    on_imported: Callable[[], None] | None = None,
) -> dict[str, Any] | None:
    """Run the queued job ``job_id`` here and now; returns the finished job (None if it was not
    queued: another runner took it, or it is unknown). Never raises for a bad file: the job fails.
    ``on_imported`` is called once the data is in and before the job says so (a server forgets
    what it knew of the data there: whoever sees "done" then sees the new data)."""
    with store.engine.begin() as conn:
        row = conn.execute(sa.select(J).where(J.c.job_id == job_id, J.c.status == "queued")).first()
        if row is None:
            return None
        claimed = conn.execute(
            J.update()
            .where(J.c.job_id == job_id, J.c.status == "queued")
            .values(status="running", started_at=clock(), worker=this_worker())
        ).rowcount
    if not claimed:
        return None
    path = Path(row.stored_path)
    try:
        options = JobOptions.from_json(row.options)

        def step(name: str) -> None:
            _set_step(store, job_id, name)

        result = import_file(
            store,
            row.entity,
            path,
            options.import_options(path.parent / "rejects"),
            clock=clock,
            on_step=step,
        )
        if on_imported is not None and not options.dry_run:
            on_imported()
        kept = _keep_rejects(store, job_id, result.reject_file, rejects_kept) if result.reject_file else 0
        _update(
            store,
            job_id,
            status="done",
            step=None,
            finished_at=clock(),
            import_id=None if options.dry_run else result.import_id,
            rows_read=result.rows_read,
            loaded=result.loaded,
            updated=result.updated,
            unchanged=result.unchanged,
            rejected=result.rejected,
            rejects_kept=kept,
        )
    except (CxloopError, ValueError) as exc:  # the file, the mapping or the store said no
        message = str(exc).replace(str(path), row.file_name)
        _update(store, job_id, status="failed", finished_at=clock(), error=message)
    except Exception:
        log.exception("import job %s failed", job_id)
        _update(
            store,
            job_id,
            status="failed",
            finished_at=clock(),
            error="an unexpected error stopped the import (it has been logged); nothing was written",
        )
    finally:
        shutil.rmtree(path.parent, ignore_errors=True)
        _update(store, job_id, stored_path=None)
    return get_job(store, job_id)


def _keep_rejects(store: Store, job_id: str, report: str, limit: int) -> int:
    """Copy the first ``limit`` problems of the report into ``import_job_rejects``."""
    source = parquet_report(Path(report))
    if limit <= 0 or not source.exists():
        return 0
    if store.dialect == "duckdb":
        with store.duckdb_connection() as conn:
            conn.execute(
                "INSERT INTO import_job_rejects (job_id, seq, line, field, value, reason) "
                f"SELECT {literal(job_id)}, row_number() OVER (ORDER BY line, field) - 1, "
                f"line, field, value, reason FROM read_parquet({literal(str(source))}) "
                f"ORDER BY line, field LIMIT {int(limit)}"
            )
            found = conn.execute(
                f"SELECT count(*) FROM import_job_rejects WHERE job_id = {literal(job_id)}"
            ).fetchone()
        return int(found[0]) if found else 0
    kept = 0
    raw = store.engine.raw_connection()
    try:
        pg: Any = raw.driver_connection
        with (
            pg.cursor() as cur,
            cur.copy("COPY import_job_rejects (job_id, seq, line, field, value, reason) FROM STDIN") as copy,
        ):
            for batch in pq.ParquetFile(source).iter_batches(batch_size=REJECT_BATCH):
                for line, name, value, reason in zip(*(c.to_pylist() for c in batch.columns), strict=True):
                    if kept >= limit:
                        break
                    # PostgreSQL text cannot hold NUL, which is one reason a value is rejected.
                    text = None if value is None else str(value).replace("\x00", "\ufffd")
                    copy.write_row((job_id, kept, line, name, text, reason))
                    kept += 1
        pg.commit()
    finally:
        raw.close()
    return kept


def rejects_page(store: Store, job_id: str, *, limit: int = 100, offset: int = 0) -> list[dict[str, Any]]:
    """Problems ``offset`` to ``offset + limit`` of the job's reject report, by line then field."""
    query = (
        sa.select(JR.c.line, JR.c.field, JR.c.value, JR.c.reason)
        .where(JR.c.job_id == job_id, JR.c.seq >= offset, JR.c.seq < offset + limit)
        .order_by(JR.c.seq)
    )
    with store.engine.connect() as conn:
        return [dict(row._mapping) for row in conn.execute(query)]


def iter_rejects(store: Store, job_id: str, *, batch: int = REJECT_BATCH) -> Iterator[list[dict[str, Any]]]:
    """The whole stored report in batches, each read on a connection of its own (so the batches may
    be read from different threads, as a streamed response does)."""
    offset = 0
    while True:
        rows = rejects_page(store, job_id, limit=batch, offset=offset)
        if not rows:
            return
        yield rows
        offset += batch


def fail_abandoned(store: Store, *, now: dt.datetime) -> int:
    """Mark failed the jobs left queued or running by a process of this host that has ended."""
    host = socket.gethostname()
    with store.engine.connect() as conn:
        found = conn.execute(
            sa.select(J.c.job_id, J.c.worker, J.c.stored_path).where(J.c.status.in_(("queued", "running")))
        ).all()
    ended = [r for r in found if r.worker and r.worker.rpartition(":")[0] == host and not _alive(r.worker)]
    for r in ended:
        _fail(store, r.job_id, now, "the server stopped before this import finished; nothing was written")
    return len(ended)


def _fail(store: Store, job_id: str, now: dt.datetime, error: str) -> None:
    """End a job that did not run to its end: failed, its upload deleted."""
    with store.engine.connect() as conn:
        stored = conn.execute(sa.select(J.c.stored_path).where(J.c.job_id == job_id)).scalar()
    if stored:
        shutil.rmtree(Path(stored).parent, ignore_errors=True)
    with store.engine.begin() as conn:
        conn.execute(
            J.update()
            .where(J.c.job_id == job_id, J.c.status.in_(("queued", "running")))
            .values(status="failed", finished_at=now, stored_path=None, error=f"{error}: upload it again")
        )


def _alive(worker: str) -> bool:
    pid = worker.rpartition(":")[2]
    if not pid.isdigit():
        return True
    if int(pid) == os.getpid():
        return True
    try:
        os.kill(int(pid), 0)
    except (ProcessLookupError, OverflowError):  # no such process (or no such process id)
        return False
    except PermissionError:
        return True
    return True


class ImportRunner:
    """Runs this process's import jobs on one background thread, one after the other.

    One thread: DuckDB allows one writer, and on PostgreSQL imports into the same table wait for
    each other anyway. No thread exists until the first job; :meth:`shutdown` waits for the running
    job and fails the queued ones.
    """

    def __init__(
        self,
        store: Store,
        *,
        clock: Clock,
        rejects_kept: int = 100_000,
        on_imported: Callable[[], None] | None = None,
    ) -> None:
        self.store = store
        self.clock = clock
        self.rejects_kept = rejects_kept
        self.on_imported = on_imported
        self._lock = threading.Lock()
        self._executor: ThreadPoolExecutor | None = None
        self._queued: set[str] = set()

    def submit(self, job_id: str) -> None:
        with self._lock:
            if self._executor is None:
                fail_abandoned(self.store, now=self.clock())
                self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="cxloop-import")
            self._queued.add(job_id)
            self._executor.submit(self._run, job_id)

    def queue(
        self,
        *,
        entity: str,
        file_name: str,
        stored_path: Path,
        file_bytes: int,
        options: JobOptions,
        user_id: str | None,
        job_id: str | None = None,
    ) -> str:
        """Record a job for the upload at ``stored_path`` and run it here; if it cannot be recorded
        the upload's folder goes (nothing is left behind for a job that does not exist)."""
        try:
            job_id = create_job(
                self.store,
                entity=entity,
                file_name=file_name,
                stored_path=stored_path,
                file_bytes=file_bytes,
                options=options,
                user_id=user_id,
                now=self.clock(),
                job_id=job_id,
            )
        except BaseException:
            shutil.rmtree(stored_path.parent, ignore_errors=True)
            raise
        self.submit(job_id)
        return job_id

    def _run(self, job_id: str) -> None:
        try:
            run_job(
                self.store,
                job_id,
                clock=self.clock,
                rejects_kept=self.rejects_kept,
                on_imported=self.on_imported,
            )
        except Exception:  # the store itself failed: nothing more can be recorded
            log.exception("import job %s could not be run", job_id)
        finally:
            with self._lock:
                self._queued.discard(job_id)

    def wait(self) -> None:
        """Wait until every job submitted so far has ended (tests and benchmarks)."""
        with self._lock:
            executor = self._executor
        if executor is not None:
            executor.submit(lambda: None).result()

    def shutdown(self) -> None:
        with self._lock:
            executor, self._executor = self._executor, None
        if executor is None:
            return
        executor.shutdown(wait=True, cancel_futures=True)
        for job_id in list(self._queued):
            _fail(self.store, job_id, self.clock(), "the server stopped before this import started")
