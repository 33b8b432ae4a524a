"""The exports API (``GET /api/v1/exports/{table}``): a table as a CSV or Parquet download.

The table is written by :func:`cxloop.exports.export_table` to a file under the upload folder
(``CXLOOP_UPLOAD_DIR``) — DuckDB's ``COPY``, or PostgreSQL's ``COPY … TO STDOUT`` — then sent in
chunks and deleted: no table is held in memory. Needs ``data.read``.
"""

from __future__ import annotations

import datetime as dt
import shutil
import tempfile
from pathlib import Path
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query
from starlette.background import BackgroundTask
from starlette.concurrency import run_in_threadpool
from starlette.responses import FileResponse

from cxloop.exports import EXPORT_TABLES, export_filename, export_table
from cxloop.web.api_imports import private_dir
from cxloop.web.api_metrics import naive_utc
from cxloop.web.auth import require
from cxloop.web.deps import SettingsDep, StoreDep
from cxloop.web.errors import Problem, problem_responses
from cxloop.web.roles import Capability
from cxloop.web.strict import no_unknown_query

router = APIRouter(prefix="/api/v1/exports", tags=["exports"], dependencies=[Depends(no_unknown_query)])
MEDIA_TYPES = {"csv": "text/csv; charset=utf-8", "parquet": "application/vnd.apache.parquet"}


@router.get(
    "/{table}",
    summary="Export a table as CSV or Parquet",
    dependencies=[Depends(require(Capability.DATA_READ))],
    response_class=FileResponse,
    responses={
        200: {
            "description": "The table as a file (Content-Disposition: attachment)",
            "content": {
                "text/csv": {"example": "customer_id,name,...\nC000001,Nils Weber,...\n"},
                "application/vnd.apache.parquet": {"schema": {"type": "string", "format": "binary"}},
            },
        },
        **problem_responses(401, 403, 404, 422),
    },
)
async def export(
    table: str,
    store: StoreDep,
    settings: SettingsDep,
    format: Annotated[
        Literal["csv", "parquet"], Query(description="csv (formulas neutralised) or parquet (exact types)")
    ] = "csv",
    since: Annotated[
        dt.datetime | None,
        Query(description="Only rows from this moment on, UTC (ISO 8601); order lines by their order's time"),
    ] = None,
) -> FileResponse:
    """One table of the store — customers, orders, order_lines, survey_responses, tickets, reviews
    or subscriptions — every column, as CSV or Parquet."""
    if table not in EXPORT_TABLES:
        raise Problem(404, detail=f"no table {table!r} to export; tables: {', '.join(EXPORT_TABLES)}")
    moment = naive_utc(since)
    private_dir(settings.upload_dir)
    folder = Path(tempfile.mkdtemp(prefix="export-", dir=settings.upload_dir))
    name = export_filename(table, format, moment)
    try:
        await run_in_threadpool(export_table, store, table, format, folder / name, since=moment)
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)
        raise
    return FileResponse(
        folder / name,
        media_type=MEDIA_TYPES[format],
        filename=name,
        background=BackgroundTask(shutil.rmtree, folder, ignore_errors=True),
    )
