"""Subscriptions and survey invitations import like every other entity, with their own rules."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from conftest import rows, snapshot, write
from cxloop import Store


def test_subscriptions_load_and_reimport_changes_nothing(store: Store, load: Any, tmp_path: Path) -> None:
    path = write(
        tmp_path / "subs.csv",
        "subscription_id,customer_id,plan,mrr,started_at,ended_at\n"
        "S1,C1,basic,9.00,2024-01-05,\n"
        "S2,C2,pro,49.50,2024-02-01,2024-06-01T12:00:00Z\n",
    )

    first = load(store, "subscriptions", path)
    again = load(store, "subscriptions", path)

    assert (first.loaded, first.rejected, again.unchanged) == (2, 0, 2)
    stored = rows(store, "SELECT subscription_id, plan, mrr, ended_at FROM subscriptions ORDER BY 1")
    assert [(r[0], r[1], float(r[2]), r[3] is None) for r in stored] == [
        ("S1", "basic", 9.0, True),
        ("S2", "pro", 49.5, False),
    ]


def test_a_subscription_ending_before_it_started_is_rejected_with_its_line(
    store: Store, load: Any, tmp_path: Path
) -> None:
    path = write(
        tmp_path / "subs.csv",
        "subscription_id,customer_id,mrr,started_at,ended_at\n"
        "S1,C1,9,2024-05-01,2024-04-01\n"
        "S2,C1,-3,2024-05-01,\n",
    )

    result = load(store, "subscriptions", path)

    assert result.rejected == 2 and result.loaded == 0
    reasons = {(r["line"], r["field"], r["reason"]) for r in result.reject_sample}
    assert (2, "ended_at", "the subscription ended before it started") in reasons
    assert (3, "mrr", "below the minimum 0") in reasons
    assert snapshot(store)["subscriptions"] == []


def test_invitations_need_a_survey_a_customer_and_a_time(store: Store, load: Any, tmp_path: Path) -> None:
    path = write(
        tmp_path / "invitations.csv",
        "invitation_id,survey_id,customer_id,channel,sent_at\n"
        "I1,nps,C1,email,2024-01-05 10:00\n"
        "I2,,C2,email,2024-01-05 10:00\n",
    )

    result = load(store, "invitations", path)

    assert (result.loaded, result.rejected) == (1, 1)
    assert result.reject_sample[0]["field"] == "survey_id"
    assert rows(store, "SELECT invitation_id FROM survey_invitations") == [("I1",)]
