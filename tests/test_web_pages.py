"""The pages people read: the dashboard, a KPI and the rows behind it, the customers and one
customer — the same numbers as the metrics layer, every chart's CSV, customer text as text, and
customer-level pages closed to the dashboard-only roles."""

from __future__ import annotations

import csv
import datetime as dt
import io
import re
from collections.abc import Iterator

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

import conftest
from cxloop import ImportOptions, Store, import_file
from cxloop.demo_store import load_demo
from cxloop.metrics import compute, summary
from cxloop.store import schema
from cxloop.web import accounts
from cxloop.web.app import create_app
from cxloop.web.roles import Role
from cxloop.web.settings import WebSettings

NOW = dt.datetime(2026, 1, 15, 10, 0)
HOSTILE = '<script>alert("x")</script><img src=x onerror=alert(1)>'


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Store]:
    path = tmp_path_factory.mktemp("pages") / "demo.duckdb"
    with Store.open(str(path)) as store:
        load_demo(store, customers=300, seed=3, as_of=NOW.date())
        accounts.create_user(store, "ana@example.com", Role.ANALYST, "p" * 12, now=NOW)
        accounts.create_user(store, "vic@example.com", Role.VIEWER, "p" * 12, now=NOW)
        hostile = path.parent / "hostile.csv"
        hostile.write_text(
            "response_id,survey_id,kind,scale_min,scale_max,score,comment,customer_id,responded_at\n"
            f'hostile,relationship-nps,nps,0,10,2,"{HOSTILE.replace(chr(34), chr(34) * 2)}",C000001,2025-12-20 12:00\n'
        )
        result = import_file(store, "responses", hostile, ImportOptions(rejects_dir=path.parent / "rejects"))
        assert result.rejected == 0 and result.loaded == 1
        yield store


@pytest.fixture(scope="module")
def client(demo: Store) -> Iterator[TestClient]:
    app = create_app(demo, WebSettings(database_url=demo.url), clock=lambda: NOW)
    with TestClient(app, raise_server_exceptions=False) as c:
        yield c


def bearer(store: Store, email: str, role: Role) -> dict[str, str]:
    return conftest.bearer(store, email, role, now=NOW)


@pytest.fixture(scope="module")
def analyst(demo: Store) -> dict[str, str]:
    return bearer(demo, "ana@example.com", Role.ANALYST)


@pytest.fixture(scope="module")
def viewer(demo: Store) -> dict[str, str]:
    return bearer(demo, "vic@example.com", Role.VIEWER)


def page(client: TestClient, url: str, headers: dict[str, str]) -> str:
    response = client.get(url, headers=headers)
    assert response.status_code == 200, response.text[:2000]
    assert response.headers["content-type"].startswith("text/html")
    return response.text


def csv_rows(client: TestClient, url: str, headers: dict[str, str]) -> list[dict[str, str]]:
    response = client.get(url, headers=headers)
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/csv")
    assert "attachment" in response.headers["content-disposition"]
    return list(csv.DictReader(io.StringIO(response.text)))


def tile_values(html: str) -> dict[str, str]:
    return dict(
        re.findall(r'data-kpi="([^"]+)">.*?class="tile-value" data-value="([^"]*)"', html, flags=re.S)
    )


def test_the_dashboard_tiles_are_the_summary(client: TestClient, demo: Store, viewer: dict[str, str]) -> None:
    html = page(client, "/", viewer)

    shown = tile_values(html)
    expected = summary(demo, as_of=NOW)
    assert list(shown) == list(expected["kpi"])
    for row in expected.itertuples():
        if row.value == row.value:  # not NaN
            assert float(shown[row.kpi]) == pytest.approx(row.value, rel=1e-9), row.kpi
        else:
            assert shown[row.kpi] == "", row.kpi
    assert html.count('class="chart"') == 3 and "/vendor/plotly.min.js" in html


def test_the_trend_csv_is_the_kpi_by_period(client: TestClient, demo: Store, viewer: dict[str, str]) -> None:
    rows = csv_rows(client, "/?kpi=csat&grain=month&download=trend", viewer)

    expected = compute(demo, "csat", start=dt.datetime(2025, 1, 1), end=dt.datetime(2026, 1, 1), as_of=NOW)
    assert [r["period"] for r in rows] == [f"{p:%Y-%m-%d}" for p in expected["period"]]
    assert [float(r["value"]) for r in rows] == pytest.approx(list(expected["value"]), rel=1e-9)


def test_a_breakdown_draws_one_line_per_value_and_lists_them_all(
    client: TestClient, viewer: dict[str, str]
) -> None:
    rows = csv_rows(client, "/?kpi=revenue&by=segment&download=trend", viewer)
    html = page(client, "/kpis/revenue?by=segment&grain=quarter", viewer)

    assert {r["segment"] for r in rows} >= {"consumer", "small_business"}
    assert "Revenue by quarter, by segment" in html


def test_cohort_and_rfm_charts_offer_their_tables_as_csv(client: TestClient, viewer: dict[str, str]) -> None:
    cohorts = csv_rows(client, "/?download=cohorts", viewer)
    segments = csv_rows(client, "/?download=rfm", viewer)

    assert all(r["age"] != "0" or float(r["retention"]) == 100.0 for r in cohorts)
    assert [r["segment"] for r in segments][:2] == ["Champions", "Loyal"]


def test_drilling_into_an_nps_lists_its_detractors_and_shows_their_words_as_text(
    client: TestClient, analyst: dict[str, str]
) -> None:
    html = page(client, "/kpis/nps/rows?period=2025-12-01&class=detractor", analyst)
    rows = csv_rows(client, "/kpis/nps/rows?period=2025-12-01&class=detractor&download=rows", analyst)

    assert rows and {r["class"] for r in rows} == {"detractor"}
    assert all(float(r["score"]) <= 6 for r in rows)
    assert "hostile" in {r["response_id"] for r in rows}
    assert HOSTILE not in html and "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;" in html
    assert "<img src=x" not in html


def test_the_kpi_page_links_each_period_to_its_rows_only_for_those_who_may_read_them(
    client: TestClient, analyst: dict[str, str], viewer: dict[str, str]
) -> None:
    for_analyst = page(client, "/kpis/nps", analyst)
    for_viewer = page(client, "/kpis/nps", viewer)

    assert "/kpis/nps/rows?period=" in for_analyst
    assert "/kpis/nps/rows?" not in for_viewer
    assert client.get("/kpis/nps/rows?period=2025-12-01", headers=viewer).status_code == 403
    assert client.get("/customers", headers=viewer).status_code == 403


def test_bad_page_parameters_are_422_problems_not_crashes(
    client: TestClient, analyst: dict[str, str]
) -> None:
    for url in (
        "/?grain=fortnight",
        "/?grain=all",
        "/?kpi=revenue&by=touchpoint",
        "/kpis/nps/rows?period=yesterday",
        "/kpis/nps/rows?period=2025-12-01&class=angry",
        "/customers?sort=password",
    ):
        response = client.get(url, headers=analyst)
        assert response.status_code == 422, (url, response.status_code)
        assert "Traceback" not in response.text
    assert client.get("/kpis/nope", headers=analyst).status_code == 404


def test_customers_are_searched_and_paged(client: TestClient, demo: Store, analyst: dict[str, str]) -> None:
    first = page(client, "/customers", analyst)
    second = page(client, "/customers?offset=50", analyst)
    found = page(client, "/customers?q=C00000", analyst)

    ids = re.findall(r'<a href="/customers/(C\d+)">', first)
    assert len(ids) == 50 and ids == sorted(ids)
    assert re.findall(r'<a href="/customers/(C\d+)">', second)[0] > ids[-1]
    assert "300 customers" in first and 'rel="next"' in first
    assert set(re.findall(r'<a href="/customers/(C\d+)">', found)) == {f"C00000{i}" for i in range(1, 10)}


def test_a_customer_page_shows_their_timeline_with_their_words_as_text(
    client: TestClient, demo: Store, analyst: dict[str, str]
) -> None:
    html = page(client, "/customers/C000001", analyst)

    with demo.engine.connect() as conn:
        orders = conn.execute(
            sa.select(sa.func.count())
            .select_from(schema.orders)
            .where(schema.orders.c.customer_id == "C000001")
        ).scalar_one()
    assert f'<p class="tile-value">{orders}</p>' in html
    assert "NPS answer to <code>relationship-nps</code>: <strong>2</strong> of 10" in html
    assert HOSTILE not in html and "&lt;img src=x onerror=alert(1)&gt;" in html
    assert client.get("/customers/NOBODY", headers=analyst).status_code == 404


def test_plotly_is_served_from_the_installed_package_compressed_and_cached(client: TestClient) -> None:
    plain = client.get("/vendor/plotly.min.js", headers={"accept-encoding": "identity"})
    zipped = client.get("/vendor/plotly.min.js", headers={"accept-encoding": "gzip"})

    assert plain.status_code == 200 and plain.headers["content-type"].startswith("text/javascript")
    assert "max-age" in plain.headers["cache-control"] and len(plain.content) > 1_000_000
    assert zipped.headers.get("content-encoding") == "gzip" and zipped.content == plain.content
    assert client.get("/vendor/anything-else.js").status_code == 404


def test_the_value_page_shows_the_fitted_models_and_the_api_agrees(
    client: TestClient, viewer: dict[str, str], analyst: dict[str, str]
) -> None:
    html = page(client, "/value", viewer)
    fit = client.get("/api/v1/value/fit", headers=viewer).json()
    rows = csv_rows(client, "/value?download=fit", viewer)
    holdout = csv_rows(client, "/value?download=holdout", viewer)

    assert html.count('class="chart"') == 2 and "CLV by segment" in html
    assert [(r["model"], r["parameter"]) for r in rows] == [(f["model"], f["parameter"]) for f in fit]
    assert [float(r["value"]) for r in rows] == pytest.approx([f["value"] for f in fit], rel=1e-12)
    assert holdout[-1]["frequency"] == "all" and float(holdout[-1]["actual_total"]) >= 0
    assert 'href="/value/at-risk"' not in html  # the viewer may not read customer-level rows
    assert 'href="/value/at-risk"' in page(client, "/value", analyst)


def test_customers_at_risk_are_listed_with_a_reason_for_those_who_may_read_them(
    client: TestClient, viewer: dict[str, str], analyst: dict[str, str]
) -> None:
    rows = csv_rows(client, "/value/at-risk?download=csv", analyst)
    html = page(client, "/value/at-risk", analyst)

    assert client.get("/value/at-risk", headers=viewer).status_code == 403
    assert all(float(r["p_alive"]) < 0.5 and r["reason"].startswith("spent ") for r in rows)
    if rows:
        first = rows[0]["customer_id"]
        assert f'href="/customers/{first}"' in html
        assert "<strong>At risk:</strong>" in page(client, f"/customers/{first}", analyst)


def test_the_dashboard_is_computed_once_until_the_next_import(
    client: TestClient, demo: Store, viewer: dict[str, str], tmp_path_factory: pytest.TempPathFactory
) -> None:
    cache = client.app.state.metrics_cache  # type: ignore[attr-defined]
    page(client, "/", viewer)
    computed = cache.stats.computed
    again = tile_values(page(client, "/", viewer))
    assert cache.stats.computed == computed  # nothing computed again

    extra = tmp_path_factory.mktemp("late") / "late.csv"
    extra.write_text(
        "response_id,survey_id,kind,scale_min,scale_max,score,customer_id,responded_at\n"
        "late-1,relationship-nps,nps,0,10,10,C000002,2025-12-21 12:00\n"
    )
    import_file(demo, "responses", extra, ImportOptions(rejects_dir=extra.parent / "rejects"))
    conftest.until_the_server_checks_the_data(client)
    after = tile_values(page(client, "/", viewer))

    assert cache.stats.computed > computed
    assert after["nps"] != again["nps"] and after["nps"] == str(
        summary(demo, as_of=NOW).set_index("kpi").loc["nps", "value"]
    )
