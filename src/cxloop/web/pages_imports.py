"""The imports pages: upload a file, preview how its columns map, import it, follow it, read the
reject report. Needs ``imports.run``.

The same pieces as ``/api/v1/imports`` (:mod:`cxloop.web.api_imports`, :mod:`cxloop.ingest.jobs`,
:mod:`cxloop.ingest.preview`). A previewed file waits under ``CXLOOP_UPLOAD_DIR/pending/<token>``
until "Import" makes it a job (which deletes it when done); pending files older than a day are
removed at the next preview. A job's page refreshes itself every two seconds (an HTML refresh,
no script) until the import ends.
"""

from __future__ import annotations

import re
import secrets
import shutil
import time
from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import RedirectResponse
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from cxloop.errors import ConfigError, InputError
from cxloop.ingest.entities import ENTITIES
from cxloop.ingest.jobs import (
    ImportRunner,
    JobOptions,
    get_job,
    list_jobs,
    past_imports,
    rejects_page,
)
from cxloop.ingest.mapping import list_presets
from cxloop.ingest.preview import preview_file
from cxloop.store.store import Store
from cxloop.web.api_imports import RunnerDep, import_options, read_form, save_upload, upload, upload_size
from cxloop.web.auth import require
from cxloop.web.deps import SettingsDep, StoreDep, business
from cxloop.web.errors import Problem
from cxloop.web.roles import Capability
from cxloop.web.sessions import Principal
from cxloop.web.templating import render

router = APIRouter(include_in_schema=False)
RUN = require(Capability.IMPORTS_RUN)
PENDING_DAYS = 1.0
TOKEN = re.compile(r"^[A-Za-z0-9_-]{20,64}$")
PREVIEW_ROWS = 10


def _form_page(
    request: Request, store: Store, *, error: str | None = None, status_code: int = 200
) -> Response:
    return render(
        request,
        "imports.html",
        {
            "title": "Imports",
            "entities": list(ENTITIES),
            "presets": list_presets(),
            "jobs": list_jobs(store, limit=20),
            "past": past_imports(store, limit=20),
            "error": error,
            "local": business(request).local,
        },
        status_code=status_code,
    )


@router.get("/imports")
def imports_page(request: Request, store: StoreDep, who: Annotated[Principal, Depends(RUN)]) -> Response:
    return _form_page(request, store)


def _sweep(pending: Path) -> None:
    """Forget previews never imported: their files go after a day."""
    if not pending.is_dir():
        return
    cutoff = time.time() - PENDING_DAYS * 86_400
    for folder in pending.iterdir():
        if folder.stat().st_mtime < cutoff:
            shutil.rmtree(folder, ignore_errors=True)


@router.post("/imports", dependencies=[Depends(upload_size)])
async def upload_page(
    request: Request,
    store: StoreDep,
    settings: SettingsDep,
    runner: RunnerDep,
    who: Annotated[Principal, Depends(RUN)],
) -> Response:
    """Save the upload, then show its preview (``action=preview``) or import it at once."""
    form = await read_form(request)
    try:
        try:
            entity, options = import_options(form)
            file = upload(form)
        except Problem as exc:
            return _form_page(request, store, error=exc.detail, status_code=422)
        token = secrets.token_urlsafe(24)
        pending = settings.upload_dir / "pending"
        await run_in_threadpool(_sweep, pending)
        folder = pending / token
        path, size = await run_in_threadpool(save_upload, file, folder)
        file_name = file.filename or path.name
    finally:
        await form.close()
    if size == 0:
        shutil.rmtree(folder, ignore_errors=True)
        return _form_page(request, store, error="The file is empty (0 bytes).", status_code=422)
    if form.get("action") != "preview":
        return await _start(runner, who, entity, options, path, file_name, size)
    try:
        found = await run_in_threadpool(
            lambda: preview_file(
                path, entity, preset=options.preset, maps=options.maps, store=store, rows=PREVIEW_ROWS
            )
        )
    except (InputError, ConfigError) as exc:
        shutil.rmtree(folder, ignore_errors=True)
        return _form_page(request, store, error=str(exc).replace(str(path), file_name), status_code=422)
    return render(
        request,
        "import_preview.html",
        {
            "title": f"Preview: {file_name}",
            "preview": found,
            "token": token,
            "file_name": file_name,
            "entity": entity,
            "preset": options.preset or "",
            "dry_run": options.dry_run,
        },
    )


@router.post("/imports/pending/{token}")
async def start_pending(
    token: str,
    settings: SettingsDep,
    runner: RunnerDep,
    who: Annotated[Principal, Depends(RUN)],
    entity: Annotated[str, Form()],
    preset: Annotated[str, Form()] = "",
    dry_run: Annotated[bool, Form()] = False,
) -> Response:
    """Import a previewed file."""
    folder = settings.upload_dir / "pending" / token
    files = [p for p in folder.iterdir() if p.is_file()] if TOKEN.match(token) and folder.is_dir() else []
    if len(files) != 1:
        raise Problem(404, detail="this preview has expired or was imported already: upload the file again")
    if entity not in ENTITIES:
        raise Problem(422, detail=f"form.entity: one of {', '.join(ENTITIES)}")
    options = JobOptions(preset=preset or None, dry_run=dry_run)
    path = files[0]
    return await _start(runner, who, entity, options, path, path.name, path.stat().st_size)


async def _start(
    runner: ImportRunner,
    who: Principal,
    entity: str,
    options: JobOptions,
    path: Path,
    file_name: str,
    size: int,
) -> Response:
    job_id = await run_in_threadpool(
        lambda: runner.queue(
            entity=entity,
            file_name=file_name,
            stored_path=path,
            file_bytes=size,
            options=options,
            user_id=who.user.id,
        )
    )
    return RedirectResponse(f"/imports/{job_id}", status_code=303)


@router.get("/imports/{job_id}")
def job_page(
    request: Request, job_id: str, store: StoreDep, who: Annotated[Principal, Depends(RUN)]
) -> Response:
    job = get_job(store, job_id)
    if job is None:
        raise Problem(404, detail=f"no import job {job_id!r}")
    running = job["status"] in ("queued", "running")
    rejects = rejects_page(store, job_id, limit=100) if job["status"] == "done" else []
    return render(
        request,
        "import_job.html",
        {"title": f"Import: {job['file_name']}", "job": job, "running": running, "rejects": rejects},
    )
