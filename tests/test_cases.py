"""The closed loop: unhappy answers open one case each, assigned by rule with an SLA; agents record
contacts and close them; breaches show; the case KPIs count what happened."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
import sqlalchemy as sa

from cxloop import Store
from cxloop.cases import (
    AssignmentRule,
    CaseClosed,
    CaseError,
    UnknownCase,
    case_kpis,
    close_case,
    get_case,
    keyword_judge,
    list_cases,
    open_cases,
    record_contact,
    rules_from_toml,
    save_rules,
)
from cxloop.store import schema

NOW = dt.datetime(2026, 3, 2, 9, 0)
DAY = dt.timedelta(days=1)


def add_customers(store: Store, *rows: tuple[str, str, str]) -> None:
    with store.engine.begin() as conn:
        conn.execute(
            schema.customers.insert(),
            [
                {
                    "customer_id": cid,
                    "segment": seg,
                    "region": reg,
                    "source": "t",
                    "row_hash": "h",
                    "name": cid,
                }
                for cid, seg, reg in rows
            ],
        )


def answer(
    store: Store,
    rid: str,
    customer: str | None,
    kind: str,
    score: float | None,
    *,
    at: dt.datetime = NOW - DAY,
    comment: str | None = None,
    scale: tuple[int, int] | None = None,
    question: str = "q1",
) -> None:
    low, high = scale or {"nps": (0, 10), "csat": (1, 5), "ces": (1, 7)}.get(kind, (1, 5))
    with store.engine.begin() as conn:
        conn.execute(
            schema.survey_responses.insert().values(
                source="t", response_id=rid, question_id=question, survey_id=f"{kind}-survey", kind=kind,
                scale_min=low, scale_max=high, score=score, comment=comment, customer_id=customer,
                responded_at=at, row_hash="h",
            )
        )  # fmt: skip


@pytest.fixture
def loop(store: Store) -> Store:
    add_customers(store, ("C1", "consumer", "West"), ("C2", "business", "East"), ("C3", "consumer", "East"))
    return store


def test_detractors_low_csat_and_negative_comments_open_one_case_per_response(loop: Store) -> None:
    answer(loop, "r-detractor", "C1", "nps", 6)
    answer(loop, "r-passive", "C1", "nps", 7)
    answer(loop, "r-promoter", "C2", "nps", 10, comment="Great, thanks")
    answer(loop, "r-csat-low", "C2", "csat", 2)
    answer(loop, "r-csat-ok", "C2", "csat", 3)
    answer(loop, "r-csat3-low", "C3", "csat", 1, scale=(1, 3))
    answer(loop, "r-csat3-mid", "C3", "csat", 2, scale=(1, 3))
    answer(loop, "r-comment", "C3", "ces", 5, comment="My parcel arrived DAMAGED and late.")
    # Two question rows of one response: one case, both reasons.
    answer(loop, "r-both", "C1", "nps", 2, question="score")
    answer(loop, "r-both", "C1", "custom", None, question="why", comment="Refund never came")

    opened = open_cases(loop, now=NOW)

    items = {c["response_id"]: c for c in list_cases(loop, now=NOW).items}
    assert len(opened) == 5 == len(items)
    assert {k: v["reasons"] for k, v in items.items()} == {
        "r-detractor": ["detractor"],
        "r-csat-low": ["low_csat"],
        "r-csat3-low": ["low_csat"],
        "r-comment": ["negative_comment"],
        "r-both": ["detractor", "negative_comment"],
    }
    assert items["r-both"]["comment"] == "Refund never came"
    assert open_cases(loop, now=NOW + DAY) == []  # idempotent


def test_answers_older_than_the_window_or_in_the_future_are_left_alone(loop: Store) -> None:
    answer(loop, "old", "C1", "nps", 0, at=NOW - 40 * DAY)
    answer(loop, "future", "C1", "nps", 0, at=NOW + DAY)

    assert open_cases(loop, now=NOW) == []
    assert len(open_cases(loop, now=NOW, since=NOW - 60 * DAY)) == 1


def test_the_comment_rule_is_a_hook() -> None:
    assert keyword_judge(["It broke after a day", "Lovely", "Not worth the money", "latest model"]) == [
        True,
        False,
        True,
        False,
    ]


def test_a_custom_comment_judge_replaces_the_keywords(loop: Store) -> None:
    answer(loop, "r1", "C1", "ces", 6, comment="meh")
    answer(loop, "r2", "C1", "ces", 6, comment="late!")

    opened = open_cases(loop, now=NOW, judge=lambda texts: [t == "meh" for t in texts])

    assert [c["response_id"] for c in list_cases(loop, now=NOW).items] == ["r1"]
    assert len(opened) == 1


def test_rules_assign_by_segment_and_region_round_robin_with_their_sla(loop: Store) -> None:
    save_rules(
        loop,
        [
            AssignmentRule("business", sla_hours=4, segment="business", assignees=("boss@x.com",)),
            AssignmentRule("east", sla_hours=24, region="East", team="care"),
            AssignmentRule("rest", sla_hours=48, assignees=("a@x.com", "b@x.com")),
        ],
    )
    with loop.engine.begin() as conn:
        conn.execute(
            schema.employees.insert(),
            [
                {"employee_id": "E1", "email": "Zed@x.com", "team": "care", "source": "t", "row_hash": "h"},
                {"employee_id": "E2", "email": "amy@x.com", "team": "care", "source": "t", "row_hash": "h"},
                {
                    "employee_id": "E3",
                    "email": "other@x.com",
                    "team": "sales",
                    "source": "t",
                    "row_hash": "h",
                },
            ],
        )
    for i in range(3):
        answer(loop, f"w{i}", "C1", "nps", 0, at=NOW - DAY + dt.timedelta(minutes=i))  # consumer West
        answer(loop, f"e{i}", "C3", "nps", 0, at=NOW - DAY + dt.timedelta(minutes=i))  # consumer East
    answer(loop, "b0", "C2", "nps", 0)
    answer(loop, "anon", None, "nps", 0)

    open_cases(loop, now=NOW)
    answer(loop, "w3", "C1", "nps", 0, at=NOW)
    open_cases(loop, now=NOW + dt.timedelta(hours=1))  # the round robin carries on across runs

    got = {
        c["response_id"]: (c["rule"], c["assignee"], c["sla_hours"]) for c in list_cases(loop, now=NOW).items
    }
    assert got == {
        "b0": ("business", "boss@x.com", 4),
        "e0": ("east", "amy@x.com", 24),
        "e1": ("east", "zed@x.com", 24),
        "e2": ("east", "amy@x.com", 24),
        "anon": ("rest", "a@x.com", 48),  # answered first
        "w0": ("rest", "b@x.com", 48),
        "w1": ("rest", "a@x.com", 48),
        "w2": ("rest", "b@x.com", 48),
        "w3": ("rest", "a@x.com", 48),
    }
    due = {c["response_id"]: c["due_at"] for c in list_cases(loop, now=NOW).items}
    assert due["b0"] == NOW + dt.timedelta(hours=4)


def test_without_rules_agents_share_the_cases_within_48_hours(loop: Store) -> None:
    for email, role in (("b@x.com", "agent"), ("a@x.com", "agent"), ("m@x.com", "manager")):
        with loop.engine.begin() as conn:
            conn.execute(
                schema.users.insert().values(
                    id=email, email=email, password_hash="-", role=role, active=True, created_at=NOW
                )
            )
    answer(loop, "r1", "C1", "nps", 1, at=NOW - 2 * DAY)
    answer(loop, "r2", "C1", "nps", 1)

    open_cases(loop, now=NOW)

    items = list_cases(loop, now=NOW).items
    assert {c["response_id"]: (c["assignee"], c["rule"], c["due_at"]) for c in items} == {
        "r1": ("a@x.com", "default", NOW + 2 * DAY),
        "r2": ("b@x.com", "default", NOW + 2 * DAY),
    }


@pytest.mark.parametrize(
    ("toml", "message"),
    [
        ('[[rule]]\nname = "x"\nsla_hours = 0', "rule 1.sla_hours: must be a whole number of hours"),
        ("[[rule]]\nsla_hours = 5", "rule 1.name: a rule needs a name"),
        ('[[rule]]\nname = "x"\nassignees = ["nobody"]', "rule 1.assignees: must be a list of email"),
        ('[[rule]]\nname = "x"\ncolour = "red"', "rule 1: unknown field(s) colour"),
        ("rule = [", "rules file:"),
    ],
)
def test_bad_rules_are_refused_naming_the_field(toml: str, message: str) -> None:
    with pytest.raises(CaseError, match=message.replace("(", r"\(").replace(")", r"\)")):
        rules_from_toml(toml)


def test_breaches_show_as_overdue_and_in_the_filter(loop: Store) -> None:
    save_rules(loop, [AssignmentRule("fast", sla_hours=2, assignees=("a@x.com",))])
    answer(loop, "r1", "C1", "nps", 3)
    answer(loop, "r2", "C2", "nps", 3)
    [first, second] = open_cases(loop, now=NOW)
    record_contact(
        loop, first, text="Called, left a message", author="a@x.com", now=NOW + dt.timedelta(hours=1)
    )

    later = NOW + dt.timedelta(hours=3)
    overdue = list_cases(loop, now=later, overdue=True).items
    assert [c["case_id"] for c in overdue] == [second]
    flags = {c["case_id"]: (c["overdue"], c["breached"]) for c in list_cases(loop, now=later).items}
    assert flags == {first: (False, False), second: (True, True)}
    assert list_cases(loop, now=NOW, overdue=True).items == []


def test_closing_records_outcome_and_root_cause_and_a_closed_case_stays_closed(loop: Store) -> None:
    answer(loop, "r1", "C1", "nps", 3, comment="late again")
    [case_id] = open_cases(loop, now=NOW)
    sent: list[dict[str, Any]] = []

    def resurvey(case: dict[str, Any]) -> str:
        sent.append(case)
        return "D1"

    closed = close_case(
        loop, case_id, outcome="refunded shipping", root_cause="carrier delay", author="a@x.com",
        now=NOW + DAY, contact="phoned the customer", resurvey=resurvey,
    )  # fmt: skip

    assert closed["status"] == "closed" and closed["resurvey_delivery_id"] == "D1"
    assert [c["case_id"] for c in sent] == [case_id]
    view = get_case(loop, case_id, now=NOW + DAY)
    assert (view.case["outcome"], view.case["root_cause"], view.case["first_contact_at"]) == (
        "refunded shipping",
        "carrier delay",
        NOW + DAY,
    )
    assert [n["kind"] for n in view.notes] == ["contact", "closed"]
    with pytest.raises(CaseClosed, match=f"case {case_id} is closed already"):
        close_case(loop, case_id, outcome="x", root_cause="y", author=None, now=NOW + 2 * DAY)
    with pytest.raises(CaseClosed):
        record_contact(loop, case_id, text="again", author=None, now=NOW + 2 * DAY)
    assert list_cases(loop, now=NOW, status="open").items == []


def test_unknown_cases_and_missing_fields_are_errors_naming_them(loop: Store) -> None:
    answer(loop, "r1", "C1", "nps", 3)
    [case_id] = open_cases(loop, now=NOW)

    with pytest.raises(UnknownCase, match="no case with the id 'K000'"):
        get_case(loop, "K000", now=NOW)
    with pytest.raises(UnknownCase):
        close_case(loop, "K000", outcome="a", root_cause="b", author=None, now=NOW)
    with pytest.raises(CaseError, match="outcome: required") as err:
        close_case(loop, case_id, outcome="  ", root_cause="b", author=None, now=NOW)
    assert err.value.field == "outcome"
    with pytest.raises(CaseError, match="root_cause: at most 4000 characters"):
        close_case(loop, case_id, outcome="a", root_cause="b" * 4001, author=None, now=NOW)
    with pytest.raises(CaseError, match="status: must be one of open, closed"):
        list_cases(loop, now=NOW, status="pending")


def test_a_case_shows_the_customers_history(loop: Store) -> None:
    with loop.engine.begin() as conn:
        conn.execute(
            schema.orders.insert().values(
                order_id="O1", customer_id="C1", ordered_at=NOW - 9 * DAY, source="t", row_hash="h"
            )
        )
    answer(loop, "before", "C1", "nps", 9, at=NOW - 90 * DAY)
    answer(loop, "r1", "C1", "nps", 2, comment="<script>alert(1)</script>")
    [case_id] = open_cases(loop, now=NOW)

    view = get_case(loop, case_id, now=NOW)

    assert view.history is not None
    assert [(e["type"], e["id"]) for e in view.history.timeline] == [
        ("answer", "r1"),
        ("order", "O1"),
        ("answer", "before"),
    ]
    assert view.case["comment"] == "<script>alert(1)</script>"  # as written: shells escape it


def test_case_kpis_time_to_follow_up_within_sla_and_detractors_recovered(loop: Store) -> None:
    save_rules(loop, [AssignmentRule("all", sla_hours=10, assignees=("a@x.com",))])
    answer(loop, "d1", "C1", "nps", 2)
    answer(loop, "d2", "C2", "nps", 4)
    answer(loop, "d3", "C3", "nps", 5)
    answer(loop, "c1", "C3", "csat", 1)
    ids = dict(zip(["d1", "d2", "d3", "c1"], open_cases(loop, now=NOW), strict=True))
    record_contact(loop, ids["d1"], text="called", author=None, now=NOW + dt.timedelta(hours=2))
    record_contact(loop, ids["d2"], text="mailed", author=None, now=NOW + dt.timedelta(hours=12))
    close_case(loop, ids["d1"], outcome="fixed", root_cause="bug", author=None, now=NOW + DAY)
    answer(loop, "resurvey", "C1", "nps", 9, at=NOW + 2 * DAY)  # C1 came back
    answer(loop, "meh", "C2", "nps", 8, at=NOW + 2 * DAY)

    k = case_kpis(loop, start=NOW - DAY, end=NOW + DAY, now=NOW + 3 * DAY)

    assert (k.opened, k.closed, k.open_now, k.overdue_now) == (4, 1, 3, 2)
    assert (k.followed_up, k.median_hours_to_follow_up, k.mean_hours_to_follow_up) == (2, 7.0, 7.0)
    assert (k.within_sla, k.sla_known, k.within_sla_rate) == (1, 4, 0.25)
    assert (k.detractors_recovered, k.detractors, k.recovered_rate) == (1, 3, pytest.approx(1 / 3))
    assert case_kpis(loop, start=NOW - DAY, end=NOW + DAY, now=NOW).sla_known == 0  # none due yet


def test_the_case_id_is_the_responses_own() -> None:
    from cxloop.cases import case_id_for

    assert case_id_for("t", "r1") == case_id_for("t", "r1") != case_id_for("t", "r2")
    assert sa  # the tests speak SQLAlchemy for their set-up
