"""The imports API (``/api/v1/imports``): upload a file, import it in the background, follow it,
read its reject report; and preview a file's mapping before importing it. Needs ``imports.run``.

``POST /api/v1/imports`` saves the upload under ``CXLOOP_UPLOAD_DIR``, records a job in the store
and answers 202 with the job and its ``Location`` at once; this process's
:class:`~cxloop.ingest.jobs.ImportRunner` imports it with the CLI's importer and deletes the file.
Any server process answers for any job: the state is in the store. Uploads larger than
``CXLOOP_MAX_UPLOAD_MB`` are refused with 413 before their body is read, by ``Content-Length``
(a request without one gets 411); the server refuses a body longer than it declares.

The request bodies are parsed here rather than declared as FastAPI ``Form`` parameters, because
FastAPI reads a declared body before any dependency runs — so before its size could be checked.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import shutil
import tempfile
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData, UploadFile
from starlette.responses import JSONResponse, StreamingResponse

from cxloop.errors import ConfigError, InputError
from cxloop.ingest.csvsafe import neutralise
from cxloop.ingest.entities import ENTITIES, get_entity
from cxloop.ingest.jobs import (
    ImportRunner,
    JobOptions,
    get_job,
    iter_rejects,
    list_jobs,
    past_imports,
    rejects_page,
    safe_file_name,
)
from cxloop.ingest.mapping import get_preset, parse_assignments
from cxloop.ingest.preview import preview_file
from cxloop.web.auth import require
from cxloop.web.deps import SettingsDep, StoreDep
from cxloop.web.errors import Problem, problem_responses
from cxloop.web.roles import Capability
from cxloop.web.sessions import Principal
from cxloop.web.settings import WebSettings
from cxloop.web.strict import no_unknown_query

router = APIRouter(prefix="/api/v1/imports", tags=["imports"], dependencies=[Depends(no_unknown_query)])
RUN = require(Capability.IMPORTS_RUN)
FORM_FIELDS = 64  # every option of an import, with room for many --map pairs


def get_runner(request: Request) -> ImportRunner:
    runner: ImportRunner = request.app.state.import_runner
    return runner


RunnerDep = Annotated[ImportRunner, Depends(get_runner)]


def upload_size(request: Request, settings: SettingsDep) -> None:
    """Refuse an upload too large (413) or of unknown size (411) before its body is read."""
    declared = request.headers.get("content-length")
    if declared is None or not declared.isdigit():
        raise Problem(411, detail="send the upload with a Content-Length header")
    if int(declared) > settings.max_upload_bytes:
        raise Problem(
            413,
            detail=f"the upload is {int(declared):,} bytes; the limit is {settings.max_upload_bytes:,} "
            f"bytes (CXLOOP_MAX_UPLOAD_MB={settings.max_upload_mb:g})",
            limit_bytes=settings.max_upload_bytes,
        )


# -- models ------------------------------------------------------------------------------------


class Job(BaseModel):
    """An import job: its state, what was uploaded, and, once done, the importer's counts."""

    job_id: str = Field(examples=["5f0c9a6e2b8d4c1f9e7a3b2c1d0e9f8a"])
    status: Literal["queued", "running", "done", "failed"] = Field(examples=["done"])
    step: str | None = Field(
        description="While running: read, check, compare, write or report", examples=[None]
    )
    entity: str = Field(examples=["orders"])
    file_name: str = Field(description="As uploaded", examples=["orders-2025-12.csv"])
    file_bytes: int = Field(examples=[48213])
    dry_run: bool = Field(examples=[False])
    options: dict[str, Any] = Field(examples=[{"preset": None, "maps": {"ordered_at": "Placed at"}}])
    user_id: str | None
    created_at: dt.datetime
    started_at: dt.datetime | None
    finished_at: dt.datetime | None
    import_id: str | None = Field(description="The row in `imports` (none for a dry run)")
    rows_read: int | None = Field(examples=[1200])
    loaded: int | None = Field(examples=[1180])
    updated: int | None = Field(examples=[12])
    unchanged: int | None = Field(examples=[5])
    rejected: int | None = Field(examples=[3])
    rejects_kept: int | None = Field(description="Problems of the reject report kept", examples=[4])
    error: str | None = Field(description="Why the job failed", examples=[None])
    links: dict[str, str] = Field(
        examples=[{"self": "/api/v1/imports/5f0c…", "rejects": "/api/v1/imports/5f0c…/rejects"}]
    )


class PastImport(BaseModel):
    """A row of the store's import log (the CLI's imports and the server's)."""

    import_id: str
    entity: str = Field(examples=["orders"])
    file_name: str = Field(examples=["orders-2025-12.csv"])
    source: str = Field(examples=["default"])
    preset: str | None = Field(examples=["shopify"])
    started_at: dt.datetime
    finished_at: dt.datetime
    rows_read: int
    loaded: int
    updated: int
    unchanged: int
    rejected: int
    job_id: str | None = Field(description="The upload's job, when it came through the server")


class Imports(BaseModel):
    """Recent upload jobs, and the most recent imports (from the CLI too)."""

    jobs: list[Job]
    imports: list[PastImport]


class Reject(BaseModel):
    """One problem: the file's line, the field, the value as it was in the file, and why."""

    line: int | None = Field(examples=[7])
    field: str | None = Field(examples=["ordered_at"])
    value: str | None = Field(examples=["31/02/2025"])
    reason: str | None = Field(examples=["not a date (ISO 8601, e.g. 2024-03-31 14:05); use --date-format"])


class Rejects(BaseModel):
    """A page of a job's reject report, by line then field."""

    items: list[Reject]
    total: int = Field(description="Problems kept (see the job's rejects_kept)", examples=[4])
    rejected_rows: int = Field(description="Rows rejected", examples=[3])
    limit: int = Field(examples=[100])
    offset: int = Field(examples=[0])
    next: str | None


class PreviewField(BaseModel):
    name: str = Field(examples=["ordered_at"])
    kind: str = Field(examples=["timestamp"])
    required: bool
    source: dict[str, Any] | None = Field(examples=[{"column": "Placed at"}])


class Preview(BaseModel):
    """The first rows of a file and the mapping the importer would use."""

    entity: str = Field(examples=["orders"])
    format: str = Field(examples=["csv"])
    encoding: str | None = Field(examples=["utf-8"])
    columns: list[str] = Field(examples=[["Order ID", "Placed at", "Total"]])
    rows: list[dict[str, str | None]] = Field(
        examples=[[{"Order ID": "O1", "Placed at": "2025-12-01", "Total": "10.50"}]]
    )
    mapping: dict[str, dict[str, Any]] = Field(examples=[{"order_id": {"column": "Order ID"}}])
    fields: list[PreviewField]
    unused_columns: list[str] = Field(examples=[["Total"]])
    missing_required: list[str] = Field(examples=[["ordered_at"]])
    problems: list[str] = Field(examples=[["required field(s) ordered_at not found: ..."]])
    ok: bool = Field(description="Whether the importer would start with this mapping", examples=[False])


def job_model(job: dict[str, Any]) -> Job:
    base = f"{router.prefix}/{job['job_id']}"
    return Job(**job, links={"self": base, "rejects": f"{base}/rejects"})


# -- parsing the multipart body ----------------------------------------------------------------

MULTIPART_FIELDS: dict[str, dict[str, Any]] = {
    "file": {
        "type": "string",
        "format": "binary",
        "description": "The export (CSV/TSV, Parquet, JSONL, XLSX)",
    },
    "entity": {"type": "string", "enum": list(ENTITIES), "description": "What the file holds"},
    "preset": {
        "type": "string",
        "description": "A preset for a known source (GET presets: `cxloop presets list`)",
    },
    "map": {
        "type": "array",
        "items": {"type": "string"},
        "description": "FIELD=COLUMN; repeat the part for more",
        "example": ["ordered_at=Placed at"],
    },
    "set": {"type": "array", "items": {"type": "string"}, "description": "FIELD=VALUE for every row"},
    "mapping": {"type": "string", "description": "A mapping saved earlier"},
    "save_mapping": {"type": "string", "description": "Save this import's mapping under a name"},
    "date_format": {"type": "array", "items": {"type": "string"}, "description": "strftime, e.g. %d/%m/%Y"},
    "source": {"type": "string", "description": "The source system (default: the preset's, else 'default')"},
    "format": {"type": "string", "enum": ["csv", "tsv", "whitespace", "parquet", "jsonl", "xlsx"]},
    "delimiter": {"type": "string"},
    "encoding": {"type": "string", "default": "auto"},
    "sheet": {"type": "string"},
    "dry_run": {"type": "boolean", "default": False, "description": "Check and count, write nothing"},
}


def multipart(*names: str, extra: dict[str, Any] | None = None) -> dict[str, Any]:
    properties = {n: MULTIPART_FIELDS[n] for n in names} | (extra or {})
    return {
        "requestBody": {
            "required": True,
            "content": {
                "multipart/form-data": {
                    "schema": {"type": "object", "required": ["file", "entity"], "properties": properties},
                    "encoding": {"file": {"contentType": "application/octet-stream"}},
                }
            },
        }
    }


def invalid(name: str, message: str) -> Problem:
    """A 422 problem naming one part of the form, shaped like FastAPI's validation errors."""
    return Problem(
        422,
        detail=f"body.{name}: {message}",
        errors=[{"loc": ["body", name], "msg": message, "type": "value_error"}],
    )


async def read_form(request: Request) -> FormData:
    if not request.headers.get("content-type", "").startswith("multipart/form-data"):
        raise Problem(415, detail="send the file as multipart/form-data")
    try:
        return await request.form(max_files=1, max_fields=FORM_FIELDS)
    except Exception as exc:  # a malformed body: Starlette's parser says what
        raise Problem(400, detail=f"the multipart body cannot be read: {exc}") from None


def text(form: FormData, name: str) -> str | None:
    value = form.get(name)
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise invalid(name, "must be text, not a file")
    return value


def texts(form: FormData, name: str) -> list[str]:
    values = form.getlist(name)
    if any(not isinstance(v, str) for v in values):
        raise invalid(name, "must be text, not a file")
    return [str(v) for v in values if v != ""]


def flag(form: FormData, name: str) -> bool:
    value = (text(form, name) or "false").strip().lower()
    if value in ("true", "1", "yes", "on"):
        return True
    if value in ("false", "0", "no", "off"):
        return False
    raise invalid(name, f"{value!r} is not true or false")


def upload(form: FormData) -> UploadFile:
    found = form.get("file")
    if not isinstance(found, UploadFile):
        raise invalid("file", "attach the file as the part named 'file'")
    return found


def import_options(form: FormData) -> tuple[str, JobOptions]:
    """The entity and options of the form, checked as far as they can be without the file."""
    entity = text(form, "entity")
    if entity is None:
        raise invalid("entity", f"say what the file holds: one of {', '.join(ENTITIES)}")
    try:
        kind = get_entity(entity)
    except ConfigError as exc:
        raise invalid("entity", str(exc)) from None
    preset = text(form, "preset")
    if preset is not None:
        try:
            get_preset(preset)
        except ConfigError as exc:
            raise invalid("preset", str(exc)) from None
    assignments = {}
    for part, option in (("map", "--map"), ("set", "--set")):
        try:
            assignments[part] = parse_assignments(texts(form, part), option)
        except ConfigError as exc:
            raise invalid(part, str(exc).replace(option, part)) from None
        unknown = sorted(set(assignments[part]) - set(kind.field_names))
        if unknown:
            raise invalid(
                part, f"unknown field(s) {', '.join(unknown)}; fields: {', '.join(kind.field_names)}"
            )
    options = JobOptions(
        preset=preset,
        mapping_name=text(form, "mapping"),
        save_mapping=text(form, "save_mapping"),
        maps=assignments["map"],
        sets=assignments["set"],
        date_formats=tuple(texts(form, "date_format")),
        source=text(form, "source"),
        format=text(form, "format"),
        delimiter=text(form, "delimiter"),
        encoding=text(form, "encoding") or "auto",
        sheet=text(form, "sheet"),
        dry_run=flag(form, "dry_run"),
    )
    return kind.name, options


def private_dir(path: Path) -> None:
    """Create ``path`` if needed, for this user only (an existing folder is left as it is: each
    upload and export gets a folder of its own inside, for this user only, as they hold customer
    data)."""
    path.mkdir(parents=True, exist_ok=True, mode=0o700)


def save_upload(file: UploadFile, folder: Path) -> tuple[Path, int]:
    """Copy the upload into ``folder`` under a safe name; returns the path and its size."""
    private_dir(folder.parent)
    folder.mkdir(mode=0o700)
    path = folder / safe_file_name(file.filename)
    file.file.seek(0)
    with path.open("wb") as out:
        shutil.copyfileobj(file.file, out, 1 << 20)
    return path, path.stat().st_size


# -- routes ------------------------------------------------------------------------------------


@router.post(
    "",
    summary="Upload a file to import in the background",
    status_code=202,
    response_model=Job,
    dependencies=[Depends(upload_size)],
    openapi_extra=multipart(*MULTIPART_FIELDS),
    responses={
        202: {"description": "Accepted: the job, queued; follow its Location"},
        **problem_responses(400, 401, 403, 411, 413, 415, 422),
    },
)
async def start_import(
    request: Request,
    store: StoreDep,
    settings: SettingsDep,
    runner: RunnerDep,
    who: Annotated[Principal, Depends(RUN)],
) -> JSONResponse:
    """Upload a file and import it in the background (the CLI's `cxloop import ENTITY FILE` with
    its options as form parts). Answers 202 at once with the queued job and its `Location`; poll it
    until `status` is `done` (with the counts) or `failed` (with the `error`)."""
    form = await read_form(request)
    try:
        entity, options = import_options(form)
        file = upload(form)
        job_id = uuid.uuid4().hex
        folder = settings.upload_dir / job_id
        path, size = await run_in_threadpool(save_upload, file, folder)
    finally:
        await form.close()
    if size == 0:
        shutil.rmtree(folder, ignore_errors=True)
        raise invalid("file", "the file is empty (0 bytes)")
    await run_in_threadpool(
        lambda: runner.queue(
            entity=entity,
            file_name=file.filename or path.name,
            stored_path=path,
            file_bytes=size,
            options=options,
            user_id=who.user.id,
            job_id=job_id,
        )
    )
    job = await run_in_threadpool(get_job, store, job_id)
    assert job is not None
    location = f"{router.prefix}/{job_id}"
    return JSONResponse(
        job_model(job).model_dump(mode="json"), status_code=202, headers={"Location": location}
    )


@router.post(
    "/preview",
    summary="Preview a file's first rows and mapping",
    dependencies=[Depends(upload_size)],
    openapi_extra=multipart(
        "file",
        "entity",
        "preset",
        "map",
        "set",
        "mapping",
        "format",
        "delimiter",
        "encoding",
        "sheet",
        extra={"rows": {"type": "integer", "minimum": 1, "maximum": 100, "default": 20}},
    ),
    responses=problem_responses(400, 401, 403, 411, 413, 415, 422),
)
async def preview(
    store: StoreDep, settings: SettingsDep, request: Request, who: Annotated[Principal, Depends(RUN)]
) -> Preview:
    """The first rows of a file and the column that would feed each field (matched by name, or by
    the preset, a saved mapping and `map`/`set`), what is missing and whether the import would
    start. Nothing is imported. For a big CSV the page may send only its first MiB."""
    form = await read_form(request)
    try:
        entity, options = import_options(form)
        rows = text(form, "rows") or "20"
        if not rows.isdigit() or not 1 <= int(rows) <= 100:
            raise invalid("rows", "a whole number from 1 to 100")
        file = upload(form)
        private_dir(settings.upload_dir)
        folder = Path(tempfile.mkdtemp(prefix="preview-", dir=settings.upload_dir)) / "file"
        try:
            path, _ = await run_in_threadpool(save_upload, file, folder)
            found = await run_in_threadpool(
                lambda: preview_file(
                    path,
                    entity,
                    preset=options.preset,
                    maps=options.maps,
                    sets=options.sets,
                    mapping_name=options.mapping_name,
                    store=store,
                    delimiter=options.delimiter,
                    encoding=options.encoding,
                    sheet=options.sheet,
                    format=options.format,
                    rows=int(rows),
                )
            )
        except (InputError, ConfigError) as exc:
            raise invalid(
                "file", str(exc).replace(str(folder / safe_file_name(file.filename)), "file")
            ) from None
        finally:
            shutil.rmtree(folder.parent, ignore_errors=True)
    finally:
        await form.close()
    return Preview(**found)


@router.get(
    "",
    summary="Recent import jobs and imports",
    dependencies=[Depends(RUN)],
    responses=problem_responses(401, 403, 422),
)
def imports(
    store: StoreDep,
    limit: Annotated[int, Query(ge=1, le=500, description="How many jobs, and how many imports")] = 50,
) -> Imports:
    """Recent upload jobs (newest first), and the store's recent imports, the CLI's included."""
    return Imports(
        jobs=[job_model(j) for j in list_jobs(store, limit=limit)],
        imports=[PastImport(**i) for i in past_imports(store, limit=limit)],
    )


def job_or_404(store: StoreDep, job_id: str) -> dict[str, Any]:
    job = get_job(store, job_id)
    if job is None:
        raise Problem(404, detail=f"no import job {job_id!r}", job_id=job_id)
    return job


@router.get(
    "/{job_id}",
    summary="An import job's status and counts",
    dependencies=[Depends(RUN)],
    responses=problem_responses(401, 403, 404),
)
def job_status(job_id: str, store: StoreDep) -> Job:
    """One job: queued, running (with its step), done (with loaded, updated, unchanged and
    rejected counts) or failed (with the error)."""
    return job_model(job_or_404(store, job_id))


@router.get(
    "/{job_id}/rejects",
    summary="An import job's reject report",
    dependencies=[Depends(RUN)],
    responses={
        200: {
            "description": "JSON: a page of problems; CSV: the whole kept report (formulas neutralised)",
            "content": {
                "text/csv": {"example": "line,field,value,reason\n7,ordered_at,31/02/2025,not a date\n"}
            },
        },
        **problem_responses(401, 403, 404, 422),
    },
    response_model=Rejects,
)
def job_rejects(
    request: Request,
    job_id: str,
    store: StoreDep,
    format: Annotated[
        Literal["json", "csv"], Query(description="json (a page) or csv (everything kept, as a download)")
    ] = "json",
    limit: Annotated[int, Query(ge=1, le=1000, description="Problems per page (JSON)")] = 100,
    offset: Annotated[int, Query(ge=0, description="Problems to skip (JSON)")] = 0,
) -> Any:
    """The job's reject report: one row per problem — the line in the file, the field, the value
    as it was, the reason — by line then field. Values are returned as data, never rendered."""
    job = job_or_404(store, job_id)
    kept = int(job["rejects_kept"] or 0)
    if format == "csv":
        name = f"{Path(safe_file_name(job['file_name'])).stem}.rejects.csv"
        return StreamingResponse(
            csv_rows(store, job_id),
            media_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": f'attachment; filename="{name}"'},
        )
    following = offset + limit if offset + limit < kept else None
    next_url = None
    if following is not None:
        url = request.url.include_query_params(offset=following, limit=limit)
        next_url = f"{url.path}?{url.query}"
    return Rejects(
        items=[Reject(**r) for r in rejects_page(store, job_id, limit=limit, offset=offset)],
        total=kept,
        rejected_rows=int(job["rejected"] or 0),
        limit=limit,
        offset=offset,
        next=next_url,
    )


def csv_rows(store: StoreDep, job_id: str) -> Iterator[str]:
    buffer = io.StringIO()
    out = csv.writer(buffer, lineterminator="\n")
    out.writerow(["line", "field", "value", "reason"])
    for batch in iter_rejects(store, job_id):
        out.writerows([r["line"], r["field"], neutralise(r["value"]), r["reason"]] for r in batch)
        yield buffer.getvalue()
        buffer.seek(0)
        buffer.truncate()
    yield buffer.getvalue()


def make_runner(
    store: Any, settings: WebSettings, clock: Any, *, on_imported: Callable[[], None] | None = None
) -> ImportRunner:
    """The app's import runner (:func:`cxloop.web.app.create_app` keeps it on ``app.state``)."""
    return ImportRunner(
        store, clock=clock, rejects_kept=settings.import_rejects_kept, on_imported=on_imported
    )
