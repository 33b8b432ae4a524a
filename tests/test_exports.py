"""Exports: every table to CSV and Parquet on both stores, read back equal to the table — text with
HTML or script kept as data, formulas neutralised in CSV only — from the library, the CLI and the API."""

from __future__ import annotations

import csv
import datetime as dt
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from conftest import rows, write
from cxloop import Store
from cxloop.cli.app import app as cli_app
from cxloop.exports import EXPORT_TABLES, export_filename, export_table
from cxloop.ingest.csvsafe import neutralise
from cxloop.store import schema
from cxloop.web import accounts
from cxloop.web.app import create_app
from cxloop.web.roles import Role
from cxloop.web.settings import WebSettings

T0 = dt.datetime(2026, 1, 5, 9, 0)
NASTY = [
    "<script>alert('x')</script>",
    '<b onmouseover="steal()">Bold</b>',
    '=HYPERLINK("http://evil.example","click")',
    "+cmd|' /C calc'!A0",
    "-2+3",
    "@SUM(A1:A9)",
    "\tindented",
    "-5",
    "+3.25",
    'line one\nline "two", with comma',
    "Ünïcödé ✓ 漢字",
    "",
]


@pytest.fixture
def filled(store: Store, load: Any, tmp_path: Path) -> Store:
    lines = ["customer_id,name,email,segment,first_seen_at,vip"]
    for i, text in enumerate(NASTY):
        quoted = '"' + text.replace('"', '""') + '"'
        lines.append(
            f"C{i:02d},{quoted},c{i}@example.com,{'smb' if i % 2 else ''},2025-0{1 + i % 9}-03 10:00,{i}"
        )
    lines.append("C99,,,,,")
    load(store, "customers", write(tmp_path / "customers.csv", "\n".join(lines) + "\n"))
    load(
        store,
        "order-lines",
        write(
            tmp_path / "lines.csv",
            "order_id,customer_id,ordered_at,product_name,quantity,unit_price\n"
            "O1,C01,2024-12-31 23:59:59,=SUM(A1),2,10.125\n"
            "O1,C01,2024-12-31 23:59:59,Mug,-1,3.5\n"
            "O2,C02,2025-02-01 08:00,<i>Tea</i>,1,0.0001\n",
        ),
    )
    load(
        store,
        "tickets",
        write(
            tmp_path / "tickets.csv",
            "ticket_id,customer_id,opened_at,is_complaint,subject,body\n"
            "T1,C01,2025-03-01 09:00,yes,=1+1,<script>x()</script>\n"
            "T2,C02,2025-03-02 09:00,no,Hi,\n"
            "T3,,2025-03-03 09:00,,@me,\n",
        ),
    )
    return store


def table_rows(store: Store, table: str) -> list[tuple[Any, ...]]:
    columns = ", ".join(c.name for c in schema.metadata.tables[table].columns)
    return sorted(rows(store, f"SELECT {columns} FROM {table}"), key=repr)


def as_csv_text(value: Any) -> str:
    """How a stored value reads in the CSV export (NULL and empty both read back as '')."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dt.datetime):
        return value.isoformat(sep=" ")
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, str):
        return str(neutralise(value))
    return str(value)


def read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def same_as_table(store: Store, table: str, found: list[dict[str, str]]) -> None:
    columns = [c.name for c in schema.metadata.tables[table].columns]
    expected = sorted(([as_csv_text(v) for v in r] for r in table_rows(store, table)), key=repr)
    for row in found:
        assert list(row) == columns
    # Both engines write numeric(18,4) with its scale ("20.2500"), as str(Decimal) does.
    assert sorted((list(row.values()) for row in found), key=repr) == expected


@pytest.mark.parametrize("table", ["customers", "order_lines", "tickets", "orders"])
def test_csv_reads_back_as_the_table_with_formulas_neutralised(
    filled: Store, table: str, tmp_path: Path
) -> None:
    out = tmp_path / f"{table}.csv"

    written = export_table(filled, table, "csv", out)

    found = read_csv(out)
    assert written == len(found) == len(table_rows(filled, table))
    same_as_table(filled, table, found)


def test_csv_keeps_markup_as_text_and_neutralises_only_formulas(filled: Store, tmp_path: Path) -> None:
    export_table(filled, "customers", "csv", tmp_path / "c.csv")

    names = {r["customer_id"]: r["name"] for r in read_csv(tmp_path / "c.csv")}

    assert names["C00"] == "<script>alert('x')</script>"
    assert names["C01"] == '<b onmouseover="steal()">Bold</b>'
    assert names["C02"] == "'" + NASTY[2]
    assert names["C03"].startswith("'+cmd") and names["C04"] == "'-2+3" and names["C05"] == "'@SUM(A1:A9)"
    assert names["C06"] == "'\tindented"
    assert names["C07"] == "-5" and names["C08"] == "+3.25"  # plain numbers stay numbers
    assert names["C09"] == NASTY[9] and names["C10"] == NASTY[10]


@pytest.mark.parametrize("table", EXPORT_TABLES)
def test_parquet_reads_back_exactly_equal_to_the_table(filled: Store, table: str, tmp_path: Path) -> None:
    out = tmp_path / f"{table}.parquet"

    written = export_table(filled, table, "parquet", out)

    read = pq.read_table(out)
    columns = [c.name for c in schema.metadata.tables[table].columns]
    assert read.column_names == columns
    assert written == read.num_rows
    got = sorted((tuple(r[c] for c in columns) for r in read.to_pylist()), key=repr)
    assert got == table_rows(filled, table)  # formulas and markup exactly as stored


def test_parquet_types_are_the_same_on_both_stores(filled: Store, tmp_path: Path) -> None:
    export_table(filled, "order_lines", "parquet", tmp_path / "l.parquet")

    types = {f.name: str(f.type) for f in pq.read_schema(tmp_path / "l.parquet")}

    assert types["quantity"] == "decimal128(18, 4)" and types["line_no"] == "int32"
    export_table(filled, "tickets", "parquet", tmp_path / "t.parquet")
    types = {f.name: str(f.type) for f in pq.read_schema(tmp_path / "t.parquet")}
    assert types["opened_at"] == "timestamp[us]" and types["is_complaint"] == "bool"


def test_since_keeps_the_rows_from_that_moment(filled: Store, tmp_path: Path) -> None:
    since = dt.datetime(2025, 1, 1)

    assert export_table(filled, "orders", "csv", tmp_path / "o.csv", since=since) == 1
    assert export_table(filled, "order_lines", "parquet", tmp_path / "l.parquet", since=since) == 1
    assert [r["order_id"] for r in read_csv(tmp_path / "o.csv")] == ["O2"]
    assert export_filename("orders", "csv", since) == "orders-since-2025-01-01.csv"


def test_an_empty_table_exports_its_header(filled: Store, tmp_path: Path) -> None:
    assert export_table(filled, "subscriptions", "csv", tmp_path / "s.csv") == 0
    header = (tmp_path / "s.csv").read_text().splitlines()[0]
    assert header.startswith("source,subscription_id,customer_id")
    assert export_table(filled, "subscriptions", "parquet", tmp_path / "s.parquet") == 0
    assert pq.read_table(tmp_path / "s.parquet").num_rows == 0


# -- the CLI -------------------------------------------------------------------------------------


def cxloop(args: list[str]) -> Any:
    """The command in-process (the test holds the DuckDB file open; a second process could not)."""
    return CliRunner(env={"CXLOOP_DATABASE_URL": None, "COLUMNS": "200"}).invoke(cli_app, args)


def test_the_cli_writes_the_same_file(filled: Store, tmp_path: Path) -> None:
    out = tmp_path / "cli.csv"

    result = cxloop(["--db", filled.url, "export", "tickets", "-o", str(out), "--json"])

    assert result.exit_code == 0, result.output
    assert '"rows": 3' in result.stdout
    export_table(filled, "tickets", "csv", tmp_path / "lib.csv")
    assert out.read_bytes() == (tmp_path / "lib.csv").read_bytes()


def test_the_cli_refuses_an_unknown_table_or_date_as_usage_errors(filled: Store) -> None:
    assert cxloop(["--db", filled.url, "export", "employees"]).exit_code == 2
    assert cxloop(["--db", filled.url, "export", "orders", "--since", "yesterday"]).exit_code == 2


def test_the_cli_knows_every_exportable_table() -> None:
    from cxloop.cli.export import Table

    assert tuple(Table) == EXPORT_TABLES


# -- the API -------------------------------------------------------------------------------------


@pytest.fixture
def api(filled: Store, tmp_path: Path) -> Iterator[tuple[TestClient, dict[str, dict[str, str]]]]:
    accounts.create_user(filled, "ana@example.com", Role.ANALYST, "p" * 12, now=T0)
    accounts.create_user(filled, "ag@example.com", Role.AGENT, "p" * 12, now=T0)
    headers = {
        role: {"Authorization": f"Bearer {accounts.create_token(filled, email, role, now=T0).token}"}
        for role, email in ((Role.ANALYST, "ana@example.com"), (Role.AGENT, "ag@example.com"))
    }
    settings = WebSettings(database_url=filled.url, upload_dir=tmp_path / "work")
    with TestClient(create_app(filled, settings, clock=lambda: T0), raise_server_exceptions=False) as client:
        yield client, {r.value: h for r, h in headers.items()}


def test_the_api_sends_csv_as_an_attachment_equal_to_the_table(
    api: tuple[TestClient, dict[str, dict[str, str]]], filled: Store, tmp_path: Path
) -> None:
    client, who = api

    response = client.get("/api/v1/exports/customers", headers=who["analyst"])

    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/csv")
    assert response.headers["content-disposition"] == 'attachment; filename="customers.csv"'
    (tmp_path / "got.csv").write_bytes(response.content)
    same_as_table(filled, "customers", read_csv(tmp_path / "got.csv"))
    assert "<script>alert('x')</script>" in response.text and "'=HYPERLINK" in response.text
    assert not any((tmp_path / "work").rglob("*.csv")), "the export's file is deleted once sent"


def test_the_api_sends_parquet_equal_to_the_table(
    api: tuple[TestClient, dict[str, dict[str, str]]], filled: Store, tmp_path: Path
) -> None:
    client, who = api

    response = client.get(
        "/api/v1/exports/order_lines?format=parquet&since=2025-01-01T00:00:00Z", headers=who["analyst"]
    )

    assert response.status_code == 200, response.text
    assert 'filename="order_lines-since-2025-01-01.parquet"' in response.headers["content-disposition"]
    (tmp_path / "got.parquet").write_bytes(response.content)
    read = pq.read_table(tmp_path / "got.parquet").to_pylist()
    assert [(r["order_id"], r["product_name"], r["amount"]) for r in read] == [
        ("O2", "<i>Tea</i>", Decimal("0.0001"))
    ]


def problem(response: Any, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body: dict[str, Any] = response.json()
    return body


def test_the_api_refuses_bad_parameters_unknown_tables_and_roles_without_data_read(
    api: tuple[TestClient, dict[str, dict[str, str]]],
) -> None:
    client, who = api

    assert problem(client.get("/api/v1/exports/orders?format=xlsx", headers=who["analyst"]), 422)["errors"][
        0
    ]["loc"] == ["query", "format"]
    problem(client.get("/api/v1/exports/orders?since=last-week", headers=who["analyst"]), 422)
    assert (
        "tables: customers"
        in problem(client.get("/api/v1/exports/users", headers=who["analyst"]), 404)["detail"]
    )
    problem(client.get("/api/v1/exports/orders", headers=who["agent"]), 403)
    problem(client.get("/api/v1/exports/orders"), 401)
