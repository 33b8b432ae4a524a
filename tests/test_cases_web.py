"""The closed loop in the web app: the cases API and pages, who sees which case, the close form
(CSRF), bad input, comments shown as text, and the public opt-out page of survey mails."""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Iterator
from typing import Any

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

import conftest
from cxloop import Store
from cxloop.cases import AssignmentRule, list_cases, open_cases, save_rules
from cxloop.store import schema
from cxloop.web import accounts
from cxloop.web.app import create_app
from cxloop.web.roles import Role
from cxloop.web.sessions import SessionPolicy, start_session
from cxloop.web.settings import WebSettings

NOW = dt.datetime(2026, 3, 2, 9, 0)
HOSTILE = '<script>alert("x")</script><img src=x onerror=alert(1)>'
ESCAPED = "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;&lt;img src=x onerror=alert(1)&gt;"


@pytest.fixture(autouse=True)
def cheap_hashes(monkeypatch: pytest.MonkeyPatch) -> None:
    from argon2 import PasswordHasher

    cheap = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)
    monkeypatch.setattr(accounts, "_hasher", lambda: cheap)


@pytest.fixture
def world(duck_store: Store) -> Iterator[tuple[TestClient, Store, dict[str, Any]]]:
    store = duck_store
    people = {}
    for email, role in (
        ("boss@x.com", Role.MANAGER),
        ("amy@x.com", Role.AGENT),
        ("bob@x.com", Role.AGENT),
        ("vic@x.com", Role.VIEWER),
    ):
        people[email] = accounts.create_user(store, email, role, "p" * 12, now=NOW).id
    with store.engine.begin() as conn:
        conn.execute(
            schema.customers.insert(),
            [
                {
                    "customer_id": "C1",
                    "name": "Ana <b>Lima</b>",
                    "segment": "consumer",
                    "source": "t",
                    "row_hash": "h",
                },
                {"customer_id": "C2", "name": "Bo", "segment": "business", "source": "t", "row_hash": "h"},
            ],
        )
        conn.execute(
            schema.orders.insert().values(
                order_id="O-77",
                customer_id="C1",
                ordered_at=NOW - dt.timedelta(days=9),
                source="t",
                row_hash="h",
            )
        )
        conn.execute(
            schema.survey_responses.insert(),
            [
                {"source": "t", "response_id": rid, "question_id": "q", "survey_id": "nps-survey", "kind": "nps",
                 "scale_min": 0, "scale_max": 10, "score": score, "comment": comment, "customer_id": cid,
                 "responded_at": NOW - dt.timedelta(hours=h), "row_hash": "h"}
                for rid, cid, score, comment, h in (
                    ("r1", "C1", 2, HOSTILE, 30),
                    ("r2", "C2", 5, None, 20),
                    ("r0", "C1", 10, "Loved it", 24 * 60),
                )
            ],
        )  # fmt: skip
    save_rules(
        store,
        [
            AssignmentRule("consumers", sla_hours=4, segment="consumer", assignees=("amy@x.com",)),
            AssignmentRule("others", sla_hours=48, assignees=("bob@x.com",)),
        ],
    )
    open_cases(store, now=NOW - dt.timedelta(hours=10))
    app = create_app(store, WebSettings(database_url=store.url), clock=lambda: NOW)
    with TestClient(app, raise_server_exceptions=False) as client:
        yield client, store, people


def token(store: Store, email: str, role: Role) -> dict[str, str]:
    return conftest.bearer(store, email, role, now=NOW)


def session(client: TestClient, store: Store, user_id: str) -> str:
    started = start_session(store, user_id, now=NOW, policy=SessionPolicy())
    client.cookies.set("cxloop_session", started.token)
    return started.csrf_token


def case_of(store: Store, customer: str) -> str:
    return next(c["case_id"] for c in list_cases(store, now=NOW).items if c["customer_id"] == customer)


def test_managers_see_every_case_agents_their_own_and_viewers_none(world: Any) -> None:
    client, store, _ = world

    def ids(headers: dict[str, str], query: str = "") -> set[str]:
        response = client.get(f"/api/v1/cases{query}", headers=headers)
        assert response.status_code == 200, response.text
        return {c["customer_id"] for c in response.json()["items"]}

    boss = token(store, "boss@x.com", Role.MANAGER)
    assert ids(boss) == {"C1", "C2"}
    assert ids(boss, "?mine=true") == set()
    assert ids(token(store, "amy@x.com", Role.AGENT)) == {"C1"}
    assert ids(token(store, "bob@x.com", Role.AGENT)) == {"C2"}
    assert ids(boss, "?overdue=true") == {"C1"}  # 4 h SLA, opened 10 h ago, nobody called
    viewer = client.get("/api/v1/cases", headers=token(store, "vic@x.com", Role.VIEWER))
    assert viewer.status_code == 403


def test_one_case_with_history_and_an_unknown_or_anothers_case_is_404(world: Any) -> None:
    client, store, _ = world
    amy = token(store, "amy@x.com", Role.AGENT)
    mine = case_of(store, "C1")

    found = client.get(f"/api/v1/cases/{mine}", headers=amy).json()

    assert found["case"]["comment"] == HOSTILE and found["case"]["overdue"] is True
    assert [e["id"] for e in found["history"]] == ["r1", "O-77", "r0"]
    unknown = client.get("/api/v1/cases/K000000000000", headers=amy)
    assert unknown.status_code == 404
    assert unknown.headers["content-type"] == "application/problem+json"
    assert unknown.json()["detail"] == "no case with the id 'K000000000000'"
    assert client.get(f"/api/v1/cases/{case_of(store, 'C2')}", headers=amy).status_code == 404


def test_contact_close_and_closing_again_through_the_api(world: Any) -> None:
    client, store, _ = world
    amy = token(store, "amy@x.com", Role.AGENT)
    case_id = case_of(store, "C1")

    contacted = client.post(f"/api/v1/cases/{case_id}/contacts", json={"text": "Phoned"}, headers=amy)
    assert contacted.status_code == 201 and contacted.json()["first_contact_at"] == NOW.isoformat()
    missing = client.post(f"/api/v1/cases/{case_id}/close", json={"outcome": "x"}, headers=amy)
    assert missing.status_code == 422 and "root_cause" in missing.json()["detail"]
    blank = client.post(
        f"/api/v1/cases/{case_id}/close", json={"outcome": " ", "root_cause": "y"}, headers=amy
    )
    assert blank.status_code == 422 and blank.json()["errors"][0]["loc"] == ["body", "outcome"]
    body = {"outcome": "Refunded the shipping", "root_cause": "carrier delay"}
    closed = client.post(f"/api/v1/cases/{case_id}/close", json=body, headers=amy)
    assert closed.status_code == 200 and closed.json()["status"] == "closed"
    again = client.post(f"/api/v1/cases/{case_id}/close", json=body, headers=amy)
    assert again.status_code == 409 and again.json()["detail"] == f"case {case_id} is closed already"
    assert client.post("/api/v1/cases/K0/close", json=body, headers=amy).status_code == 404


def test_case_kpis_for_managers(world: Any) -> None:
    client, store, _ = world
    response = client.get("/api/v1/cases/kpis?days=7", headers=token(store, "boss@x.com", Role.MANAGER))

    assert response.status_code == 200
    k = response.json()
    assert (k["opened"], k["overdue_now"], k["detractors"], k["sla_known"]) == (2, 1, 2, 1)
    assert client.get("/api/v1/cases/kpis", headers=token(store, "amy@x.com", Role.AGENT)).status_code == 403


def test_the_inbox_and_the_case_page_show_comments_as_text(world: Any) -> None:
    client, store, people = world
    session(client, store, people["boss@x.com"])
    case_id = case_of(store, "C1")

    inbox = client.get("/cases?status=all")
    page = client.get(f"/cases/{case_id}")

    for html in (inbox.text, page.text):
        assert HOSTILE not in html and ESCAPED[:40] in html
    assert inbox.status_code == 200 and 'class="overdue"' in inbox.text
    assert page.status_code == 200
    assert "Ana &lt;b&gt;Lima&lt;/b&gt;" in page.text and "O-77" in page.text and "Loved it" in page.text
    overdue = client.get("/cases?overdue=true")
    assert case_id in overdue.text and case_of(store, "C2") not in overdue.text
    assert client.get("/cases/K000000000000").status_code == 404


def test_closing_on_the_page_needs_the_csrf_token_and_a_closed_case_says_so(world: Any) -> None:
    client, store, people = world
    csrf = session(client, store, people["amy@x.com"])
    case_id = case_of(store, "C1")
    form = {"outcome": "Apologised", "root_cause": "late delivery", "contact": "Phoned"}

    forged = client.post(f"/cases/{case_id}/close", data=form, follow_redirects=False)
    assert forged.status_code == 403
    empty = client.post(f"/cases/{case_id}/close", data={**form, "root_cause": "", "csrf_token": csrf})
    assert empty.status_code == 422 and "root_cause: required" in empty.text
    done = client.post(f"/cases/{case_id}/close", data={**form, "csrf_token": csrf}, follow_redirects=False)
    assert done.status_code == 303 and done.headers["location"] == f"/cases/{case_id}"
    shown = client.get(f"/cases/{case_id}").text
    assert "Apologised" in shown and "late delivery" in shown and 'id="close-form"' not in shown
    again = client.post(f"/cases/{case_id}/close", data={**form, "csrf_token": csrf})
    assert again.status_code == 409 and f"case {case_id} is closed already" in again.text
    other = client.post(f"/cases/{case_of(store, 'C2')}/close", data={**form, "csrf_token": csrf})
    assert other.status_code == 404  # another agent's case


def add_delivery(store: Store, customer: str, optout_token: str) -> None:
    from cxloop.store.schema import survey_deliveries

    with store.engine.begin() as conn:
        conn.execute(
            survey_deliveries.insert().values(
                delivery_id="D1", survey_id="nps-survey", customer_id=customer, purpose="invitation",
                channel="email", status="sent", attempts=1, created_at=NOW, sent_at=NOW,
                optout_hash=hashlib.sha256(optout_token.encode()).hexdigest(),
            )
        )  # fmt: skip


def optouts(store: Store) -> list[tuple[str, str]]:
    from cxloop.store.schema import survey_optouts

    with store.engine.connect() as conn:
        return [(r.customer_id, r.via) for r in conn.execute(sa.select(survey_optouts))]


def test_the_opt_out_link_asks_first_then_opts_out_for_good(world: Any) -> None:
    client, store, _ = world
    add_delivery(store, "C2", "opt-token-123")

    asked = client.get("/s/opt-out/opt-token-123")
    assert asked.status_code == 200 and "Stop sending me surveys" in asked.text
    assert optouts(store) == []  # a GET (a mail scanner, say) changes nothing
    done = client.post("/s/opt-out/opt-token-123", data={"List-Unsubscribe": "One-Click"})
    assert done.status_code == 200 and "You will receive no more surveys" in done.text
    assert optouts(store) == [("C2", "link")]
    assert client.post("/s/opt-out/opt-token-123").status_code == 200  # twice: still opted out, once
    assert optouts(store) == [("C2", "link")]
    forged = client.post("/s/opt-out/forged")
    assert forged.status_code == 404 and "Link not recognised" in forged.text


def test_an_opt_out_through_the_api(world: Any) -> None:
    client, store, _ = world
    amy = token(store, "amy@x.com", Role.AGENT)

    first = client.post("/api/v1/surveys/opt-outs", json={"customer_id": "C1"}, headers=amy)
    second = client.post("/api/v1/surveys/opt-outs", json={"customer_id": "C1"}, headers=amy)

    assert (first.status_code, first.json()["new"], second.json()["new"]) == (201, True, False)
    assert optouts(store) == [("C1", "api")]
    assert client.post("/api/v1/surveys/opt-outs", json={"customer_id": ""}, headers=amy).status_code == 422
