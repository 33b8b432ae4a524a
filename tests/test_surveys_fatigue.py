"""Who may be asked: an opt-out is honoured for good, and nobody is asked more than once per N days
across surveys — whatever sends the mail (a segment, a trigger, a reminder, a retry)."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
import sqlalchemy as sa

from cxloop import Store
from cxloop.store import schema
from cxloop.surveys import versions
from cxloop.surveys.definitions import parse_definition
from cxloop.surveys.distribution import DistributionSettings, retry_failed, send_reminders, send_survey
from cxloop.surveys.email import SmtpSender, SmtpSettings
from cxloop.surveys.fatigue import opt_out, opted_out, recently_asked, screen
from cxloop.surveys.triggers import add_trigger, send_due

T0 = dt.datetime(2026, 3, 2, 10, 0)
DAY = dt.timedelta(days=1)


def make_survey(store: Store, survey_id: str, kind: str = "nps") -> None:
    definition = parse_definition(
        {"id": survey_id, "name": survey_id, "main": {"kind": kind}, "brand": {"name": "Acme"}}
    )
    versions.create_survey(store, definition, now=T0 - 10 * DAY)
    versions.set_state(store, survey_id, "live", now=T0 - 10 * DAY)


@pytest.fixture
def shop(store: Store) -> Store:
    with store.engine.begin() as conn:
        conn.execute(
            schema.customers.insert(),
            [
                {"customer_id": f"C{i}", "name": f"Customer {i}", "email": f"c{i}@example.com",
                 "segment": "vip" if i < 3 else "new", "source": "t", "row_hash": "h"}
                for i in range(5)
            ],
        )  # fmt: skip
    make_survey(store, "nps-a")
    make_survey(store, "csat-b", "csat")
    return store


def invite(store: Store, customer: str, at: dt.datetime, survey: str = "imported") -> None:
    with store.engine.begin() as conn:
        conn.execute(
            schema.survey_invitations.insert().values(
                source="crm", invitation_id=f"{customer}-{at:%j}", survey_id=survey, customer_id=customer,
                channel="sms", sent_at=at, row_hash="h",
            )
        )  # fmt: skip


def mailed(inbox: Any) -> list[str]:
    return sorted(to for _, [to], _ in inbox.mails)


def settings(**more: Any) -> DistributionSettings:
    return DistributionSettings(base_url="https://cx.example", **more)


def smtp(server: tuple[str, int, Any]) -> SmtpSettings:
    return SmtpSettings(host=server[0], port=server[1], rate=1000, sender="s@cx.example")


def test_an_opt_out_is_kept_once_the_first_time(store: Store) -> None:
    assert opt_out(store, "C1", now=T0, via="cli") is True
    assert opt_out(store, "C1", now=T0 + DAY, via="api") is False

    with store.engine.connect() as conn:
        assert opted_out(conn, ["C1", "C2"]) == {"C1"}
        assert screen(conn, ["C1", "C2"], now=T0, days=30) == {"C1": "opted out"}


def test_fatigue_counts_any_invitation_of_any_survey_and_channel_within_the_window(store: Store) -> None:
    invite(store, "C1", T0 - 29 * DAY)
    invite(store, "C2", T0 - 31 * DAY)
    invite(store, "C3", T0 + DAY)  # not yet, as of T0

    with store.engine.connect() as conn:
        assert recently_asked(conn, ["C1", "C2", "C3"], now=T0, days=30) == {"C1": T0 - 29 * DAY}
        assert screen(conn, ["C1", "C2"], now=T0, days=30) == {
            "C1": "asked on 2026-02-01 (less than 30 days ago)"
        }
        assert screen(conn, ["C1"], now=T0, days=7) == {}
        assert screen(conn, ["C1"], now=T0, days=0) == {}


def test_an_opted_out_customer_is_never_mailed(shop: Store, smtp_server: Any) -> None:
    inbox = smtp_server[2]
    opt_out(shop, "C1", now=T0 - DAY, via="page")

    with SmtpSender(smtp(smtp_server)) as mailer:
        first = send_survey(
            shop, "nps-a", mailer=mailer, now=T0, settings=settings(fatigue_days=0), segment="vip"
        )
        # Neither by another survey, nor after the fatigue window, nor by a trigger, reminder or retry.
        again = send_survey(
            shop, "csat-b", mailer=mailer, now=T0 + 90 * DAY, settings=settings(), customer_ids=["C1"]
        )
        reminders = send_reminders(shop, mailer=mailer, now=T0 + 30 * DAY, settings=settings())

    assert first.skipped == {"C1": "opted out"} and sorted(first.sent) == ["C0", "C2"]
    assert again.sent == [] and again.skipped == {"C1": "opted out"}
    assert "C1" not in reminders.sent
    assert "c1@example.com" not in mailed(inbox)


def test_nobody_is_asked_twice_within_the_fatigue_window_across_surveys(
    shop: Store, smtp_server: Any
) -> None:
    inbox = smtp_server[2]
    invite(shop, "C4", T0 - 25 * DAY)  # an SMS survey from another tool, 25 days ago

    with SmtpSender(smtp(smtp_server)) as mailer:
        first = send_survey(shop, "nps-a", mailer=mailer, now=T0, settings=settings(), segment="new")
        second = send_survey(shop, "csat-b", mailer=mailer, now=T0 + 10 * DAY, settings=settings())
        later = send_survey(
            shop, "csat-b", mailer=mailer, now=T0 + 31 * DAY, settings=settings(), segment="new"
        )

    assert first.sent == ["C3"] and first.skipped["C4"].startswith("asked on 2026-02-05")
    assert sorted(second.sent) == ["C0", "C1", "C2", "C4"]  # C4's window ended; C3 was asked 10 days ago
    assert second.skipped == {"C3": "asked on 2026-03-02 (less than 30 days ago)"}
    assert later.sent == ["C3"]
    assert mailed(inbox).count("c3@example.com") == 2


def test_a_trigger_honours_opt_outs_and_fatigue_and_records_why(shop: Store, smtp_server: Any) -> None:
    inbox = smtp_server[2]
    trigger = add_trigger(shop, "csat-b", event="order", delay_hours=48, now=T0)
    with shop.engine.begin() as conn:
        conn.execute(
            schema.orders.insert(),
            [
                {"order_id": oid, "customer_id": cid, "ordered_at": at, "source": "t", "row_hash": "h"}
                for oid, cid, at in (
                    ("O-old", "C0", T0 - DAY),  # before the trigger existed: ignored
                    ("O1", "C0", T0 + DAY),
                    ("O2", "C1", T0 + DAY),
                    ("O3", "C2", T0 + DAY),
                )
            ],
        )
    opt_out(shop, "C1", now=T0, via="api")
    invite(shop, "C2", T0)

    with SmtpSender(smtp(smtp_server)) as mailer:
        done = send_due(shop, mailer=mailer, now=T0 + 4 * DAY, settings=settings())

    assert done["invitations"].sent == ["C0"] and mailed(inbox) == ["c0@example.com"]
    assert done["invitations"].skipped == {
        "C1": "opted out",
        "C2": "asked on 2026-03-02 (less than 30 days ago)",
    }
    with shop.engine.connect() as conn:
        keys = dict(
            conn.execute(
                sa.text("SELECT trigger_key, status FROM survey_deliveries WHERE trigger_key IS NOT NULL")
            ).all()
        )
    assert keys == {
        f"{trigger.trigger_id}:O1": "sent",
        f"{trigger.trigger_id}:O2": "skipped",
        f"{trigger.trigger_id}:O3": "skipped",
    }
    assert retry_failed(shop, mailer=None, now=T0 + 5 * DAY, settings=settings(), dry_run=True).sent == []
