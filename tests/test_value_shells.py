"""The value shells (docs/value.md, "API"; `cxloop value ...`): the CLI and the API answer exactly
what the library computes, refuse what cannot be fitted with the reason, keep customer-level rows
from dashboard roles, and fit once per import rather than once per request."""

from __future__ import annotations

import datetime as dt
import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

import conftest
from cxloop import Store
from cxloop.cli.output import to_jsonable
from cxloop.demo_store import load_demo
from cxloop.metrics.cache import MetricsCache
from cxloop.metrics.frames import records
from cxloop.metrics.source import store_source
from cxloop.value.at_risk import AtRiskOptions
from cxloop.value.clv import clv_by_segment
from cxloop.value.report import ValueQuery, at_risk_frame, fit_rows, fitted, value_frame
from cxloop.web import accounts
from cxloop.web.app import create_app
from cxloop.web.roles import Role
from cxloop.web.settings import WebSettings
from test_cli import cxloop

AS_OF = dt.datetime(2026, 1, 1)
T0 = dt.datetime(2026, 1, 5, 9, 0)
QUERY = ValueQuery(calibration_end=dt.date(2025, 12, 31))


@pytest.fixture(scope="module")
def demo_files(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """The demo store, and a copy of it for the CLI (the server holds the original open)."""
    folder = tmp_path_factory.mktemp("api-value")
    path, copy = folder / "demo.duckdb", folder / "cli.duckdb"
    with Store.open(str(path)) as store:
        load_demo(store, customers=300, seed=3, as_of=AS_OF.date())
        accounts.create_user(store, "ana@example.com", Role.ANALYST, "p" * 12, now=T0)
        accounts.create_user(store, "vic@example.com", Role.VIEWER, "p" * 12, now=T0)
    shutil.copy(path, copy)
    return path, copy


@pytest.fixture(scope="module")
def demo(demo_files: tuple[Path, Path]) -> Iterator[Store]:
    with Store.open(str(demo_files[0])) as store:
        yield store


@pytest.fixture(scope="module")
def client(demo: Store) -> Iterator[TestClient]:
    app = create_app(demo, WebSettings(database_url=demo.url), clock=lambda: T0)
    with TestClient(app, raise_server_exceptions=False) as c:
        yield c


def bearer(store: Store, email: str, role: Role) -> dict[str, str]:
    return conftest.bearer(store, email, role, now=T0)


@pytest.fixture(scope="module")
def analyst(demo: Store) -> dict[str, str]:
    return bearer(demo, "ana@example.com", Role.ANALYST)


@pytest.fixture(scope="module")
def viewer(demo: Store) -> dict[str, str]:
    return bearer(demo, "vic@example.com", Role.VIEWER)


def plain(rows: Any) -> Any:
    """Rows as the CLI's --json prints them, read back."""
    return json.loads(json.dumps(to_jsonable(rows)))


def ok(response: Any) -> Any:
    assert response.status_code == 200, response.text
    return response.json()


# -------------------------------------------------------------------------------- CLI


def test_cli_fit_prints_the_library_fit(demo: Store, demo_files: tuple[Path, Path], tmp_path: Path) -> None:
    with store_source(demo) as source:
        expected = plain(fit_rows(source, QUERY))
    result = cxloop(
        "--db", str(demo_files[1]), "value", "fit", "--as-of", "2026-01-01", "--json", cwd=tmp_path
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == expected
    assert [(r["model"], r["parameter"]) for r in expected] == [
        ("bgnbd", "r"),
        ("bgnbd", "alpha"),
        ("bgnbd", "a"),
        ("bgnbd", "b"),
        ("gammagamma", "p"),
        ("gammagamma", "q"),
        ("gammagamma", "gamma"),
    ]
    assert all(r["converged"] and r["se"] > 0 for r in expected)


def test_cli_clv_at_risk_and_validate(demo: Store, demo_files: tuple[Path, Path], tmp_path: Path) -> None:
    with store_source(demo) as source:
        result = fitted(source, QUERY)
    values = value_frame(result)
    db = ("--db", str(demo_files[1]), "value")

    top = cxloop(*db, "clv", "--as-of", "2026-01-01", "--top", "5", "--json", cwd=tmp_path)
    assert json.loads(top.stdout) == plain(records(values.head(5)))
    by = cxloop(*db, "clv", "--as-of", "2026-01-01", "--by", "segment", "--json", cwd=tmp_path)
    assert json.loads(by.stdout) == plain(records(clv_by_segment(values)))

    risky = cxloop(*db, "at-risk", "--as-of", "2026-01-01", "--currency", "$", "--csv", cwd=tmp_path)
    assert risky.returncode == 0, risky.stderr
    header, *lines = risky.stdout.splitlines()
    assert header.split(",")[:2] == ["customer_id", "segment"] and header.endswith(",reason")
    assert len(lines) == len(at_risk_frame(result, options=AtRiskOptions(currency="$"))) > 0

    check = cxloop(
        *db,
        "validate",
        "--calibration-end",
        "2025-06-30",
        "--holdout-end",
        "2025-12-31",
        "--json",
        cwd=tmp_path,
    )
    assert check.returncode == 0, check.stderr
    table = json.loads(check.stdout)
    assert [r["frequency"] for r in table] == ["0", "1", "2", "3", "4", "5", "6", "7+", "all"]
    assert table[-1]["customers"] == sum(r["customers"] for r in table[:-1])


def test_cli_says_why_a_model_cannot_be_fitted(demo_files: tuple[Path, Path], tmp_path: Path) -> None:
    # On the demo's first day nobody has made a repeat purchase yet.
    result = cxloop(
        "--db", str(demo_files[1]), "value", "fit", "--calibration-end", "2000-01-01", cwd=tmp_path
    )
    assert result.returncode == 1
    assert "error:" in result.stderr and "no customers to fit" in result.stderr


# -------------------------------------------------------------------------------- API


def test_api_fit_is_the_library_fit(client: TestClient, demo: Store, viewer: dict[str, str]) -> None:
    with store_source(demo) as source:
        expected = plain(fit_rows(source, QUERY))
    assert ok(client.get("/api/v1/value/fit", params={"as_of": "2026-01-01"}, headers=viewer)) == expected
    # The default as-of is the app's clock: 2026-01-05 09:00, so data to 2026-01-04.
    later = ok(client.get("/api/v1/value/fit", headers=viewer))
    assert later[0]["customers"] >= expected[0]["customers"]


def test_api_customer_values_and_segments(
    client: TestClient, demo: Store, analyst: dict[str, str], viewer: dict[str, str]
) -> None:
    with store_source(demo) as source:
        values = value_frame(fitted(source, QUERY))
    params = {"calibration_end": "2025-12-31"}
    page = ok(
        client.get("/api/v1/value/customers", params={**params, "limit": 10, "offset": 5}, headers=analyst)
    )
    assert page["total"] == len(values) and (page["limit"], page["offset"]) == (10, 5)
    assert page["items"] == plain(records(values.iloc[5:15]))
    smb = ok(client.get("/api/v1/value/customers", params={**params, "segment": "consumer"}, headers=analyst))
    assert smb["total"] == int((values["segment"] == "consumer").sum())
    segments = ok(client.get("/api/v1/value/segments", params=params, headers=viewer))
    assert segments == plain(records(clv_by_segment(values)))


def test_api_at_risk_rows(client: TestClient, demo: Store, analyst: dict[str, str]) -> None:
    with store_source(demo) as source:
        expected = at_risk_frame(fitted(source, QUERY), options=AtRiskOptions(max_p_alive=0.3))
    got = ok(
        client.get(
            "/api/v1/value/at-risk",
            params={"calibration_end": "2025-12-31", "max_p_alive": 0.3},
            headers=analyst,
        )
    )
    assert got["total"] == len(expected) and got["items"] == plain(records(expected.head(100)))
    assert all(item["p_alive"] < 0.3 and item["reason"].startswith("spent ") for item in got["items"])


def test_api_customer_rows_need_data_read(client: TestClient, viewer: dict[str, str]) -> None:
    for route in ("/api/v1/value/customers", "/api/v1/value/at-risk"):
        assert client.get(route, headers=viewer).status_code == 403
    assert client.get("/api/v1/value/fit").status_code == 401


def test_api_refuses_what_cannot_be_fitted_and_bad_parameters(
    client: TestClient, analyst: dict[str, str]
) -> None:
    response = client.get("/api/v1/value/fit", params={"calibration_end": "2000-01-01"}, headers=analyst)
    assert response.status_code == 422
    assert "no customers to fit" in response.json()["detail"]
    assert client.get("/api/v1/value/fit", params={"unit": "months"}, headers=analyst).status_code == 422
    assert client.get("/api/v1/value/segments", params={"margin": 2}, headers=analyst).status_code == 422


def test_the_api_fits_once_per_import(tmp_path: Path, load: Any) -> None:
    from conftest import until_the_server_checks_the_data, write

    path = tmp_path / "cache.duckdb"
    with Store.open(str(path)) as store:
        load_demo(store, customers=120, seed=5, as_of=AS_OF.date())
        accounts.create_user(store, "ana@example.com", Role.ANALYST, "p" * 12, now=T0)
        headers = bearer(store, "ana@example.com", Role.ANALYST)
        app = create_app(store, WebSettings(database_url=store.url), clock=lambda: T0)
        with TestClient(app) as client:
            first = ok(client.get("/api/v1/value/fit", params={"as_of": "2026-01-01"}, headers=headers))
            cache: MetricsCache = app.state.metrics_cache
            assert cache.stats.computed == 1
            assert (
                ok(client.get("/api/v1/value/fit", params={"as_of": "2026-01-01"}, headers=headers)) == first
            )
            assert cache.stats.computed == 1  # the same parameters and data: answered from the cache
            ok(
                client.get(
                    "/api/v1/value/fit", params={"as_of": "2026-01-01", "unit": "days"}, headers=headers
                )
            )
            assert cache.stats.computed == 2
            # A new import changes the fingerprint: the next request fits the new data.
            lines = (
                "order_id,line_no,customer_id,ordered_at,quantity,amount\nZ1,1,NEW,2025-12-30 10:00:00,1,10\n"
            )
            load(store, "order-lines", write(tmp_path / "more.csv", lines))
            until_the_server_checks_the_data(client)  # imported outside the server
            after = ok(client.get("/api/v1/value/fit", params={"as_of": "2026-01-01"}, headers=headers))
            assert cache.stats.computed == 3
            assert after[0]["customers"] == first[0]["customers"] + 1
