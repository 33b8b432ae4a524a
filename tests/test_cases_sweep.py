"""Cases open by themselves: the server's background sweep (cxloop.cases.sweep) opens one case per
unhappy answer — given on the answer page, sent to the API or imported — without anyone running
`cxloop cases open`; once, however often and from however many processes it runs."""

from __future__ import annotations

import datetime as dt
import re
import threading
import time
from pathlib import Path
from typing import Any

import httpx2
import pytest

from conftest import bearer, rows, write
from cxloop import Store
from cxloop.cases import case_id_for, open_cases
from cxloop.cases.sweep import CaseSweep
from cxloop.surveys import answers, links, versions
from cxloop.surveys.definitions import load_definition
from cxloop.web.roles import Role

FIXTURE = Path(__file__).parent / "fixtures" / "surveys" / "after_order.toml"
NOW = dt.datetime(2026, 3, 2, 10, 0)
DAY = dt.timedelta(days=1)


def live_survey(store: Store, now: dt.datetime) -> versions.DefinitionCache:
    versions.create_survey(store, load_definition(FIXTURE), now=now)
    versions.set_state(store, "after-order", "live", now=now)
    return versions.DefinitionCache(store)


def give(store: Store, defs: versions.DefinitionCache, customer: str, score: str, now: dt.datetime) -> str:
    """A score given on the answer page through the customer's personal link; the link's token."""
    [link] = links.create_links(store, "after-order", [(customer, None)], now=now)
    visit = answers.open_link(store, defs, link.token, now=now)
    answers.save_score(store, defs, link.token, form_token=visit.form_token, score=score, now=now)
    return link.token


def case_count(store: Store) -> int:
    return int(rows(store, "SELECT count(*) FROM cases")[0][0])


def test_the_sweep_opens_a_case_for_every_unhappy_answer_once(
    store: Store, load: Any, tmp_path: Path
) -> None:
    defs = live_survey(store, NOW - DAY)
    clock = [NOW]
    sweep = CaseSweep(store, clock=lambda: clock[0], seconds=0)

    # A detractor on the answer page.
    detractor = give(store, defs, "C1", "3", NOW)
    assert sweep.run_once() == [case_id_for("cxloop", links.link_id_of(detractor))]
    # Nothing changed since: the sweep reads the fingerprint and nothing else.
    assert sweep.run_once() == [] and sweep.runs == 1

    # A passive opens nothing... until the comment given next (edited after the score's time).
    passive = give(store, defs, "C2", "8", NOW)
    assert sweep.run_once() == [] and sweep.runs == 2
    clock[0] = NOW + dt.timedelta(hours=3)
    form = answers.open_link(store, defs, passive, now=clock[0]).form_token
    answers.save_details(
        store, defs, passive, form_token=form, comment="It arrived late", answers={}, now=clock[0]
    )
    assert sweep.run_once() == [case_id_for("cxloop", links.link_id_of(passive))]

    # An answer sent to the API, dated three days earlier.
    answers.submit_answer(
        store, defs, "after-order", score=2, customer_id="C3", answered_at=NOW - 3 * DAY, now=clock[0],
        reply_id="kiosk-7",
    )  # fmt: skip
    assert sweep.run_once() == [case_id_for("cxloop", "kiosk-7")]

    # Imported answers: a recent detractor gets a case; one from two months ago does not (as with
    # `cxloop cases open`, the sweep looks back 30 days).
    load(
        store,
        "responses",
        write(
            tmp_path / "responses.csv",
            "response_id,kind,score,comment,responded_at,customer_id\n"
            "S1,nps,1,,2026-03-01,C4\n"
            "S2,nps,0,,2026-01-01,C5\n"
            "S3,nps,10,Lovely,2026-03-01,C6\n",
        ),
        source="shop",
    )
    assert sweep.run_once() == [case_id_for("shop", "S1")]

    # However often it runs, and whatever else runs too, no answer gets a second case.
    assert sweep.run_once() == [] and open_cases(store, now=clock[0]) == []
    sweep.idle_seconds = 0  # a sweep without any change in the data finds nothing new either
    assert sweep.run_once() == []
    assert case_count(store) == 4 == sweep.opened
    assert rows(store, "SELECT count(DISTINCT response_id) FROM cases") == [(4,)]


def test_runs_at_the_same_time_open_each_case_once(store: Store) -> None:
    defs = live_survey(store, NOW - DAY)
    for i in range(12):
        give(store, defs, f"C{i}", str(i % 7), NOW)  # 12 detractors
    opened: list[str] = []
    failures: list[BaseException] = []

    def run() -> None:
        try:
            opened.extend(open_cases(store, now=NOW))
        except BaseException as exc:  # pragma: no cover - reported below
            failures.append(exc)

    threads = [threading.Thread(target=run) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    assert failures == []
    assert len(opened) == len(set(opened)) == 12 == case_count(store)


@pytest.mark.postgres
def test_one_process_sweeps_and_another_takes_over_when_it_stops(pg_schema_url: str, pg_url: str) -> None:
    first, second = Store.open(pg_schema_url), Store.open(pg_schema_url)  # two workers
    elsewhere = Store.open(pg_url)  # another store in the same database (its public schema)
    try:
        defs = live_survey(first, NOW - DAY)
        give(first, defs, "C1", "2", NOW)
        one = CaseSweep(first, clock=lambda: NOW, seconds=0)
        two = CaseSweep(second, clock=lambda: NOW, seconds=0)

        assert one.run_once() is not None and two.run_once() is None
        assert CaseSweep(elsewhere, clock=lambda: NOW, seconds=0)._lead()  # its own lock
        give(first, defs, "C2", "1", NOW)
        assert two.run_once() is None and len(one.run_once() or []) == 1
        one.stop()
        give(first, defs, "C3", "0", NOW)
        assert two.run_once() is not None and case_count(first) == 3
        two.stop()
    finally:
        for store in (first, second, elsewhere):
            store.close()


# -- the real thing: `cxloop serve`, an answer over HTTP, the case within the interval ------------


def answer_over_http(client: httpx2.Client, token: str, score: str) -> None:
    page = client.get(f"/s/{token}")
    assert page.status_code == 200, page.text
    form = re.search(r'name="form_token" value="([^"]+)"', page.text)
    assert form
    sent = client.post(f"/s/{token}", data={"form_token": form[1], "score": score}, follow_redirects=False)
    assert sent.status_code == 303, sent.text


def cases_seen(client: httpx2.Client, headers: dict[str, str]) -> list[dict[str, Any]]:
    listed = client.get("/api/v1/cases", headers=headers)
    assert listed.status_code == 200, listed.text
    items: list[dict[str, Any]] = listed.json()["items"]
    return items


@pytest.mark.parametrize("backend", ["duckdb", pytest.param("postgres", marks=pytest.mark.postgres)])
def test_a_detractor_answering_on_the_served_page_gets_a_case_without_any_command(
    backend: str, tmp_path: Path, request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> None:
    from cxloop.web import accounts
    from test_web_server import server

    url = str(tmp_path / "served.duckdb") if backend == "duckdb" else request.getfixturevalue("pg_schema_url")
    workers = ["--workers", "2"] if backend == "postgres" else []
    now = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    with Store.open(url) as store:  # DuckDB: closed before the server opens the file
        defs = live_survey(store, now - DAY)
        tokens = [
            link.token
            for link in links.create_links(store, "after-order", [("C1", None), ("C2", None)], now=now)
        ]
        del defs
        accounts.create_user(store, "boss@x.com", Role.MANAGER, "p" * 12, now=now)
        headers = bearer(store, "boss@x.com", Role.MANAGER, now=now)
    interval = 1.0
    monkeypatch.setenv("CXLOOP_CASES_CHECK_SECONDS", str(interval))

    with (
        server("--db", url, "serve", *workers, cwd=tmp_path) as (base, log),
        httpx2.Client(base_url=base) as client,
    ):
        assert cases_seen(client, headers) == []
        answer_over_http(client, tokens[0], "2")  # a detractor
        answer_over_http(client, tokens[1], "10")  # a promoter: no case
        answered = time.monotonic()
        while not (found := cases_seen(client, headers)):
            assert time.monotonic() - answered < interval + 10, log.read_text()
            time.sleep(0.1)
        took = time.monotonic() - answered
        time.sleep(3 * interval)  # more sweeps, in every worker: still one case
        again = cases_seen(client, headers)

    assert [(c["customer_id"], c["reasons"], c["status"]) for c in found] == [("C1", ["detractor"], "open")]
    assert again == found
    assert took < interval + 2  # within the sweep's interval (and a little time to start)
    assert "opened 1 follow-up case(s)" in log.read_text()  # the server's log says so
    if backend == "postgres":
        with Store.open(url) as store:
            assert rows(store, "SELECT customer_id FROM cases") == [("C1",)]


def test_the_sweep_is_off_at_zero_and_an_import_through_the_server_wakes_it(store: Store) -> None:
    from fastapi.testclient import TestClient

    from cxloop.web.app import create_app
    from cxloop.web.settings import WebSettings

    off = create_app(store, WebSettings(database_url=store.url, cases_check_seconds=0), clock=lambda: NOW)
    with TestClient(off):
        assert off.state.case_sweep._thread is None  # off: `cxloop cases open` (cron) does it then
    defs = live_survey(store, NOW - DAY)
    give(store, defs, "C1", "4", NOW)
    # An hour between sweeps: only the import's wake-up can open the case within the test.
    app = create_app(store, WebSettings(database_url=store.url, cases_check_seconds=3600), clock=lambda: NOW)
    with TestClient(app):
        assert case_count(store) == 0
        app.state.import_runner.on_imported()  # what the runner calls once an import's data is in
        deadline = time.monotonic() + 10
        while case_count(store) == 0:
            assert time.monotonic() < deadline, "no case after the import's wake-up"
            time.sleep(0.05)
    assert app.state.case_sweep.opened == 1 and app.state.case_sweep._thread is None


def test_a_busy_interval_opens_hundreds_of_cases_in_one_sweep(store: Store) -> None:
    from cxloop.cases import AssignmentRule, list_cases, save_rules
    from cxloop.store import schema

    save_rules(store, [AssignmentRule("all", sla_hours=24, assignees=("amy@x.com", "bob@x.com"))])
    with store.engine.begin() as conn:
        conn.execute(
            schema.survey_responses.insert(),
            [
                {"source": "cxloop", "response_id": f"r{i:03}", "question_id": "main", "survey_id": "s",
                 "kind": "nps", "scale_min": 0, "scale_max": 10, "score": i % 7, "comment": None,
                 "customer_id": f"C{i}", "responded_at": NOW - dt.timedelta(minutes=i), "row_hash": "h"}
                for i in range(300)
            ],
        )  # fmt: skip

    opened = CaseSweep(store, clock=lambda: NOW, seconds=0).run_once()

    assert opened is not None and len(opened) == 300 == case_count(store)
    page = list_cases(store, now=NOW, limit=1000)
    assert {(c["rule"], c["sla_hours"], c["due_at"], c["status"]) for c in page.items} == {
        ("all", 24, NOW + dt.timedelta(hours=24), "open")
    }
    assert {c["assignee"] for c in page.items} == {"amy@x.com", "bob@x.com"}
    assert sorted(c["score"] for c in page.items)[:2] == [0.0, 0.0]
    assert open_cases(store, now=NOW) == []
