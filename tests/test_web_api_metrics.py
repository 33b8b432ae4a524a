"""The metrics API answers exactly what the Python API computes and the CLI prints, refuses bad
parameters with problem details naming them, and keeps customer-level rows from dashboard roles."""

from __future__ import annotations

import datetime as dt
import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from fastapi.testclient import TestClient

from cxloop import Store
from cxloop.cli.output import to_jsonable
from cxloop.demo_store import load_demo
from cxloop.metrics import average_curve, cohorts, compute, kpis, rfm, rfm_segments, summary
from cxloop.metrics.frames import records
from cxloop.web import accounts
from cxloop.web.app import create_app
from cxloop.web.roles import Role
from cxloop.web.settings import WebSettings
from test_cli import cxloop

AS_OF = dt.datetime(2026, 1, 1)
T0 = dt.datetime(2026, 1, 5, 9, 0)


@pytest.fixture(scope="module")
def demo_files(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """The demo store, and a copy of it for the CLI (the server holds the original open)."""
    folder = tmp_path_factory.mktemp("api-metrics")
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


@pytest.fixture(scope="module")
def analyst(demo: Store) -> dict[str, str]:
    token = accounts.create_token(demo, "ana@example.com", Role.ANALYST, now=T0).token
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture(scope="module")
def viewer(demo: Store) -> dict[str, str]:
    token = accounts.create_token(demo, "vic@example.com", Role.VIEWER, now=T0).token
    return {"Authorization": f"Bearer {token}"}


def as_json(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """A frame as the CLI's --json prints it, read back."""
    return json.loads(json.dumps(to_jsonable(records(frame))))  # type: ignore[no-any-return]


def ok(response: Any) -> Any:
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/json"
    return response.json()


def problem(response: Any, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body: dict[str, Any] = response.json()
    assert body["status"] == status and body["title"] and "Traceback" not in response.text
    return body


# -- KPIs ----------------------------------------------------------------------------------------


def test_the_kpi_list_is_the_registry_as_the_cli_prints_it(
    client: TestClient, analyst: dict[str, str]
) -> None:
    listed = ok(client.get("/api/v1/kpis", headers=analyst))

    # `cxloop kpi list --json` prints describe() of each KPI (tests/test_cli_metrics.py)
    assert listed == [k.describe() for k in kpis()]


def test_one_kpi_is_its_definition_and_an_unknown_one_is_a_404_with_close_matches(
    client: TestClient, analyst: dict[str, str]
) -> None:
    assert ok(client.get("/api/v1/kpis/nps", headers=analyst)) == kpis().get("nps").describe()

    body = problem(client.get("/api/v1/kpis/npss", headers=analyst), 404)
    assert "did you mean nps" in body["detail"] and body["did_you_mean"] == ["nps"]
    problem(client.get("/api/v1/kpis/npss/values", headers=analyst), 404)


@pytest.mark.parametrize(
    ("query", "arguments"),
    [
        ("grain=quarter&by=segment&start=2025-01-01", {"grain": "quarter", "by": ["segment"]}),
        (
            "by=segment&by=region&where=segment:consumer,small_business&start=2025-06-01&change=true",
            {
                "by": ["segment", "region"],
                "where": {"segment": ["consumer", "small_business"]},
                "change": True,
            },
        ),
        (
            "grain=all&by=segment,region&where=region=West&start=2025-06-01",
            {"grain": "all", "by": ["segment", "region"], "where": {"region": ["West"]}},
        ),
    ],
)
def test_kpi_values_are_what_compute_returns_with_the_same_parameters(
    client: TestClient, analyst: dict[str, str], demo: Store, query: str, arguments: dict[str, Any]
) -> None:
    start = dt.datetime.fromisoformat(query.split("start=")[1].split("&")[0])

    got = ok(client.get(f"/api/v1/kpis/csat/values?{query}&as_of=2026-01-01", headers=analyst))

    expected = as_json(compute(demo, "csat", start=start, as_of=AS_OF, **arguments))
    assert got == expected and len(got) > 0


def test_kpi_values_default_to_the_server_clock_for_as_of(
    client: TestClient, analyst: dict[str, str], demo: Store
) -> None:
    got = ok(client.get("/api/v1/kpis/orders/values?start=2025-10-01", headers=analyst))

    assert got == as_json(compute(demo, "orders", start=dt.datetime(2025, 10, 1), as_of=T0))


def test_kpi_values_json_is_the_cli_json(
    client: TestClient, analyst: dict[str, str], demo_files: tuple[Path, Path], tmp_path: Path
) -> None:
    shown = cxloop(
        "--db", str(demo_files[1]), "kpi", "show", "nps", "--grain", "quarter", "--by", "segment",
        "--from", "2025-01-01", "--as-of", "2026-01-01", "--change", "--json", cwd=tmp_path,
    )  # fmt: skip
    assert shown.returncode == 0, shown.stderr

    got = ok(
        client.get(
            "/api/v1/kpis/nps/values",
            params={
                "grain": "quarter",
                "by": "segment",
                "start": "2025-01-01",
                "as_of": "2026-01-01",
                "change": "true",
            },
            headers=analyst,
        )
    )
    assert got == json.loads(shown.stdout) and len(got) > 0


@pytest.mark.parametrize(
    ("url", "param"),
    [
        ("/api/v1/kpis/nps/values?grain=fortnight", "grain"),
        ("/api/v1/kpis/nps/values?by=colour", "by"),
        ("/api/v1/kpis/nps/values?where=colour:red", "where"),
        ("/api/v1/kpis/nps/values?where=segment", "where"),
        ("/api/v1/kpis/nps/values?as_of=2025-13-01", "as_of"),
        ("/api/v1/kpis/nps/values?active_days=0", "active_days"),
        ("/api/v1/summary?grain=all", "grain"),
        ("/api/v1/cohorts?grain=all", "grain"),
        ("/api/v1/cohorts?by=cohort", "by"),
        ("/api/v1/rfm/segments?lookback_days=-1", "lookback_days"),
        ("/api/v1/rfm/customers?segment=Nope", "segment"),
        ("/api/v1/rfm/customers?limit=0", "limit"),
        ("/api/v1/rfm/customers?offset=-1", "offset"),
    ],
)
def test_bad_parameters_are_422_problems_naming_the_parameter(
    client: TestClient, analyst: dict[str, str], url: str, param: str
) -> None:
    body = problem(client.get(url, headers=analyst), 422)

    assert body["errors"][0]["loc"] == ["query", param]
    assert param in body["detail"]


# -- summary, cohorts, RFM -------------------------------------------------------------------------


def test_the_summary_is_what_the_python_api_computes(
    client: TestClient, analyst: dict[str, str], demo: Store
) -> None:
    got = ok(client.get("/api/v1/summary?as_of=2025-12-15&kpi=nps,revenue&kpi=orders", headers=analyst))

    expected = summary(demo, as_of=dt.datetime(2025, 12, 15), kpi_ids=["nps", "revenue", "orders"])
    assert got == as_json(expected)
    assert [row["kpi"] for row in got] == ["nps", "revenue", "orders"]
    assert all(row["period"] == "2025-11-01" for row in got)
    problem(client.get("/api/v1/summary?kpi=npss", headers=analyst), 404)


def test_cohorts_are_the_tidy_matrix_and_its_average_curve(
    client: TestClient, analyst: dict[str, str], demo: Store
) -> None:
    got = ok(client.get("/api/v1/cohorts?start=2025-06-01&as_of=2026-01-01&by=segment", headers=analyst))

    matrix = cohorts(demo, start=dt.datetime(2025, 6, 1), as_of=AS_OF, by=["segment"])
    assert got == {"cells": as_json(matrix), "average": as_json(average_curve(matrix))}
    assert got["cells"] and {c["age"] for c in got["average"]} == set(range(7))


def test_rfm_segments_are_what_the_python_api_computes(
    client: TestClient, viewer: dict[str, str], demo: Store
) -> None:
    got = ok(client.get("/api/v1/rfm/segments?as_of=2026-01-01", headers=viewer))

    assert got == as_json(rfm_segments(rfm(demo, as_of=AS_OF)))
    assert len(got) == 11


def test_rfm_customers_come_a_page_at_a_time_and_filter_by_segment(
    client: TestClient, analyst: dict[str, str], demo: Store
) -> None:
    table = rfm(demo, as_of=AS_OF)
    pages, offset = [], 0
    while True:
        page = ok(
            client.get(f"/api/v1/rfm/customers?as_of=2026-01-01&limit=100&offset={offset}", headers=analyst)
        )
        assert page["total"] == len(table) and page["limit"] == 100 and page["offset"] == offset
        pages += page["items"]
        offset += 100
        if not page["items"]:
            break
    assert pages == as_json(table)

    at_risk = ok(
        client.get("/api/v1/rfm/customers?as_of=2026-01-01&segment=At risk&limit=5", headers=analyst)
    )
    assert at_risk["total"] == int((table["segment"] == "At risk").sum()) > 5
    assert at_risk["items"] == as_json(table[table["segment"] == "At risk"].head(5))


# -- who may read what -------------------------------------------------------------------------------

AGGREGATES = [
    "/api/v1/kpis",
    "/api/v1/kpis/nps",
    "/api/v1/kpis/nps/values?start=2025-12-01",
    "/api/v1/cohorts?start=2025-12-01",
    "/api/v1/rfm/segments",
]


def test_a_viewer_reads_aggregates_but_not_customer_rows(client: TestClient, viewer: dict[str, str]) -> None:
    for url in AGGREGATES:
        ok(client.get(url, headers=viewer))

    problem(client.get("/api/v1/rfm/customers", headers=viewer), 403)


def test_anonymous_callers_get_401(client: TestClient) -> None:
    for url in [*AGGREGATES, "/api/v1/summary", "/api/v1/rfm/customers"]:
        response = client.get(url)
        problem(response, 401)
        assert response.headers["www-authenticate"] == "Bearer"


def test_the_schema_documents_examples_and_problems_for_every_metrics_route(
    client: TestClient,
) -> None:
    schema = ok(client.get("/api/v1/openapi.json"))
    paths = {p: v["get"] for p, v in schema["paths"].items() if "metrics" in v.get("get", {}).get("tags", [])}

    assert set(paths) == {
        "/api/v1/kpis",
        "/api/v1/kpis/{kpi_id}",
        "/api/v1/kpis/{kpi_id}/values",
        "/api/v1/summary",
        "/api/v1/cohorts",
        "/api/v1/rfm/segments",
        "/api/v1/rfm/customers",
    }
    for path, operation in paths.items():
        responses = operation["responses"]
        assert {"401", "403"} <= set(responses), path
        assert "application/problem+json" in responses["401"]["content"], path
        ok_content = responses["200"]["content"]["application/json"]
        schema_ref = json.dumps(ok_content)
        assert "example" in ok_content or "$ref" in schema_ref or "items" in schema_ref, path
    assert (
        "example" in paths["/api/v1/kpis/{kpi_id}/values"]["responses"]["200"]["content"]["application/json"]
    )
    assert "422" in paths["/api/v1/kpis/{kpi_id}/values"]["responses"]
    models = schema["components"]["schemas"]
    for model in ("KpiDefinition", "RfmSegment", "RfmCustomer", "Cohorts"):
        assert all(
            "examples" in field
            for field in models[model]["properties"].values()
            if field.get("type") != "array" or model == "Cohorts"
        ), model
