"""Surveys on the web: the public answer page (no sign-in, no JavaScript, light), the API and pages."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from conftest import bearer, rows
from cxloop import Store
from cxloop.surveys import links, versions
from cxloop.surveys.definitions import load_definition
from cxloop.web import accounts
from cxloop.web.app import create_app
from cxloop.web.roles import Role
from cxloop.web.settings import WebSettings
from test_web_app import sign_in

T0 = dt.datetime(2026, 3, 2, 10, 0)
FIXTURE = Path(__file__).parent / "fixtures" / "surveys" / "after_order.toml"


@pytest.fixture
def client(duck_store: Store) -> Iterator[TestClient]:
    versions.create_survey(duck_store, load_definition(FIXTURE), now=T0)
    versions.set_state(duck_store, "after-order", "live", now=T0)
    app = create_app(duck_store, WebSettings(database_url=duck_store.url), clock=lambda: T0)
    with TestClient(app, raise_server_exceptions=False) as c:
        yield c


def link_for(store: Store, customer: str = "C1") -> str:
    return links.create_links(store, "after-order", [(customer, None)], now=T0)[0].token


def form_token(html: str) -> str:
    found = re.search(r'name="form_token" value="([^"]+)"', html)
    assert found
    return found[1]


def test_answering_takes_two_light_pages_without_javascript_then_thanks(client: TestClient) -> None:
    store: Store = client.app.state.store  # type: ignore[attr-defined]
    token = link_for(store)

    first = client.get(f"/s/{token}")
    assert first.status_code == 200 and len(first.content) < 50_000  # the whole page, its CSS inline
    assert "<script" not in first.text and "<fieldset" in first.text and "<legend>" in first.text
    assert first.text.count('type="radio" name="score"') == 11
    scored = client.post(
        f"/s/{token}", data={"form_token": form_token(first.text), "score": "3"}, follow_redirects=False
    )
    assert scored.status_code == 303 and scored.headers["location"] == f"/s/{token}/more"
    assert rows(store, "SELECT score, comment FROM survey_responses") == [
        (3, None)
    ]  # kept before the comment

    more = client.get(f"/s/{token}/more")
    assert "What went wrong?" in more.text and len(more.content) < 50_000
    done = client.post(
        f"/s/{token}/more",
        data={
            "form_token": form_token(more.text),
            "comment": "<script>alert(1)</script>",
            "q_delivery": "slow",
        },
    )
    assert done.status_code == 200 and "Thank you!" in done.text
    assert rows(store, "SELECT comment FROM survey_responses WHERE question_id = 'main'") == [
        ("<script>alert(1)</script>",)
    ]


def test_the_page_speaks_the_visitors_language(client: TestClient) -> None:
    token = link_for(client.app.state.store)  # type: ignore[attr-defined]

    assert (
        "Recommanderiez-vous Acme ?"
        in client.get(f"/s/{token}", headers={"Accept-Language": "fr-FR,fr;q=0.9"}).text
    )
    assert "How likely are you to recommend Acme?" in client.get(f"/s/{token}?lang=en").text


@pytest.mark.parametrize(
    ("change", "status", "says"),
    [
        ({"score": "11"}, 422, "choose a score from 0 to 10"),
        ({"form_token": "forged"}, 403, "the form has expired"),
    ],
)
def test_a_bad_answer_shows_the_form_again_with_the_reason(
    client: TestClient, change: dict[str, str], status: int, says: str
) -> None:
    token = link_for(client.app.state.store)  # type: ignore[attr-defined]
    data = {"form_token": form_token(client.get(f"/s/{token}").text), "score": "5"} | change

    refused = client.post(f"/s/{token}", data=data)

    assert refused.status_code == status and says in refused.text and 'role="alert"' in refused.text


def test_a_forged_expired_or_closed_link_gets_a_page_saying_why(client: TestClient) -> None:
    store: Store = client.app.state.store  # type: ignore[attr-defined]
    token = link_for(store)

    assert client.get("/s/" + "A" * 32).status_code == 404
    expired = links.create_links(store, "after-order", [("C2", None)], now=T0 - dt.timedelta(days=40))[
        0
    ].token
    assert "expired" in client.get(f"/s/{expired}").text
    versions.set_state(store, "after-order", "closed", now=T0)
    closed = client.get(f"/s/{token}")
    assert closed.status_code == 409 and "This survey is closed" in closed.text


def test_a_100_kb_comment_is_refused_with_a_clear_message(client: TestClient) -> None:
    token = link_for(client.app.state.store)  # type: ignore[attr-defined]
    form = form_token(client.get(f"/s/{token}").text)
    client.post(f"/s/{token}", data={"form_token": form, "score": "8"})

    refused = client.post(f"/s/{token}/more", data={"form_token": form, "comment": "x" * 100_000})

    assert refused.status_code == 422 and "at most 5,000 characters" in refused.text


def test_the_api_defines_surveys_makes_links_takes_answers_and_gives_results(client: TestClient) -> None:
    store: Store = client.app.state.store  # type: ignore[attr-defined]
    accounts.create_user(store, "m@example.com", Role.MANAGER, "p" * 12, now=T0)
    auth = bearer(store, "m@example.com", Role.MANAGER, now=T0)
    definition = {"id": "csat-1", "name": "Support", "main": {"kind": "csat", "points": 5}}

    assert client.post("/api/v1/surveys", json=definition, headers=auth).status_code == 201
    bad = client.post(
        "/api/v1/surveys", json={**definition, "id": "x", "main": {"kind": "csat", "points": 4}}, headers=auth
    )
    assert bad.status_code == 422 and bad.json()["field"] == "main"
    assert (
        client.post("/api/v1/surveys/csat-1/state", json={"state": "live"}, headers=auth).json()["state"]
        == "live"
    )
    edited = client.put(
        "/api/v1/surveys/csat-1", json={**definition, "name": "Support v2"}, headers=auth
    ).json()
    assert edited["version"] == 2
    made = client.post("/api/v1/surveys/csat-1/links?format=csv", json={"customer_ids": ["C7"]}, headers=auth)
    assert made.status_code == 200 and made.text.startswith(
        "customer_id,email,url,expires_at\nC7,,http://testserver/s/"
    )
    answer = {"score": 5, "comment": "<b>fine</b>", "customer_id": "C7", "reply_id": "k1"}
    assert client.post("/api/v1/surveys/csat-1/answers", json=answer, headers=auth).status_code == 201
    off = client.post("/api/v1/surveys/csat-1/answers", json={**answer, "score": 6}, headers=auth)
    assert off.status_code == 422 and off.json()["field"] == "score"

    got = client.get("/api/v1/surveys/csat-1/results?grain=day", headers=auth).json()
    assert got["periods"] == [{"start": "2026-03-02", "answers": 1, "value": 100.0}]
    assert got["funnel"] == [
        {"group": "csat-1", "sent": 1, "opened": 0, "started": 0, "completed": 0, "response_rate": 0.0}
    ]
    assert client.get("/api/v1/surveys/csat-1/comments", headers=auth).json()[0]["comment"] == "<b>fine</b>"


def test_comments_are_escaped_on_the_results_page(client: TestClient) -> None:
    store: Store = client.app.state.store  # type: ignore[attr-defined]
    accounts.create_user(store, "a@example.com", Role.ANALYST, "p" * 12, now=T0)
    token = link_for(store)
    form = form_token(client.get(f"/s/{token}").text)
    client.post(f"/s/{token}", data={"form_token": form, "score": "2"})
    client.post(f"/s/{token}/more", data={"form_token": form, "comment": "<script>alert('x')</script>"})
    sign_in(client, "a@example.com", "p" * 12)

    page = client.get("/surveys/after-order")

    assert page.status_code == 200
    assert "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;" in page.text and "<script>alert" not in page.text


def test_the_builder_previews_the_real_answer_page_then_saves_a_new_version(client: TestClient) -> None:
    store: Store = client.app.state.store  # type: ignore[attr-defined]
    accounts.create_user(store, "m@example.com", Role.MANAGER, "p" * 12, now=T0)
    sign_in(client, "m@example.com", "p" * 12)
    builder = client.get("/surveys/new")
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', builder.text)
    assert builder.status_code == 200 and csrf and "after-order" in builder.text
    text = 'id = "support"\nname = "Support"\n[main]\nkind = "csat"\npoints = 3\n'

    preview = client.post(
        "/surveys/new", data={"csrf_token": csrf[1], "definition": text, "action": "preview"}
    )
    assert "Preview: answers given here are not saved." in preview.text and "Satisfied" in preview.text
    bad = client.post("/surveys/new", data={"csrf_token": csrf[1], "definition": text.replace("3", "4")})
    assert bad.status_code == 422 and "3 or 5 or 7 points" in bad.text
    saved = client.post(
        "/surveys/new", data={"csrf_token": csrf[1], "definition": text}, follow_redirects=False
    )
    assert saved.headers["location"] == "/surveys/support"
    edited = client.post(
        "/surveys/support/edit", data={"csrf_token": csrf[1], "definition": text.replace("Support", "Help")}
    )
    assert edited.status_code == 200 and "version 2" in edited.text
    assert (
        client.post("/surveys/support/state", data={"csrf_token": csrf[1], "state": "live"}).status_code
        == 200
    )
    got = client.post("/surveys/after-order/links", data={"csrf_token": csrf[1], "segment": ""})
    assert got.headers["content-type"].startswith("text/csv") and got.text.startswith("customer_id,email,url")
    public = client.post("/surveys/after-order/links", data={"csrf_token": csrf[1], "public": "true"})
    assert "Copy it now" in public.text and "/s/" in public.text
    assert "Help" in client.get("/surveys").text


def test_a_browser_answering_a_public_link_twice_edits_its_own_answer(client: TestClient) -> None:
    store: Store = client.app.state.store  # type: ignore[attr-defined]
    public = links.create_public_link(store, "after-order", now=T0).token
    form = form_token(client.get(f"/s/{public}").text)

    client.post(f"/s/{public}", data={"form_token": form, "score": "4"})
    again = client.get(f"/s/{public}")
    assert 'value="4" checked' in again.text  # its own answer, to change
    client.post(f"/s/{public}", data={"form_token": form, "score": "10"})
    assert rows(store, "SELECT score FROM survey_responses") == [(10,)]

    client.cookies.clear()  # another browser (same address): a second answer
    client.post(f"/s/{public}", data={"form_token": form, "score": "6"})
    assert rows(store, "SELECT count(*) FROM survey_replies") == [(2,)]
