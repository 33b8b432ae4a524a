"""Imports through the API: upload → 202 → poll → done with the CLI's counts; reject reports with
line, field and reason; previews; oversize uploads refused; roles; jobs shared by server processes."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx2
import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from conftest import rows
from cxloop import Store
from cxloop.cli.app import app as cli_app
from cxloop.config import Settings
from cxloop.ingest.jobs import JobOptions, create_job, fail_abandoned, get_job
from cxloop.web import accounts
from cxloop.web.app import create_app
from cxloop.web.roles import Role
from cxloop.web.settings import WebSettings
from cxloop.web.storage import open_server_store
from test_web_server import cli, server

T0 = dt.datetime(2026, 1, 5, 9, 0)
ORDERS = (
    "Order ID,Customer,Placed at,Status,Total\n"
    "O1,C1,2025-01-02 10:00,paid,10.50\n"
    "O2,C2,2025-01-03 11:00,paid,<b>20</b>\n"
    "O3,C1,not a date,paid,5\n"
    'O4,C3,2025-01-05 09:30,=HYPERLINK("x"),7\n'
    "O5,,2025-02-30,paid,=1+1\n"
)
MAP = ["ordered_at=Placed at", "customer_id=Customer", "total_amount=Total"]


@pytest.fixture(autouse=True)
def cheap_hashes(monkeypatch: pytest.MonkeyPatch) -> None:
    from argon2 import PasswordHasher

    cheap = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)
    monkeypatch.setattr(accounts, "_hasher", lambda: cheap)


@pytest.fixture(params=["duckdb", pytest.param("postgres", marks=pytest.mark.postgres)])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    """The store as the server opens it (on DuckDB, one connection per live thread: the import
    runs on its own thread while requests come in on others)."""
    url = (
        str(tmp_path / "store.duckdb")
        if request.param == "duckdb"
        else request.getfixturevalue("pg_schema_url")
    )
    opened = open_server_store(url, Settings(database_url=url))
    try:
        yield opened
    finally:
        opened.close()


@pytest.fixture
def who(store: Store) -> dict[str, dict[str, str]]:
    headers = {}
    for role in (Role.ANALYST, Role.VIEWER, Role.AGENT):
        email = f"{role.value}@example.com"
        accounts.create_user(store, email, role, "p" * 12, now=T0)
        headers[role.value] = {
            "Authorization": f"Bearer {accounts.create_token(store, email, role, now=T0).token}"
        }
    return headers


def settings_for(store: Store, tmp_path: Path, **extra: Any) -> WebSettings:
    return WebSettings(database_url=store.url, upload_dir=tmp_path / "uploads", **extra)


@pytest.fixture
def client(store: Store, tmp_path: Path) -> Iterator[TestClient]:
    app = create_app(store, settings_for(store, tmp_path), clock=lambda: T0)
    with TestClient(app, raise_server_exceptions=False) as c:
        yield c


def upload(
    client: Any, headers: dict[str, str], text: str | bytes, *, name: str = "orders.csv", **form: Any
) -> Any:
    form.setdefault("entity", "orders")
    content = text.encode() if isinstance(text, str) else text
    return client.post(
        "/api/v1/imports", headers=headers, files={"file": (name, content, "text/csv")}, data=form
    )


def finished(client: Any, headers: dict[str, str], location: str, timeout: float = 120) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        job: dict[str, Any] = client.get(location, headers=headers).json()
        if job["status"] in ("done", "failed"):
            return job
        assert time.monotonic() < deadline, f"the job did not finish: {job}"
        time.sleep(0.05)


def problem(response: Any, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body: dict[str, Any] = response.json()
    assert body["status"] == status and "Traceback" not in response.text
    return body


def cli_import(tmp_path: Path, entity: str, path: Path, *options: str) -> dict[str, Any]:
    """What `cxloop import` says for the same file, into a store of its own."""
    db = str(tmp_path / f"cli-{time.monotonic_ns()}.duckdb")
    runner = CliRunner(env={"CXLOOP_DATABASE_URL": None, "COLUMNS": "200"})
    args = ["--db", db, "import", entity, str(path), "--json", "--rejects-dir", str(tmp_path / "cli-rejects")]
    result = runner.invoke(cli_app, [*args, *options])
    assert result.exit_code in (0, 3), result.output
    out: dict[str, Any] = json.loads(result.stdout)
    return out


COUNTS = ("rows_read", "loaded", "updated", "unchanged", "rejected")


def test_an_upload_is_accepted_then_imported_with_the_counts_of_the_cli(
    client: TestClient, who: dict[str, dict[str, str]], store: Store, tmp_path: Path
) -> None:
    response = upload(client, who["analyst"], ORDERS, map=MAP)

    assert response.status_code == 202, response.text
    accepted = response.json()
    assert accepted["status"] in ("queued", "running", "done") and accepted["file_name"] == "orders.csv"
    assert response.headers["location"] == f"/api/v1/imports/{accepted['job_id']}"
    job = finished(client, who["analyst"], response.headers["location"])

    (tmp_path / "orders.csv").write_text(ORDERS)
    expected = cli_import(tmp_path, "orders", tmp_path / "orders.csv", *(f"--map={m}" for m in MAP))
    assert job["status"] == "done" and job["error"] is None
    assert (
        {k: job[k] for k in COUNTS}
        == {k: expected[k] for k in COUNTS}
        == {
            "rows_read": 5,
            "loaded": 2,
            "updated": 0,
            "unchanged": 0,
            "rejected": 3,
        }
    )
    assert rows(store, "SELECT order_id, status FROM orders ORDER BY order_id") == [
        ("O1", "paid"),
        ("O4", '=HYPERLINK("x")'),  # stored as data
    ]
    assert job["import_id"] and rows(
        store, f"SELECT entity FROM imports WHERE import_id = '{job['import_id']}'"
    )
    assert not any((tmp_path / "uploads").iterdir()), "the upload is deleted once imported"

    again = finished(
        client, who["analyst"], upload(client, who["analyst"], ORDERS, map=MAP).headers["location"]
    )
    assert (again["loaded"], again["unchanged"], again["rejected"]) == (0, 2, 3)


def test_the_reject_report_names_line_field_value_and_reason(
    client: TestClient, who: dict[str, dict[str, str]], store: Store
) -> None:
    location = upload(client, who["analyst"], ORDERS, map=MAP).headers["location"]
    job = finished(client, who["analyst"], location)

    report = client.get(f"{location}/rejects", headers=who["analyst"])
    assert report.status_code == 200, report.text
    body = report.json()
    problems = [(r["line"], r["field"], r["value"]) for r in body["items"]]
    assert problems == [
        (3, "total_amount", "<b>20</b>"),
        (4, "ordered_at", "not a date"),
        (6, "ordered_at", "2025-02-30"),
        (6, "total_amount", "=1+1"),
    ]
    assert all(r["reason"] for r in body["items"]) and body["total"] == job["rejects_kept"] == 4
    assert body["rejected_rows"] == 3 and body["next"] is None
    page = client.get(f"{location}/rejects?limit=2&offset=1", headers=who["analyst"]).json()
    assert [r["line"] for r in page["items"]] == [4, 6] and "offset=3" in page["next"]

    as_csv = client.get(f"{location}/rejects?format=csv", headers=who["analyst"])
    assert as_csv.headers["content-type"].startswith("text/csv")
    assert as_csv.headers["content-disposition"] == 'attachment; filename="orders.rejects.csv"'
    table = list(csv.DictReader(io.StringIO(as_csv.text)))
    assert [(r["line"], r["field"], r["value"]) for r in table] == [
        ("3", "total_amount", "<b>20</b>"),
        ("4", "ordered_at", "not a date"),
        ("6", "ordered_at", "2025-02-30"),
        ("6", "total_amount", "'=1+1"),  # a formula, neutralised in CSV only
    ]


def test_a_dry_run_counts_and_writes_nothing(
    client: TestClient, who: dict[str, dict[str, str]], store: Store
) -> None:
    job = finished(
        client,
        who["analyst"],
        upload(client, who["analyst"], ORDERS, map=MAP, dry_run="true").headers["location"],
    )

    assert job["status"] == "done" and job["dry_run"] is True and job["import_id"] is None
    assert (job["loaded"], job["rejected"], job["rejects_kept"]) == (2, 3, 4)
    assert rows(store, "SELECT count(*) FROM orders") == [(0,)]


def test_a_refused_file_fails_the_job_with_the_reason_and_no_server_path(
    client: TestClient, who: dict[str, dict[str, str]], tmp_path: Path
) -> None:
    job = finished(client, who["analyst"], upload(client, who["analyst"], ORDERS).headers["location"])

    assert job["status"] == "failed"
    assert "ordered_at" in job["error"] and "'Placed at'" in job["error"]
    assert str(tmp_path) not in job["error"] and "uploads" not in job["error"]
    assert job["loaded"] is None


def test_presets_and_column_names_map_like_the_cli(
    client: TestClient, who: dict[str, dict[str, str]], tmp_path: Path
) -> None:
    text = "order_id,customer_id,ordered_at\nA1,C1,2025-01-01\nA2,C1,2025-01-02\n"
    job = finished(
        client, who["analyst"], upload(client, who["analyst"], text, source="shop").headers["location"]
    )

    listed = client.get("/api/v1/imports", headers=who["analyst"]).json()
    assert job["status"] == "done" and job["loaded"] == 2 and job["options"]["source"] == "shop"
    assert listed["jobs"][0]["job_id"] == job["job_id"]
    assert (
        listed["imports"][0]["job_id"] == job["job_id"] and listed["imports"][0]["file_name"] == "orders.csv"
    )
    assert listed["imports"][0]["source"] == "shop"


def test_bad_form_parts_are_422_problems_naming_them(
    client: TestClient, who: dict[str, dict[str, str]]
) -> None:
    def loc(response: Any) -> list[str]:
        errors: list[str] = problem(response, 422)["errors"][0]["loc"]
        return errors

    assert loc(upload(client, who["analyst"], ORDERS, entity="invoices")) == ["body", "entity"]
    assert loc(upload(client, who["analyst"], ORDERS, preset="nope")) == ["body", "preset"]
    assert loc(upload(client, who["analyst"], ORDERS, map=["ordered_at"])) == ["body", "map"]
    assert loc(upload(client, who["analyst"], ORDERS, map=["when=Placed at"])) == ["body", "map"]
    assert loc(upload(client, who["analyst"], ORDERS, dry_run="maybe")) == ["body", "dry_run"]
    assert loc(upload(client, who["analyst"], b"")) == ["body", "file"]
    no_file = client.post(
        "/api/v1/imports", headers=who["analyst"], files={"x": ("a", b"b")}, data={"entity": "orders"}
    )
    assert loc(no_file) == ["body", "file"]
    problem(client.post("/api/v1/imports", headers=who["analyst"], json={"entity": "orders"}), 415)
    problem(client.get("/api/v1/imports/nope", headers=who["analyst"]), 404)
    problem(client.get("/api/v1/imports/nope/rejects", headers=who["analyst"]), 404)
    problem(client.get("/api/v1/imports?limit=0", headers=who["analyst"]), 422)


def test_an_oversize_upload_is_refused_before_it_is_read(
    store: Store, who: dict[str, dict[str, str]], tmp_path: Path
) -> None:
    app = create_app(store, settings_for(store, tmp_path, max_upload_mb=0.01), clock=lambda: T0)
    with TestClient(app, raise_server_exceptions=False) as client:
        big = "order_id,ordered_at\n" + "".join(f"O{i},2025-01-01\n" for i in range(2000))
        body = problem(upload(client, who["analyst"], big), 413)
        refused_preview = client.post(
            "/api/v1/imports/preview",
            headers=who["analyst"],
            files={"file": ("o.csv", big.encode())},
            data={"entity": "orders"},
        )
        small = upload(client, who["analyst"], ORDERS, map=MAP)

    assert "limit is 10,485 bytes" in body["detail"] and body["limit_bytes"] == 10485
    problem(refused_preview, 413)
    assert small.status_code == 202
    assert rows(store, "SELECT count(*) FROM import_jobs") == [(1,)]


def test_only_roles_that_run_imports_may(client: TestClient, who: dict[str, dict[str, str]]) -> None:
    location = upload(client, who["analyst"], ORDERS, map=MAP).headers["location"]
    finished(client, who["analyst"], location)

    for role in ("viewer", "agent"):
        problem(upload(client, who[role], ORDERS), 403)
        problem(client.get("/api/v1/imports", headers=who[role]), 403)
        problem(client.get(location, headers=who[role]), 403)
        problem(client.get(f"{location}/rejects", headers=who[role]), 403)
        problem(
            client.post(
                "/api/v1/imports/preview",
                headers=who[role],
                files={"file": ("o.csv", b"a")},
                data={"entity": "orders"},
            ),
            403,
        )
    problem(upload(client, {}, ORDERS), 401)
    problem(client.get(location), 401)


def test_the_preview_shows_the_first_rows_and_the_mapping(
    client: TestClient, who: dict[str, dict[str, str]]
) -> None:
    def preview(**form: Any) -> Any:
        form.setdefault("entity", "orders")
        return client.post(
            "/api/v1/imports/preview",
            headers=who["analyst"],
            files={"file": ("o.csv", ORDERS.encode())},
            data=form,
        )

    first = preview(rows="2")
    assert first.status_code == 200, first.text
    body = first.json()
    assert body["columns"] == ["Order ID", "Customer", "Placed at", "Status", "Total"]
    assert body["rows"][1]["Total"] == "<b>20</b>" and len(body["rows"]) == 2  # text as data
    assert body["mapping"] == {"order_id": {"column": "Order ID"}, "status": {"column": "Status"}}
    assert (
        body["missing_required"] == ["ordered_at"] and not body["ok"] and "ordered_at" in body["problems"][0]
    )
    mapped = preview(map=MAP).json()
    assert mapped["ok"] and mapped["mapping"]["ordered_at"] == {"column": "Placed at"}
    assert mapped["unused_columns"] == []
    assert problem(preview(rows="0"), 422)["errors"][0]["loc"] == ["body", "rows"]
    unreadable = client.post(
        "/api/v1/imports/preview",
        headers=who["analyst"],
        files={"file": ("o.parquet", b"PAR1 not really")},
        data={"entity": "orders"},
    )
    assert problem(unreadable, 422)["errors"][0]["loc"] == ["body", "file"]


def test_a_job_is_in_the_store_for_every_process_and_an_abandoned_one_fails(
    store: Store, tmp_path: Path
) -> None:
    upload_dir = tmp_path / "uploads" / "j1"
    upload_dir.mkdir(parents=True)
    (upload_dir / "o.csv").write_text(ORDERS)
    job_id = create_job(
        store,
        entity="orders",
        file_name="o.csv",
        stored_path=upload_dir / "o.csv",
        file_bytes=10,
        options=JobOptions(),
        user_id=None,
        now=T0,
    )
    with store.engine.begin() as conn:  # as if its process had died: a pid that cannot exist
        conn.exec_driver_sql(
            f"UPDATE import_jobs SET status = 'running', worker = worker || '0000000' WHERE job_id = '{job_id}'"
        )

    assert fail_abandoned(store, now=T0) == 1
    job = get_job(store, job_id)
    assert job is not None and job["status"] == "failed" and "server stopped" in job["error"]
    assert not upload_dir.exists()


@pytest.mark.postgres
def test_two_server_workers_on_postgresql_share_the_jobs(
    tmp_path: Path, pg_schema_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    made = cli(
        pg_schema_url, "users create ana@example.com --role analyst --password-stdin", stdin="p" * 12 + "\n"
    )
    assert made.exit_code == 0, made.output
    token = json.loads(
        cli(pg_schema_url, "tokens create --user ana@example.com --role analyst --json").stdout
    )["token"]
    monkeypatch.setenv("CXLOOP_UPLOAD_DIR", str(tmp_path / "uploads"))
    monkeypatch.setenv("CXLOOP_MAX_UPLOAD_MB", "0.01")
    headers = {"Authorization": f"Bearer {token}"}

    with (
        server("--db", pg_schema_url, "serve", "--workers", "2", cwd=tmp_path) as (base, _),
        httpx2.Client(base_url=base, headers=headers, timeout=60) as client,
    ):
        accepted = upload(client, {}, ORDERS, map=MAP)
        # Polled many times: each request may land on either worker.
        job = finished(client, {}, accepted.headers["location"])
        seen = {client.get(accepted.headers["location"]).json()["status"] for _ in range(6)}
        big = upload(client, {}, "order_id,ordered_at\n" + "O1,2025-01-01\n" * 2000)

    assert accepted.status_code == 202 and job["status"] == "done" and job["loaded"] == 2
    assert seen == {"done"}
    assert big.status_code == 413 and big.headers["content-type"] == "application/problem+json"


def test_the_served_app_imports_an_upload_on_duckdb(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    db = str(tmp_path / "web.duckdb")
    assert (
        cli(
            db, "users create ana@example.com --role analyst --password-stdin", stdin="p" * 12 + "\n"
        ).exit_code
        == 0
    )
    token = json.loads(cli(db, "tokens create --user ana@example.com --role analyst --json").stdout)["token"]
    monkeypatch.setenv("CXLOOP_UPLOAD_DIR", str(tmp_path / "uploads"))
    headers = {"Authorization": f"Bearer {token}"}

    with (
        server("--db", db, "serve", cwd=tmp_path) as (base, _),
        httpx2.Client(base_url=base, headers=headers, timeout=60) as client,
    ):
        accepted = upload(client, {}, ORDERS, map=MAP)
        job = finished(client, {}, accepted.headers["location"])
        found = client.get("/api/v1/customers?q=C1").json()

    assert job["status"] == "done" and (job["loaded"], job["rejected"]) == (2, 3)
    assert found["total"] == 0  # orders only: no customer rows were imported
    with Store.open(db) as store:
        assert rows(store, "SELECT count(*) FROM orders") == [(2,)]


def test_a_signed_in_page_uploads_with_its_csrf_token(client: TestClient, store: Store) -> None:
    from cxloop.web.sessions import SessionPolicy, start_session

    user = accounts.create_user(store, "page@example.com", Role.ANALYST, "p" * 12, now=T0)
    session = start_session(store, user.id, now=T0, policy=SessionPolicy())
    cookie = {"Cookie": f"cxloop_session={session.token}"}

    without = upload(client, cookie, ORDERS, map=MAP)
    with_header = upload(client, {**cookie, "X-CSRF-Token": session.csrf_token}, ORDERS, map=MAP)
    as_field = upload(client, cookie, ORDERS, map=MAP, csrf_token=session.csrf_token)

    assert problem(without, 403)["detail"].startswith("the form has expired")
    assert with_header.status_code == 202 and as_field.status_code == 202
    assert finished(client, cookie, as_field.headers["location"])["user_id"] == user.id


def test_the_schema_documents_the_upload(client: TestClient) -> None:
    schema = client.get("/api/v1/openapi.json").json()

    post = schema["paths"]["/api/v1/imports"]["post"]
    body = post["requestBody"]["content"]["multipart/form-data"]["schema"]
    assert post["summary"] and {"file", "entity", "map", "dry_run"} <= set(body["properties"])
    assert body["required"] == ["file", "entity"]
    assert {"202", "401", "403", "413", "422"} <= set(post["responses"])
    assert (
        "multipart/form-data" in schema["paths"]["/api/v1/imports/preview"]["post"]["requestBody"]["content"]
    )
    rejects = schema["paths"]["/api/v1/imports/{job_id}/rejects"]["get"]["responses"]["200"]["content"]
    assert {"application/json", "text/csv"} <= set(rejects)
    assert schema["components"]["schemas"]["Job"]["properties"]["status"]["enum"] == [
        "queued",
        "running",
        "done",
        "failed",
    ]


def test_the_kept_report_is_capped_and_uploads_are_private(
    store: Store, who: dict[str, dict[str, str]], tmp_path: Path
) -> None:
    app = create_app(store, settings_for(store, tmp_path, import_rejects_kept=2), clock=lambda: T0)
    with TestClient(app, raise_server_exceptions=False) as client:
        response = upload(client, who["analyst"], ORDERS, map=MAP)
        job = finished(client, who["analyst"], response.headers["location"])
        report = client.get(f"{response.headers['location']}/rejects", headers=who["analyst"]).json()

    assert (job["rejected"], job["rejects_kept"]) == (3, 2)
    assert (report["total"], report["rejected_rows"], len(report["items"])) == (2, 3, 2)
    assert [r["line"] for r in report["items"]] == [3, 4]  # the first problems, by line
    assert (tmp_path / "uploads").stat().st_mode & 0o777 == 0o700


def test_stopping_the_runner_leaves_no_job_queued_and_no_upload(store: Store, tmp_path: Path) -> None:
    from cxloop.ingest.jobs import ImportRunner, list_jobs

    runner = ImportRunner(store, clock=lambda: T0)
    for i in range(4):
        folder = tmp_path / "uploads" / f"job{i}"
        folder.mkdir(parents=True)
        (folder / "o.csv").write_text(ORDERS)
        job_id = create_job(
            store,
            entity="orders",
            file_name="o.csv",
            stored_path=folder / "o.csv",
            file_bytes=len(ORDERS),
            options=JobOptions(maps=dict(m.split("=") for m in MAP)),
            user_id=None,
            now=T0,
        )
        runner.submit(job_id)
    runner.shutdown()

    jobs = list_jobs(store)
    assert len(jobs) == 4 and {j["status"] for j in jobs} <= {"done", "failed"}
    assert all(j["error"].startswith("the server stopped") for j in jobs if j["status"] == "failed")
    assert list((tmp_path / "uploads").iterdir()) == []
