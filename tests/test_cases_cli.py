"""``cxloop cases``: list (open, overdue, JSON), show, contact, close — and their errors."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import pytest
from typer.testing import CliRunner

from cxloop import Store
from cxloop.cases import list_cases
from cxloop.cli.app import app as cli_app
from cxloop.store import schema

NOW = dt.datetime.now(dt.UTC).replace(tzinfo=None)
HOSTILE = "[bold red]late[/] <script>alert(1)</script>"


def cxloop(store: Store, *args: str) -> Any:
    """The command in-process (the test holds the DuckDB file open; a second process could not)."""
    return CliRunner(env={"CXLOOP_DATABASE_URL": None, "COLUMNS": "200"}).invoke(
        cli_app, ["--db", store.url, *args]
    )


@pytest.fixture
def loop(duck_store: Store) -> Store:
    with duck_store.engine.begin() as conn:
        conn.execute(
            schema.customers.insert().values(
                customer_id="C1", name="Ana", segment="x", source="t", row_hash="h"
            )
        )
        conn.execute(
            schema.survey_responses.insert(),
            [
                {"source": "t", "response_id": rid, "question_id": "q", "survey_id": "s", "kind": "nps",
                 "scale_min": 0, "scale_max": 10, "score": score, "comment": comment, "customer_id": "C1",
                 "responded_at": NOW - dt.timedelta(days=days), "row_hash": "h"}
                for rid, score, comment, days in (("r1", 3, HOSTILE, 1), ("r2", 10, None, 2), ("r3", 0, None, 5))
            ],
        )  # fmt: skip
    return duck_store


def test_open_list_show_contact_and_close(loop: Store) -> None:
    opened = cxloop(loop, "cases", "open", "--json")
    assert opened.exit_code == 0, opened.output
    ids = json.loads(opened.stdout)
    assert len(ids) == 2
    assert cxloop(loop, "cases", "open").stdout == "Opened 0 case(s).\n"

    listed = json.loads(cxloop(loop, "cases", "list", "--open", "--json").stdout)
    assert sorted(c["case_id"] for c in listed) == sorted(ids)
    assert {c["reasons"][0] for c in listed} == {"detractor"}
    r1 = next(c["case_id"] for c in listed if c["response_id"] == "r1")

    shown = cxloop(loop, "cases", "show", r1)
    assert shown.exit_code == 0, shown.output
    assert HOSTILE in shown.stdout  # shown as written, not as Rich markup
    assert json.loads(cxloop(loop, "cases", "show", r1, "--json").stdout)["case"]["comment"] == HOSTILE

    assert cxloop(loop, "cases", "contact", r1, "Phoned", "--author", "a@x.com").exit_code == 0
    closed = cxloop(loop, "cases", "close", r1, "--outcome", "Refund", "--root-cause", "carrier")
    assert closed.exit_code == 0 and closed.stdout == f"Closed {r1}.\n"
    still_open = json.loads(cxloop(loop, "cases", "list", "--open", "--json").stdout)
    assert [c["response_id"] for c in still_open] == ["r3"]


def test_closing_a_closed_case_or_an_unknown_one_is_an_error(loop: Store) -> None:
    cxloop(loop, "cases", "open")
    case_id = list_cases(loop, now=NOW).items[0]["case_id"]
    assert cxloop(loop, "cases", "close", case_id, "--outcome", "a", "--root-cause", "b").exit_code == 0

    again = cxloop(loop, "cases", "close", case_id, "--outcome", "a", "--root-cause", "b")
    unknown = cxloop(loop, "cases", "show", "K000")
    blank = cxloop(loop, "cases", "close", "K000", "--outcome", "", "--root-cause", "b")

    assert again.exit_code == 1 and f"case {case_id} is closed already" in again.stderr
    assert unknown.exit_code == 1 and "no case with the id 'K000'" in unknown.stderr
    assert blank.exit_code == 1 and "outcome: required" in blank.stderr


def test_overdue_cases_and_the_rules_file(loop: Store, tmp_path: Any) -> None:
    rules = tmp_path / "rules.toml"
    rules.write_text('[[rule]]\nname = "all"\nassignees = ["a@x.com"]\nsla_hours = 1\n')
    bad = tmp_path / "bad.toml"
    bad.write_text('[[rule]]\nname = "all"\nsla_hours = -1\n')

    assert cxloop(loop, "cases", "rules", str(rules)).exit_code == 0
    refused = cxloop(loop, "cases", "rules", str(bad))
    assert refused.exit_code == 1 and "rule 1.sla_hours: must be a whole number of hours" in refused.stderr
    cxloop(loop, "cases", "open")
    assert json.loads(cxloop(loop, "cases", "list", "--overdue", "--json").stdout) == []  # due in an hour
    table = cxloop(loop, "cases", "list")
    assert table.exit_code == 0 and "a@x.com" in table.stdout
    kpis = json.loads(cxloop(loop, "cases", "kpis", "--json").stdout)
    assert (kpis["opened"], kpis["detractors"]) == (2, 2)
