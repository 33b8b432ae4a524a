"""Customers: search (text, filters, sort, pages with a total) and one customer's figures and
timeline — the library on both stores, and the API over it (404, 422, 403; text as data)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from conftest import rows, write
from cxloop import Store
from cxloop.customers import customer_detail, search_customers
from cxloop.web import accounts
from cxloop.web.app import create_app
from cxloop.web.roles import Role
from cxloop.web.settings import WebSettings

T0 = dt.datetime(2026, 1, 5, 9, 0)
SCRIPT = "<script>alert('x')</script>"


@pytest.fixture
def shop(store: Store, load: Any, tmp_path: Path) -> Store:
    write(
        tmp_path / "customers.csv",
        "customer_id,name,email,segment,region,first_seen_at,tier\n"
        "C1,Ana Lima,ana@example.com,smb,West,2024-01-02,gold\n"
        "C2,Bo Lima,bo@shop.example,consumer,East,2024-02-03,\n"
        f'C3,"{SCRIPT}",x@example.com,consumer,West,2024-03-04,\n'
        "C4,100%_Real,real@example.com,,,,\n"
        "C5,Zed,zed@example.com,smb,East,2023-12-31,\n",
    )
    load(store, "customers", tmp_path / "customers.csv")
    write(
        tmp_path / "lines.csv",
        "order_id,customer_id,ordered_at,product_name,quantity,unit_price\n"
        "O1,C1,2024-01-02 10:00,Kettle,1,40\n"
        "O1,C1,2024-01-02 10:00,Mug,2,5\n"
        "O2,C1,2024-06-01 10:00,Mug,-1,5\n"
        "O3,C2,2024-02-03 11:00,Tea,1,3.5\n",
    )
    load(store, "order-lines", tmp_path / "lines.csv")
    write(
        tmp_path / "answers.csv",
        "response_id,customer_id,kind,score,comment,responded_at\n"
        f'R1,C1,nps,6,"{SCRIPT}",2024-03-01 09:00\n'
        "R2,C1,nps,9,better now,2024-07-01 09:00\n"
        "R3,C1,csat,5,,2024-08-01 09:00\n",
    )
    load(store, "responses", tmp_path / "answers.csv")
    write(
        tmp_path / "tickets.csv",
        "ticket_id,customer_id,opened_at,resolved_at,is_complaint,subject\n"
        "T1,C1,2024-05-01 09:00,,yes,Broken <b>lid</b>\n",
    )
    load(store, "tickets", tmp_path / "tickets.csv")
    write(
        tmp_path / "reviews.csv",
        "review_id,customer_id,rating,text,posted_at\nV1,C1,4,Good <img src=x onerror=y>,2024-09-01\n",
    )
    load(store, "reviews", tmp_path / "reviews.csv")
    return store


def ids(page: Any) -> list[str]:
    return [item["customer_id"] for item in page.items]


def test_search_matches_id_name_or_email_in_any_case(shop: Store) -> None:
    assert ids(search_customers(shop, q="lima")) == ["C1", "C2"]
    assert ids(search_customers(shop, q="SHOP.EXAMPLE")) == ["C2"]
    assert ids(search_customers(shop, q="c5")) == ["C5"]
    assert ids(search_customers(shop, q="script")) == ["C3"]
    # LIKE wildcards in the text are literal characters
    assert ids(search_customers(shop, q="0%_")) == ["C4"]
    assert ids(search_customers(shop, q="%")) == ["C4"]


def test_filters_sort_and_pages_with_a_total(shop: Store) -> None:
    assert ids(search_customers(shop, segment=["smb"])) == ["C1", "C5"]
    assert ids(search_customers(shop, segment=["smb", "consumer"], region=["East"])) == ["C2", "C5"]
    assert ids(search_customers(shop, sort="-first_seen_at")) == ["C3", "C2", "C1", "C5", "C4"]  # NULL last
    assert ids(search_customers(shop, sort="name"))[:2] == ["C4", "C3"]

    first = search_customers(shop, limit=2)
    second = search_customers(shop, limit=2, offset=first.next_offset or 0)
    last = search_customers(shop, limit=2, offset=4)
    assert (ids(first), ids(second), ids(last)) == (["C1", "C2"], ["C3", "C4"], ["C5"])
    assert first.total == second.total == last.total == 5
    assert first.next_offset == 2 and last.next_offset is None
    with pytest.raises(ValueError, match="unknown sort"):
        search_customers(shop, sort="password")


def test_search_items_carry_orders_and_net_revenue(shop: Store) -> None:
    item = search_customers(shop, q="ana", with_revenue=True).items[0]

    assert item["orders"] == 2 and item["revenue"] == pytest.approx(45.0)  # 40 + 2x5 - 5 returned
    assert item["last_order_at"] == dt.datetime(2024, 6, 1, 10)
    assert search_customers(shop, q="zed", with_revenue=True).items[0] | {"first_seen_at": None} == {
        "customer_id": "C5",
        "name": "Zed",
        "email": "zed@example.com",
        "segment": "smb",
        "region": "East",
        "country": None,
        "acquisition_channel": None,
        "first_seen_at": None,
        "orders": 0,
        "last_order_at": None,
        "revenue": 0.0,
    }
    assert "revenue" not in search_customers(shop, q="ana").items[0]


def test_detail_has_the_figures_and_one_timeline_newest_first(shop: Store) -> None:
    found = customer_detail(shop, "C1")

    assert found is not None
    assert found.customer["name"] == "Ana Lima" and found.customer["attributes"] == {"tier": "gold"}
    assert found.figures == {
        "orders": 2,
        "revenue": pytest.approx(45.0),
        "first_purchase_at": dt.datetime(2024, 1, 2, 10),
        "last_purchase_at": dt.datetime(2024, 6, 1, 10),
        "answers": 3,
        "last_nps": {"score": 9.0, "at": dt.datetime(2024, 7, 1, 9)},
        "tickets": 1,
        "open_tickets": 1,
        "complaints": 1,
        "reviews": 1,
    }
    timeline = [(e["type"], e["id"]) for e in found.timeline]
    assert timeline == [
        ("review", "V1"),
        ("answer", "R3"),
        ("answer", "R2"),
        ("order", "O2"),
        ("ticket", "T1"),
        ("answer", "R1"),
        ("order", "O1"),
    ]
    first_order = found.timeline[-1]
    assert [(x["product_name"], x["quantity"], x["amount"]) for x in first_order["lines"]] == [
        ("Kettle", 1.0, 40.0),
        ("Mug", 2.0, 10.0),
    ]
    assert found.timeline[-2]["comment"] == SCRIPT  # text as stored: escaping is the renderer's job
    assert found.more is False


def test_the_timeline_pages_back_in_time_and_filters_types(shop: Store) -> None:
    page = customer_detail(shop, "C1", limit=3)
    assert page is not None and page.more and len(page.timeline) == 3
    older = customer_detail(shop, "C1", limit=3, before=page.timeline[-1]["at"])
    assert older is not None
    assert [e["id"] for e in older.timeline] == ["O2", "T1", "R1"] and older.more

    orders = customer_detail(shop, "C1", types=["order"])
    assert orders is not None and [e["id"] for e in orders.timeline] == ["O2", "O1"]


def test_an_unknown_customer_is_none_and_one_without_history_is_empty(shop: Store) -> None:
    assert customer_detail(shop, "C404") is None
    quiet = customer_detail(shop, "C5")
    assert quiet is not None and quiet.timeline == [] and quiet.figures["last_nps"] is None


# -- the API -------------------------------------------------------------------------------------


@pytest.fixture
def api(shop: Store, tmp_path: Path) -> Iterator[tuple[TestClient, dict[str, dict[str, str]]]]:
    headers = {}
    for role in (Role.ANALYST, Role.VIEWER):
        email = f"{role.value}@example.com"
        accounts.create_user(shop, email, role, "p" * 12, now=T0)
        headers[role.value] = {
            "Authorization": f"Bearer {accounts.create_token(shop, email, role, now=T0).token}"
        }
    settings = WebSettings(database_url=shop.url, upload_dir=tmp_path / "work")
    with TestClient(create_app(shop, settings, clock=lambda: T0), raise_server_exceptions=False) as client:
        yield client, headers


def ok(response: Any) -> Any:
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/json"
    return response.json()


def problem(response: Any, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body: dict[str, Any] = response.json()
    assert body["status"] == status and "Traceback" not in response.text
    return body


def test_the_list_pages_with_total_and_a_next_link(api: tuple[TestClient, dict[str, dict[str, str]]]) -> None:
    client, who = api

    first = ok(
        client.get("/api/v1/customers?limit=2&sort=customer_id&with_revenue=true", headers=who["analyst"])
    )

    assert [i["customer_id"] for i in first["items"]] == ["C1", "C2"]
    assert (first["total"], first["limit"], first["offset"]) == (5, 2, 0)
    assert first["items"][0]["revenue"] == 45.0 and first["items"][0]["orders"] == 2
    seen = [i["customer_id"] for i in first["items"]]
    link = first["next"]
    while link:
        page = ok(client.get(link, headers=who["analyst"]))
        seen += [i["customer_id"] for i in page["items"]]
        link = page["next"]
    assert seen == ["C1", "C2", "C3", "C4", "C5"]
    found = ok(client.get("/api/v1/customers?q=lima&segment=consumer", headers=who["analyst"]))
    assert [i["customer_id"] for i in found["items"]] == ["C2"] and found["next"] is None
    assert found["items"][0]["revenue"] is None and found["items"][0]["orders"] == 1


def test_the_detail_returns_typed_events_with_text_as_data(
    api: tuple[TestClient, dict[str, dict[str, str]]],
) -> None:
    client, who = api

    body = ok(client.get("/api/v1/customers/C1", headers=who["analyst"]))

    assert body["customer"]["customer_id"] == "C1" and body["figures"]["last_nps"]["score"] == 9.0
    assert [e["type"] for e in body["timeline"]][:2] == ["review", "answer"]
    assert body["timeline"][0]["text"] == "Good <img src=x onerror=y>"
    assert any(e.get("comment") == SCRIPT for e in body["timeline"])
    assert ok(client.get("/api/v1/customers/C3", headers=who["analyst"]))["customer"]["name"] == SCRIPT
    page = ok(client.get("/api/v1/customers/C1?limit=2&type=order&type=ticket", headers=who["analyst"]))
    assert [e["id"] for e in page["timeline"]] == ["O2", "T1"] and page["more"] is True


def test_unknown_customers_bad_parameters_and_roles_are_problems(
    api: tuple[TestClient, dict[str, dict[str, str]]], shop: Store
) -> None:
    client, who = api

    missing = problem(client.get("/api/v1/customers/C404", headers=who["analyst"]), 404)
    assert missing["customer_id"] == "C404"
    assert problem(client.get("/api/v1/customers?sort=password", headers=who["analyst"]), 422)["errors"][0][
        "loc"
    ] == ["query", "sort"]
    for bad in ("limit=0", "limit=5000", "offset=-1", "limit=ten"):
        problem(client.get(f"/api/v1/customers?{bad}", headers=who["analyst"]), 422)
    problem(client.get("/api/v1/customers/C1?type=email", headers=who["analyst"]), 422)
    problem(client.get("/api/v1/customers/C1?before=soon", headers=who["analyst"]), 422)
    problem(client.get("/api/v1/customers", headers=who["viewer"]), 403)
    problem(client.get("/api/v1/customers/C1", headers=who["viewer"]), 403)
    problem(client.get("/api/v1/customers"), 401)
    assert rows(shop, "SELECT count(*) FROM customers") == [(5,)]


def test_the_schema_documents_the_routes_with_examples(
    api: tuple[TestClient, dict[str, dict[str, str]]],
) -> None:
    client, _ = api
    schema = ok(client.get("/api/v1/openapi.json"))

    listing = schema["paths"]["/api/v1/customers"]["get"]
    detail = schema["paths"]["/api/v1/customers/{customer_id}"]["get"]
    assert listing["summary"] and detail["summary"]
    assert {"401", "403", "422"} <= set(listing["responses"]) and "404" in detail["responses"]
    events = schema["components"]["schemas"]["CustomerView"]["properties"]["timeline"]["items"]
    assert events["discriminator"]["propertyName"] == "type"
    assert schema["components"]["schemas"]["CustomerItem"]["properties"]["revenue"]["examples"]


def test_an_unknown_query_parameter_is_a_422_naming_it(
    api: tuple[TestClient, dict[str, dict[str, str]]],
) -> None:
    client, who = api

    body = problem(client.get("/api/v1/customers?segmnet=smb", headers=who["analyst"]), 422)

    assert body["errors"][0]["loc"] == ["query", "segmnet"] and "segment" in body["errors"][0]["msg"]
    problem(client.get("/api/v1/customers/C1?limit=2&page=2", headers=who["analyst"]), 422)
    problem(client.get("/api/v1/exports/orders?fromat=parquet", headers=who["analyst"]), 422)
    problem(client.get("/api/v1/imports?limt=5", headers=who["analyst"]), 422)
    ok(client.get("/api/v1/customers?segment=smb&limit=1", headers=who["analyst"]))
