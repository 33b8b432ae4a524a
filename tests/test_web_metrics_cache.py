"""The metrics API answers from the app's cache until an import, and computes once for many callers."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from conftest import until_the_server_checks_the_data
from cxloop import ImportOptions, Store, import_file
from cxloop.config import load_settings
from cxloop.metrics import summary
from cxloop.metrics.cache import MetricsCache
from cxloop.web import accounts
from cxloop.web.app import create_app
from cxloop.web.roles import Role
from cxloop.web.settings import WebSettings
from cxloop.web.storage import open_server_store

FIXTURES = Path(__file__).parent / "fixtures" / "metrics"
T0 = dt.datetime(2024, 5, 3, 9, 0)
AS_OF = "2024-05-01"


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[Store, TestClient, dict[str, str]]]:
    url = str(tmp_path / "shop.duckdb")
    store = open_server_store(url, load_settings(url))  # as `cxloop serve` opens it: thread-safe
    try:
        for entity, name in (("customers", "customers.csv"), ("order-lines", "order_lines.csv")):
            import_file(store, entity, FIXTURES / name, ImportOptions(rejects_dir=tmp_path / "rejects"))
        accounts.create_user(store, "vic@example.com", Role.VIEWER, "p" * 12, now=T0)
        token = accounts.create_token(store, "vic@example.com", Role.VIEWER, now=T0).token
        app = create_app(store, WebSettings(database_url=url), clock=lambda: T0)
        with TestClient(app, raise_server_exceptions=False) as client:
            yield store, client, {"Authorization": f"Bearer {token}"}
    finally:
        store.close()


def cache_of(client: TestClient) -> MetricsCache:
    cache: MetricsCache = client.app.state.metrics_cache  # type: ignore[attr-defined]
    return cache


def get(client: TestClient, url: str, headers: dict[str, str]) -> Any:
    response = client.get(url, headers=headers)
    assert response.status_code == 200, response.text
    return response.json()


def test_an_import_between_two_calls_changes_the_answer(
    served: tuple[Store, TestClient, dict[str, str]], tmp_path: Path
) -> None:
    store, client, viewer = served
    url = f"/api/v1/summary?as_of={AS_OF}&kpi=revenue,active_customers"
    first = get(client, url, viewer)
    assert get(client, url, viewer) == first and cache_of(client).stats.hits == 1

    sale = tmp_path / "sale.csv"
    sale.write_text(
        "order_id,line_no,customer_id,ordered_at,channel,product_id,category,quantity,unit_price,amount\n"
        "O99,1,c5,2024-04-28 12:00:00,web,A,books,1,1000,1000\n"
    )
    import_file(store, "order-lines", sale, ImportOptions(rejects_dir=tmp_path / "rejects"))
    until_the_server_checks_the_data(client)
    after = get(client, url, viewer)

    assert after[0]["value"] == first[0]["value"] + 1000
    expected = summary(store, as_of=dt.datetime(2024, 5, 1), kpi_ids=["revenue", "active_customers"])
    assert after[0]["value"] == expected.loc[0, "value"]
    assert cache_of(client).stats.computed == 4  # each answer: its frame and its JSON


def test_twenty_concurrent_identical_requests_compute_once(
    served: tuple[Store, TestClient, dict[str, str]],
) -> None:
    _, client, viewer = served
    urls = [f"/api/v1/summary?as_of={AS_OF}", "/api/v1/rfm/segments", f"/api/v1/cohorts?as_of={AS_OF}"]
    for url in urls:
        before = cache_of(client).stats.computed
        with ThreadPoolExecutor(20) as pool:
            answers = list(pool.map(lambda u: get(client, u, viewer), [url] * 20))
        assert all(a == answers[0] for a in answers), url
        computed = cache_of(client).stats.computed - before
        # the JSON and its frame (RFM segments: and the table they come from)
        assert computed == (3 if url.startswith("/api/v1/rfm") else 2), url


def test_mixed_parameters_get_their_own_answers(served: tuple[Store, TestClient, dict[str, str]]) -> None:
    _, client, viewer = served
    base = f"/api/v1/kpis/active_customers/values?as_of={AS_OF}&start=2024-01-01"
    variants = [base, f"{base}&active_days=30", f"{base}&by=segment", f"{base}&where=segment:smb", f"{base}&change=true"]
    answers = [get(client, url, viewer) for url in variants]
    assert len({repr(a) for a in answers}) == len(variants)
    assert [get(client, url, viewer) for url in variants] == answers
    assert cache_of(client).stats.computed == 2 * len(variants)  # each: its frame and its JSON


def test_the_cache_can_be_turned_off(tmp_path: Path) -> None:
    url = str(tmp_path / "off.duckdb")
    with Store.open(url) as store:
        app = create_app(store, WebSettings(database_url=url, metrics_cache_entries=0))
        assert not app.state.metrics_cache.enabled
