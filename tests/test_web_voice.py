"""The voice-of-the-customer web shells (docs/web.md, "Voice"): the API answers exactly what the
library computes on the demo store, refuses bad parameters with a 422 naming them, keeps texts
(customer-level) from dashboard roles, and the pages draw charts with their tables and CSV,
showing hostile customer text as text."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from typing import Any

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

import conftest
from cxloop import Store
from cxloop.cli.output import to_jsonable
from cxloop.demo_store import load_demo
from cxloop.metrics.frames import records
from cxloop.metrics.source import store_source
from cxloop.store import schema
from cxloop.voice.baskets import basket_pairs
from cxloop.voice.competitors import compare_brands
from cxloop.voice.sales import item_trends, top_items
from cxloop.voice.sentiment import corpus_sentiment, summary
from cxloop.web import accounts
from cxloop.web.app import create_app
from cxloop.web.auth import route_access
from cxloop.web.charts import Table
from cxloop.web.roles import Capability, Role
from cxloop.web.settings import WebSettings

AS_OF = dt.datetime(2026, 1, 1)
T0 = dt.datetime(2026, 1, 5, 9, 0)
HOSTILE = '<script>alert("x")</script><img src=x onerror=alert(1)>'


def hostile_review(store: Store, posted_at: dt.datetime = dt.datetime(2025, 12, 10)) -> None:
    """A competitor's review whose brand and text are markup (untrusted input)."""
    with store.engine.begin() as conn:
        conn.execute(
            sa.insert(schema.reviews).values(
                source="web-test", review_id="evil-1", kind="review", rating=1, text=HOSTILE,
                posted_at=posted_at, brand=HOSTILE, is_competitor=True, row_hash="x",
            )
        )  # fmt: skip


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Store]:
    path = tmp_path_factory.mktemp("web-voice") / "demo.duckdb"
    with Store.open(str(path)) as store:
        load_demo(store, customers=300, seed=3, as_of=AS_OF.date())
        hostile_review(store)
        accounts.create_user(store, "ana@example.com", Role.ANALYST, "p" * 12, now=T0)
        accounts.create_user(store, "vic@example.com", Role.VIEWER, "p" * 12, now=T0)
        yield store


@pytest.fixture(scope="module")
def client(demo: Store) -> Iterator[TestClient]:
    app = create_app(demo, WebSettings(database_url=demo.url), clock=lambda: T0)
    with TestClient(app, raise_server_exceptions=False) as c:
        yield c


@pytest.fixture(scope="module")
def analyst(demo: Store) -> dict[str, str]:
    return conftest.bearer(demo, "ana@example.com", Role.ANALYST, now=T0)


@pytest.fixture(scope="module")
def viewer(demo: Store) -> dict[str, str]:
    return conftest.bearer(demo, "vic@example.com", Role.VIEWER, now=T0)


def plain(rows: Any) -> Any:
    """Rows as the CLI's --json prints them, read back."""
    return json.loads(json.dumps(to_jsonable(rows)))


def ok(response: Any) -> Any:
    assert response.status_code == 200, response.text
    return response.json()


def signed_in(client: TestClient, store: Store, role: Role) -> TestClient:
    """The client with a session cookie of a new user of ``role``."""
    from cxloop.web.sessions import SessionPolicy, start_session

    email = f"{role.value}-page@example.com"
    if accounts.find_user(store, email) is None:
        accounts.create_user(store, email, role, "p" * 12, now=T0)
    user = accounts.find_user(store, email)
    assert user is not None
    session = start_session(store, user.id, now=T0, policy=SessionPolicy())
    client.cookies.set("cxloop_session", session.token)
    return client


# -------------------------------------------------------------------------------- API


def test_sentiment_summary_is_the_librarys(client: TestClient, demo: Store, viewer: dict[str, str]) -> None:
    frame = corpus_sentiment(demo)  # scores the texts (a score read back from the cache is float32)
    body = ok(client.get("/api/v1/voice/sentiment", headers=viewer))
    frame = corpus_sentiment(demo)
    assert body["model"] == frame.attrs["model"]
    assert body["rows"] == plain(records(summary(frame)))
    kinds = {r["kind"] for r in body["rows"]}
    assert {"review", "ticket"} <= kinds

    expected = summary(corpus_sentiment(demo, kinds=["review"], competitors=True), by=("brand",))
    by_brand = ok(
        client.get("/api/v1/voice/sentiment?by=brand&kind=review&brands=competitors", headers=viewer)
    )
    assert by_brand["rows"] == plain(records(expected))
    assert HOSTILE in {r["brand"] for r in by_brand["rows"]}  # JSON carries text as it is


def test_texts_are_customer_level_data(
    client: TestClient, demo: Store, viewer: dict[str, str], analyst: dict[str, str]
) -> None:
    assert client.get("/api/v1/voice/sentiment/texts", headers=viewer).status_code == 403
    body = ok(client.get("/api/v1/voice/sentiment/texts?label=negative&limit=5&offset=2", headers=analyst))
    frame = corpus_sentiment(demo)
    negative = frame[frame["sentiment_label"] == "negative"]
    assert body["total"] == len(negative) > 7
    assert [r["text_id"] for r in body["items"]] == list(negative["text_id"].iloc[2:7])
    assert all(r["sentiment_label"] == "negative" and "customer_id" in r for r in body["items"])


def test_sales_answers_are_the_librarys(client: TestClient, demo: Store, viewer: dict[str, str]) -> None:
    with store_source(demo) as source:
        top = top_items(source, level="product", measure="units", as_of=AS_OF, limit=5)
        moves = item_trends(source, grain="quarter", as_of=AS_OF, min_orders=5)
        pairs = basket_pairs(source, level="category", as_of=AS_OF, min_count=3, limit=10)
    q = "as_of=2026-01-01"
    assert ok(client.get(f"/api/v1/sales/top?by=product&measure=units&limit=5&{q}", headers=viewer))[
        "rows"
    ] == plain(records(top))
    assert ok(client.get(f"/api/v1/sales/trends?grain=quarter&min_orders=5&{q}", headers=viewer))[
        "rows"
    ] == plain(records(moves))
    body = ok(client.get(f"/api/v1/sales/baskets?level=category&min_count=3&limit=10&{q}", headers=viewer))
    assert body["rows"] == plain(records(pairs)) and len(body["rows"]) > 0
    assert body["attrs"]["baskets"] == pairs.attrs["baskets"]


def test_sales_per_segment_and_filters(client: TestClient, demo: Store, viewer: dict[str, str]) -> None:
    with store_source(demo) as source:
        expected = top_items(source, per="segment", where={"region": ["North"]}, as_of=AS_OF, limit=3)
    body = ok(
        client.get("/api/v1/sales/top?per=segment&region=North&limit=3&as_of=2026-01-01", headers=viewer)
    )
    assert body["rows"] == plain(records(expected))


def test_competitors_are_the_librarys(client: TestClient, demo: Store, viewer: dict[str, str]) -> None:
    with store_source(demo) as source:
        expected = compare_brands(demo, source, grain="quarter", as_of=AS_OF)
    body = ok(client.get("/api/v1/competitors?grain=quarter&as_of=2026-01-01", headers=viewer))
    assert body["rows"] == plain(records(expected))
    assert {"Northwind", "Contoso", "Fabrikam"} <= {r["brand"] for r in body["rows"]}


@pytest.mark.parametrize(
    ("url", "parameter"),
    [
        ("/api/v1/voice/sentiment?kind=tweet", "query.kind"),
        ("/api/v1/voice/sentiment?brands=mine", "query.brands"),
        ("/api/v1/voice/sentiment?from=yesterday", "query.from"),
        ("/api/v1/voice/sentiment?knd=review", "query.knd"),
        ("/api/v1/sales/top?by=brand", "query.by"),
        ("/api/v1/sales/top?measure=profit", "query.measure"),
        ("/api/v1/sales/trends?grain=day", "query.grain"),
        ("/api/v1/sales/trends?min_orders=-1", "query.min_orders"),
        ("/api/v1/sales/baskets?min_support=2", "query.min_support"),
        ("/api/v1/competitors?kind=ticket", "query.kind"),
        ("/api/v1/competitors?grian=week", "query.grian"),
    ],
)
def test_bad_parameters_are_422_naming_them(
    client: TestClient, viewer: dict[str, str], url: str, parameter: str
) -> None:
    response = client.get(url, headers=viewer)
    assert response.status_code == 422, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    assert parameter in response.json()["detail"]


def test_a_library_refusal_is_a_422_with_the_reason(client: TestClient, viewer: dict[str, str]) -> None:
    response = client.get("/api/v1/sales/top?segment=nobody", headers=viewer)
    assert response.status_code == 422, response.text
    assert "nobody" in response.json()["detail"]


def test_the_api_is_documented_with_examples(client: TestClient, viewer: dict[str, str]) -> None:
    schema_ = ok(client.get("/api/v1/openapi.json", headers=viewer))
    paths = schema_["paths"]
    for path in ("/api/v1/voice/sentiment", "/api/v1/voice/sentiment/texts", "/api/v1/sales/top",
                 "/api/v1/sales/trends", "/api/v1/sales/baskets", "/api/v1/competitors"):  # fmt: skip
        operation = paths[path]["get"]
        assert "422" in operation["responses"]
        assert operation["parameters"], path
    names = {p["name"] for p in paths["/api/v1/voice/sentiment"]["get"]["parameters"]}
    assert {"kind", "from", "to", "brands", "model", "by"} <= names


def test_answers_are_kept_until_the_next_import(client: TestClient, viewer: dict[str, str]) -> None:
    stats = client.app.state.metrics_cache.stats  # type: ignore[attr-defined]
    ok(client.get("/api/v1/competitors?grain=month&as_of=2026-01-01", headers=viewer))
    computed = stats.computed
    ok(client.get("/api/v1/competitors?grain=month&as_of=2026-01-01", headers=viewer))
    assert stats.computed == computed


# -------------------------------------------------------------------------------- pages


@pytest.mark.parametrize(
    "path", ["/voice", "/voice/competitors", "/sales", "/sales?level=product&grain=quarter"]
)
def test_pages_draw_charts_with_tables(client: TestClient, demo: Store, path: str) -> None:
    page = signed_in(client, demo, Role.VIEWER).get(path)
    assert page.status_code == 200, page.text
    assert 'data-chart="' in page.text and "<table" in page.text
    assert "Download CSV" in page.text
    assert 'href="/voice"' in page.text  # the nav


def test_pages_show_hostile_text_as_text(client: TestClient, demo: Store) -> None:
    for path in ("/voice", "/voice/competitors"):
        page = signed_in(client, demo, Role.VIEWER).get(path)
        assert page.status_code == 200
        assert HOSTILE not in page.text
        assert "<script>alert" not in page.text and "<img src=x" not in page.text
    assert "&lt;script&gt;alert(" in page.text


def test_chart_csv_downloads(client: TestClient, demo: Store) -> None:
    c = signed_in(client, demo, Role.VIEWER)
    for path, first in [
        ("/voice?download=sources", "kind,source,n,"),
        ("/voice?download=brands", "brand,n,"),
        ("/voice/competitors?grain=quarter&download=latest", "brand,is_competitor,mentions,"),
        ("/voice/competitors?download=share", "period,brand,is_competitor,share"),
        ("/sales?download=top", "period,rank,category"),
        ("/sales?download=baskets", "item_a,"),
    ]:
        response = c.get(path)
        assert response.status_code == 200, path
        assert response.headers["content-type"].startswith("text/csv")
        assert response.text.startswith(first), (path, response.text[:80])


def test_pages_need_a_signed_in_user(demo: Store) -> None:
    app = create_app(demo, WebSettings(database_url=demo.url), clock=lambda: T0)
    with TestClient(app) as anonymous:
        response = anonymous.get("/voice", follow_redirects=False)
        assert response.status_code == 303 and response.headers["location"].startswith("/login")


# -------------------------------------------------------------------------------- theme views

RULES = {"delivery": r"deliver|late|arriv|shipping|courier", "price": r"price|expensive|cheap|cost"}


def keyword_themes(texts: Any) -> Any:
    """A stand-in theme assigner (keyword rules) until the themes module lands."""
    import re

    import pandas as pd

    rows = [
        {"text_id": text_id, "theme_id": theme, "label": f"{theme.title()} <b>"}
        for text_id, text in zip(texts["text_id"], texts["text"], strict=True)
        for theme, pattern in RULES.items()
        if re.search(pattern, str(text), re.IGNORECASE)
    ]
    return pd.DataFrame(rows, columns=["text_id", "theme_id", "label"])


def test_theme_trend_views_hold_the_reports_numbers(demo: Store) -> None:
    from cxloop.voice.trends import store_trend_report
    from cxloop.web import voice_view

    report = store_trend_report(demo, assign=keyword_themes, as_of=AS_OF, grain="month", periods=6)
    chart = voice_view.theme_trend_chart(report.trends, measure="share", csv_href="/x")
    assert {trace["name"] for trace in chart.figure["data"]} == {"Delivery <b>", "Price <b>"}
    assert chart.table.rows == Table.from_frame(report.trends).rows and not chart.empty
    delivery = next(t for t in chart.figure["data"] if t["name"] == "Delivery <b>")
    expected = report.trends[report.trends["theme_id"] == "delivery"]
    assert delivery["y"] == [pytest.approx(v) for v in expected["share"]]
    lines = voice_view.theme_sparklines(report.trends)
    assert set(lines) == {"delivery", "price"} and all(lines.values())
    assert voice_view.changes_table(report.changes).columns[:3] == ["rank", "theme_id", "label"]
    assert len(voice_view.emerging_table(report.emerging).rows) == len(report.emerging)


def test_drivers_chart_shows_each_gap_with_its_interval(demo: Store) -> None:
    from cxloop.voice.drivers import store_key_drivers
    from cxloop.web import voice_view

    report = store_key_drivers(demo, assign=keyword_themes, as_of=AS_OF, min_n=5)
    metric = str(report.drivers["metric"].iloc[0])
    chart = voice_view.drivers_chart(report.drivers, metric=metric)
    rows = report.drivers[(report.drivers["metric"] == metric) & report.drivers["gap"].notna()]
    (bars,) = chart.figure["data"]
    assert bars["x"] == [pytest.approx(g) for g in rows["gap"]]
    assert [g + h for g, h in zip(bars["x"], bars["error_x"]["array"], strict=True)] == [
        pytest.approx(v) for v in rows["ci_high"]
    ]
    assert [g - lo for g, lo in zip(bars["x"], bars["error_x"]["arrayminus"], strict=True)] == [
        pytest.approx(v) for v in rows["ci_low"]
    ]
    assert voice_view.fix_first_table(report.fix_first).columns[0] == "order"


VOICE_ROUTES = {
    ("GET", "/api/v1/voice/sentiment"): Capability.DASHBOARDS_READ,
    ("GET", "/api/v1/voice/sentiment/texts"): Capability.DATA_READ,
    ("GET", "/api/v1/sales/top"): Capability.DASHBOARDS_READ,
    ("GET", "/api/v1/sales/trends"): Capability.DASHBOARDS_READ,
    ("GET", "/api/v1/sales/baskets"): Capability.DASHBOARDS_READ,
    ("GET", "/api/v1/competitors"): Capability.DASHBOARDS_READ,
    ("GET", "/voice"): Capability.DASHBOARDS_READ,
    ("GET", "/voice/competitors"): Capability.DASHBOARDS_READ,
    ("GET", "/sales"): Capability.DASHBOARDS_READ,
    ("GET", "/api/v1/voice/trends"): Capability.DASHBOARDS_READ,
    ("GET", "/api/v1/voice/drivers"): Capability.DASHBOARDS_READ,
    ("GET", "/voice/trends"): Capability.DASHBOARDS_READ,
    ("GET", "/voice/drivers"): Capability.DASHBOARDS_READ,
    ("GET", "/api/v1/voice/themes"): Capability.DASHBOARDS_READ,
    ("GET", "/voice/themes"): Capability.DASHBOARDS_READ,
}


def test_voice_routes_require_their_capability(demo: Store) -> None:
    """Aggregates for every role that reads dashboards; the texts, with customer ids, are data
    (the route × role matrix in test_web_roles.py then checks each role against these)."""
    app = create_app(demo, WebSettings(database_url=demo.url), clock=lambda: T0)
    declared = {
        (method, r.path): {str(q) for q in r.requirements}
        for r in route_access(app)
        for method in r.methods
        if (method, r.path) in VOICE_ROUTES
    }
    assert declared == {route: {capability.value} for route, capability in VOICE_ROUTES.items()}


# -------------------------------------------------------------------------------- trends and drivers


@pytest.fixture(scope="module")
def themed(demo: Store) -> Iterator[TestClient]:
    """The app with a theme assigner (keyword rules; the themes module sets its own)."""
    app = create_app(demo, WebSettings(database_url=demo.url), clock=lambda: T0)
    app.state.theme_assigner = keyword_themes
    with TestClient(app, raise_server_exceptions=False) as c:
        yield c


def test_without_themes_trends_and_drivers_say_so(
    client: TestClient, demo: Store, viewer: dict[str, str]
) -> None:
    for url in ("/api/v1/voice/trends", "/api/v1/voice/drivers"):
        response = client.get(url, headers=viewer)
        assert response.status_code == 422 and "no themes yet" in response.json()["detail"]
    for path in ("/voice/trends", "/voice/drivers"):
        page = signed_in(client, demo, Role.VIEWER).get(path)
        assert page.status_code == 200 and "no themes yet" in page.text


def test_trends_and_drivers_are_the_librarys(themed: TestClient, demo: Store, viewer: dict[str, str]) -> None:
    from cxloop.voice.drivers import store_key_drivers
    from cxloop.voice.trends import store_trend_report

    report = store_trend_report(demo, assign=keyword_themes, as_of=AS_OF, grain="month", periods=6)
    body = ok(themed.get("/api/v1/voice/trends?grain=month&periods=6&as_of=2026-01-01", headers=viewer))
    assert body["trends"] == plain(records(report.trends))
    assert body["emerging"] == plain(records(report.emerging))
    assert body["changes"] == plain(records(report.changes)) and body["notes"] == list(report.notes)

    drivers = store_key_drivers(demo, assign=keyword_themes, as_of=AS_OF, by_segment=True, min_n=5)
    body = ok(
        themed.get("/api/v1/voice/drivers?by_segment=true&min_answers=5&as_of=2026-01-01", headers=viewer)
    )
    assert body["drivers"] == plain(records(drivers.drivers))
    assert body["fix_first"] == plain(records(drivers.fix_first))


@pytest.mark.parametrize(
    ("url", "parameter"),
    [
        ("/api/v1/voice/trends?grain=day", "query.grain"),
        ("/api/v1/voice/trends?periods=0", "query.periods"),
        ("/api/v1/voice/drivers?min_answers=1", "query.min_answers"),
        ("/api/v1/voice/drivers?segment=smb&by_segment=true", "query.segment"),
        ("/api/v1/voice/drivers?segmnet=smb", "query.segmnet"),
    ],
)
def test_bad_theme_parameters_are_422(
    themed: TestClient, viewer: dict[str, str], url: str, parameter: str
) -> None:
    response = themed.get(url, headers=viewer)
    assert response.status_code == 422, response.text
    assert parameter in response.json()["detail"]


def test_trend_and_driver_pages_draw_escaped_themes(themed: TestClient, demo: Store) -> None:
    c = signed_in(themed, demo, Role.VIEWER)
    for path, chart in [
        ("/voice/trends?grain=month", "share"),
        ("/voice/drivers", "drivers-"),
        ("/voice", "brands"),
    ]:
        page = c.get(path)
        assert page.status_code == 200, page.text
        assert f'data-chart="{chart}' in page.text and "<table" in page.text
        assert "Delivery <b>" not in page.text and "Delivery &lt;b&gt;" in page.text
    assert "What changed" in c.get("/voice").text
    segment = _segments_of(demo)[0]
    page = c.get(f"/voice/drivers?segment={segment}")
    assert page.status_code == 200 and f'<option value="{segment}" selected>' in page.text
    assert "not in the data" in c.get("/voice/drivers?segment=nobody").text
    for path, first in [
        ("/voice/trends?download=emerging", "period,theme_id,label,status"),
        ("/voice/trends?download=changes", "rank,theme_id,label"),
        ("/voice/drivers?download=fix", "order,segment,theme_id"),
    ]:
        response = c.get(path)
        assert response.status_code == 200 and response.text.startswith(first), (path, response.text[:80])


def _segments_of(store: Store) -> list[str]:
    with store.engine.connect() as conn:
        found = conn.execute(sa.text("SELECT DISTINCT segment FROM customers WHERE segment IS NOT NULL"))
        return sorted(str(r[0]) for r in found)


# -------------------------------------------------------------------------------- theme explorer

SMUGGLED = "<script>alert('quote')</script> zyzzyva broke"


def smuggle_quotes(store: Store, at: dt.datetime) -> None:
    """Three reviews whose text is markup, themes discovered, and a keyword rule that makes them
    the quotes of a theme whose label is markup too."""
    from cxloop.voice.themes import add_rule, discover

    with store.engine.begin() as conn:
        for i in range(3):
            conn.execute(
                sa.insert(schema.reviews).values(
                    source="web-test", review_id=f"smuggled-{i}", kind="review", rating=1, text=SMUGGLED,
                    posted_at=at + dt.timedelta(days=i), brand="Northwind", is_competitor=False,
                    row_hash=f"s{i}",
                )
            )  # fmt: skip
    discover(store, kinds=("review", "ticket"), by="test", clock=lambda: T0)
    add_rule(store, ["zyzzyva"], label="<b>Zyzzyva</b>", by="test", clock=lambda: T0)


@pytest.fixture(scope="module")
def themes_store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Store]:
    """A demo store with discovered themes, a rule-only theme whose texts are markup."""
    path = tmp_path_factory.mktemp("web-themes") / "demo.duckdb"
    with Store.open(str(path)) as store:
        load_demo(store, customers=300, seed=3, as_of=AS_OF.date())
        smuggle_quotes(store, dt.datetime(2025, 12, 1))
        accounts.create_user(store, "vic@example.com", Role.VIEWER, "p" * 12, now=T0)
        yield store


@pytest.fixture(scope="module")
def themes_client(themes_store: Store) -> Iterator[TestClient]:
    app = create_app(themes_store, WebSettings(database_url=themes_store.url), clock=lambda: T0)
    with TestClient(app, raise_server_exceptions=False) as c:
        yield c


def test_themes_api_is_the_librarys(themes_client: TestClient, themes_store: Store) -> None:
    from cxloop.voice.themes import theme_report

    viewer = conftest.bearer(themes_store, "vic@example.com", Role.VIEWER, now=T0)
    theme_report(themes_store)  # scores the texts (a score read back from the cache is float32)
    expected = theme_report(themes_store, grain="month", quotes=3)
    body = ok(themes_client.get("/api/v1/voice/themes", headers=viewer))
    assert body["themes"] == plain(records(expected))
    assert body["version"] == expected.attrs["version"] and body["texts"] == expected.attrs["texts"]
    rule = next(t for t in body["themes"] if t["label"] == "<b>Zyzzyva</b>")
    assert SMUGGLED in rule["quotes"]
    bad = themes_client.get("/api/v1/voice/themes?quotes=99", headers=viewer)
    assert bad.status_code == 422 and "query.quotes" in bad.json()["detail"]
    # trends and drivers use the store's taxonomy when the app is given no other assigner
    trends = ok(themes_client.get("/api/v1/voice/trends?grain=month&as_of=2026-01-01", headers=viewer))
    assert "<b>Zyzzyva</b>" in {r["label"] for r in trends["trends"]}


def test_theme_explorer_shows_quotes_escaped(themes_client: TestClient, themes_store: Store) -> None:
    page = signed_in(themes_client, themes_store, Role.VIEWER).get("/voice/themes")
    assert page.status_code == 200, page.text
    assert 'data-chart="themes"' in page.text and '<svg class="sparkline"' in page.text
    assert "<script>alert('quote')" not in page.text and "<b>Zyzzyva</b>" not in page.text
    assert "&lt;script&gt;alert(&#39;quote&#39;)&lt;/script&gt; zyzzyva broke" in page.text
    assert "&lt;b&gt;Zyzzyva&lt;/b&gt;" in page.text
    csv = themes_client.get("/voice/themes?download=themes")
    assert csv.status_code == 200 and csv.text.startswith("theme_id,label,texts,share,sentiment,terms")
    assert signed_in(themes_client, themes_store, Role.VIEWER).get("/voice/trends").status_code == 200
