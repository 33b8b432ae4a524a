"""The imports pages: upload a file, see how its columns map, import it, follow it to the end and
read its reject report — the same importer as the CLI, nothing written before "Import"."""

from __future__ import annotations

import datetime as dt
import re
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

import conftest
from cxloop import Store
from cxloop.web import accounts
from cxloop.web.app import create_app
from cxloop.web.roles import Role
from cxloop.web.settings import WebSettings

NOW = dt.datetime(2026, 1, 15, 10, 0)
CUSTOMERS = (
    "customer_id,name,email,segment\n"
    "N0001,Nina <b>Bold</b>,nina@example.com,smb\n"
    ",No Id,noid@example.com,smb\n"
    "N0002,Otto,otto@example.com,consumer\n"
)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    with Store.open(str(tmp_path / "imports.duckdb")) as opened:
        accounts.create_user(opened, "ana@example.com", Role.ANALYST, "p" * 12, now=NOW)
        accounts.create_user(opened, "vic@example.com", Role.VIEWER, "p" * 12, now=NOW)
        yield opened


@pytest.fixture
def client(store: Store, tmp_path: Path) -> Iterator[TestClient]:
    settings = WebSettings(database_url=store.url, upload_dir=tmp_path / "uploads")
    with TestClient(create_app(store, settings, clock=lambda: NOW), raise_server_exceptions=False) as c:
        yield c


def bearer(store: Store, email: str, role: Role) -> dict[str, str]:
    return conftest.bearer(store, email, role, now=NOW)


def customers_in(store: Store) -> list[str]:
    with store.engine.connect() as conn:
        return list(conn.execute(sa.text("SELECT customer_id FROM customers ORDER BY 1")).scalars())


def finished(client: TestClient, url: str, headers: dict[str, str]) -> str:
    for _ in range(300):
        page = client.get(url, headers=headers)
        assert page.status_code == 200, page.text
        if 'http-equiv="refresh"' not in page.text:
            return page.text
        time.sleep(0.1)
    raise AssertionError("the import did not finish within 30 s")


def test_a_preview_shows_the_mapping_and_writes_nothing_then_import_runs_it(
    client: TestClient, store: Store
) -> None:
    analyst = bearer(store, "ana@example.com", Role.ANALYST)
    files = {"file": ("people.csv", CUSTOMERS.encode(), "text/csv")}

    preview = client.post(
        "/imports", headers=analyst, files=files, data={"entity": "customers", "action": "preview"}
    )
    assert preview.status_code == 200, preview.text
    assert "column “customer_id”" in preview.text and "Nina &lt;b&gt;Bold&lt;/b&gt;" in preview.text
    assert customers_in(store) == []

    token = re.search(r'action="/imports/pending/([^"]+)"', preview.text)
    assert token
    started = client.post(
        f"/imports/pending/{token[1]}", headers=analyst, data={"entity": "customers"}, follow_redirects=False
    )
    assert started.status_code == 303
    job = finished(client, started.headers["location"], analyst)

    assert customers_in(store) == ["N0001", "N0002"]
    assert 'data-count="loaded">2<' in job and 'data-count="rejected">1<' in job
    assert re.search(r"<td class=\"num\">3</td><td><code>customer_id</code></td>", job)
    again = client.post(f"/imports/pending/{token[1]}", headers=analyst, data={"entity": "customers"})
    assert again.status_code == 404  # the previewed file became the job's, and is gone


def test_import_now_skips_the_preview_and_the_list_shows_the_upload(client: TestClient, store: Store) -> None:
    analyst = bearer(store, "ana@example.com", Role.ANALYST)
    files = {"file": ("people.csv", CUSTOMERS.encode(), "text/csv")}

    started = client.post(
        "/imports",
        headers=analyst,
        files=files,
        data={"entity": "customers", "action": "import"},
        follow_redirects=False,
    )
    finished(client, started.headers["location"], analyst)
    listing = client.get("/imports", headers=analyst).text

    assert customers_in(store) == ["N0001", "N0002"]
    assert ">people.csv</a>" in listing and ">done<" in listing


def test_a_file_that_cannot_be_read_is_explained_on_the_form(client: TestClient, store: Store) -> None:
    analyst = bearer(store, "ana@example.com", Role.ANALYST)

    unknown_entity = client.post(
        "/imports", headers=analyst, files={"file": ("x.csv", b"a,b\n1,2\n")}, data={"entity": "planets"}
    )
    empty = client.post(
        "/imports", headers=analyst, files={"file": ("x.csv", b"")}, data={"entity": "customers"}
    )
    no_id = client.post(
        "/imports",
        headers=analyst,
        files={"file": ("x.csv", b"name\nA\n")},
        data={"entity": "customers", "action": "preview"},
    )

    assert unknown_entity.status_code == 422 and "planets" in unknown_entity.text
    assert empty.status_code == 422 and "empty" in empty.text
    assert (
        no_id.status_code == 200
        and "cannot be imported as it is" in no_id.text
        and "Import it" not in no_id.text
    )
    assert customers_in(store) == []


def test_imports_are_for_roles_that_may_import(client: TestClient, store: Store) -> None:
    viewer = bearer(store, "vic@example.com", Role.VIEWER)

    assert client.get("/imports", headers=viewer).status_code == 403
    refused = client.post(
        "/imports",
        headers=viewer,
        files={"file": ("x.csv", CUSTOMERS.encode())},
        data={"entity": "customers"},
    )
    assert refused.status_code == 403 and customers_in(store) == []


def test_the_settings_page_sets_time_zone_and_currency_for_everyone(client: TestClient, store: Store) -> None:
    from cxloop.business import load_business_settings

    admin_headers = {"Authorization": "Bearer " + admin_token(store)}
    analyst = bearer(store, "ana@example.com", Role.ANALYST)

    assert client.get("/settings", headers=analyst).status_code == 403
    wrong = client.post(
        "/settings", headers=admin_headers, data={"time_zone": "Mars/Olympus", "currency": "EUR"}
    )
    saved = client.post(
        "/settings",
        headers=admin_headers,
        data={"time_zone": "Europe/Paris", "currency": "eur"},
        follow_redirects=False,
    )

    assert wrong.status_code == 422 and "not an IANA time zone" in wrong.text
    assert saved.status_code == 303
    assert load_business_settings(store).time_zone == "Europe/Paris"
    assert load_business_settings(store).currency == "EUR"
    assert 'value="Europe/Paris"' in client.get("/settings", headers=admin_headers).text


def admin_token(store: Store) -> str:
    accounts.create_user(store, "root@example.com", Role.ADMIN, "p" * 12, now=NOW)
    return accounts.create_token(store, "root@example.com", Role.ADMIN, now=NOW).token
