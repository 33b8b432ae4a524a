"""Survey mail against a real SMTP server (aiosmtpd, started by the tests): what a customer
receives, what a refused recipient leaves behind, the pace, reminders and the one retry."""

from __future__ import annotations

import datetime as dt
import email
import email.policy
import re
from email.message import EmailMessage
from typing import Any

import pytest
import sqlalchemy as sa

from cxloop import Store
from cxloop.store import schema
from cxloop.surveys import answers, versions
from cxloop.surveys.definitions import parse_definition
from cxloop.surveys.distribution import (
    DistributionSettings,
    retry_failed,
    send_reminders,
    send_resurvey,
    send_survey,
)
from cxloop.surveys.email import (
    DEFAULT_TEMPLATE,
    DeliveryError,
    EmailTemplate,
    SmtpSender,
    SmtpSettings,
    Throttle,
    build_message,
)
from cxloop.surveys.triggers import add_trigger, embed_snippet, send_due


def parse(raw: bytes) -> EmailMessage:
    message = email.message_from_bytes(raw, policy=email.policy.default)
    assert isinstance(message, EmailMessage)
    return message


def parts(message: EmailMessage) -> tuple[str, str]:
    text = message.get_body(("plain",))
    markup = message.get_body(("html",))
    assert text is not None and markup is not None
    return text.get_content(), markup.get_content()


def smtp(server: tuple[str, int, Any], **more: Any) -> SmtpSettings:
    host, port, _ = server
    return SmtpSettings(host=host, port=port, sender="surveys@shop.example", rate=1000, **more)


def invitation(to: str, name: str | None = "Ana", link: str = "https://shop.example/s/TOKEN") -> EmailMessage:
    return build_message(
        DEFAULT_TEMPLATE, to=to, name=name, survey="Delivery survey", brand="Northwind", link=link,
        opt_out_link="https://shop.example/s/opt-out/OPT", sender="surveys@shop.example",
    )  # fmt: skip


def test_the_invitation_names_the_customer_and_carries_their_link_and_the_opt_out() -> None:
    message = invitation("ana@example.com")

    text, markup = parts(message)
    assert message["Subject"] == "Northwind would like your opinion"
    assert message["To"] == "ana@example.com"
    assert message["From"] == "Northwind <surveys@shop.example>"
    assert message["List-Unsubscribe"] == "<https://shop.example/s/opt-out/OPT>"
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert "Hello Ana," in text and "https://shop.example/s/TOKEN" in text
    assert "https://shop.example/s/opt-out/OPT" in text
    assert '<a href="https://shop.example/s/TOKEN">https://shop.example/s/TOKEN</a>' in markup
    assert '<a href="https://shop.example/s/opt-out/OPT">opt out</a>' in markup


def test_names_are_escaped_in_html_and_never_break_a_header() -> None:
    message = build_message(
        EmailTemplate(subject="Hi $name", body="Dear $name,\n$link\n$opt_out_link"),
        to="x@example.com", name='<script>alert("x")</script>\r\nBcc: all@example.com', survey="S",
        brand="B&B", link='https://x/s/a"b', opt_out_link="https://x/o", sender="s@x",
    )  # fmt: skip

    _, markup = parts(message)
    assert "<script>" not in markup and "&lt;script&gt;" in markup
    assert 'href="https://x/s/a&quot;b"' in markup
    assert message["Bcc"] is None
    assert "\n" not in message["Subject"] and message["Subject"].startswith("Hi <script>")
    assert message["From"].startswith('"B&B"') or message["From"].startswith("B&B")


@pytest.mark.parametrize(
    ("subject", "body", "error"),
    [
        ("Hi", "no link here $opt_out_link", r"body: must contain \$link"),
        ("Hi", "$link only", r"body: must contain \$opt_out_link"),
        ("Hi $whom", "$link $opt_out_link", r"subject: unknown placeholder\(s\) \$whom"),
        ("Costs 5 $", "$link $opt_out_link", r"subject: a lone \$"),
    ],
)
def test_a_template_without_the_link_or_the_opt_out_is_refused(subject: str, body: str, error: str) -> None:
    with pytest.raises(ValueError, match=error):
        EmailTemplate(subject, body).check()


def test_mails_reach_a_real_smtp_server(smtp_server: tuple[str, int, Any]) -> None:
    _, _, inbox = smtp_server
    with SmtpSender(smtp(smtp_server)) as sender:
        sender.send(invitation("ana@example.com"))
        sender.send(invitation("bo@example.com", name="Bo", link="https://shop.example/s/OTHER"))

    assert [(frm, to) for frm, to, _ in inbox.mails] == [
        ("surveys@shop.example", ["ana@example.com"]),
        ("surveys@shop.example", ["bo@example.com"]),
    ]
    text, _ = parts(parse(inbox.mails[1][2]))
    assert "Hello Bo," in text and "https://shop.example/s/OTHER" in text


def test_a_refused_recipient_is_a_delivery_error_and_the_next_mail_still_goes(
    smtp_server: tuple[str, int, Any],
) -> None:
    _, _, inbox = smtp_server
    with SmtpSender(smtp(smtp_server)) as sender:
        with pytest.raises(DeliveryError, match=r"recipient refused: 550 5\.1\.1 mailbox unavailable"):
            sender.send(invitation("refused@example.com"))
        sender.send(invitation("ana@example.com"))

    assert [to for _, to, _ in inbox.mails] == [["ana@example.com"]]


def test_an_unreachable_server_fails_every_mail_with_the_reason() -> None:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # nothing listens here once closed
    with SmtpSender(SmtpSettings(host="127.0.0.1", port=port, timeout=2)) as sender:
        for to in ("a@example.com", "b@example.com"):
            with pytest.raises(DeliveryError, match=f"cannot reach the SMTP server 127.0.0.1:{port}"):
                sender.send(invitation(to))


class Clock:
    """A clock that moves only when slept on: the pace is checked by order, never by timing."""

    def __init__(self) -> None:
        self.now = 100.0
        self.sends: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        assert seconds > 0
        self.now += seconds


def test_the_throttle_spaces_mails_at_the_configured_rate(smtp_server: tuple[str, int, Any]) -> None:
    _, _, inbox = smtp_server
    clock = Clock()
    throttle = Throttle(4, clock=clock, sleep=clock.sleep)  # 4 per second: one every 0.25 s

    class Recording(SmtpSender):
        def send(self, message: EmailMessage) -> None:
            super().send(message)
            clock.sends.append(clock.now)

    with Recording(smtp(smtp_server), throttle=throttle) as sender:
        for i in range(6):
            sender.send(invitation(f"c{i}@example.com"))
        clock.now += 10  # a pause longer than the interval: the next one goes at once
        sender.send(invitation("late@example.com"))

    assert len(inbox.mails) == 7
    assert [round(t - 100, 2) for t in clock.sends] == [0, 0.25, 0.5, 0.75, 1.0, 1.25, 11.25]
    order = [to for _, [to], _ in inbox.mails]
    assert order == [f"c{i}@example.com" for i in range(6)] + ["late@example.com"]


def test_the_smtp_settings_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CXLOOP_SMTP_HOST", "mail.example.com")
    monkeypatch.setenv("CXLOOP_SMTP_PORT", "587")
    monkeypatch.setenv("CXLOOP_SMTP_TLS", "starttls")
    monkeypatch.setenv("CXLOOP_SMTP_USER", "bot")
    monkeypatch.setenv("CXLOOP_SMTP_PASSWORD", "s3cret")
    monkeypatch.setenv("CXLOOP_SMTP_RATE", "2.5")

    s = SmtpSettings()

    assert (s.host, s.port, s.tls, s.user, s.rate) == ("mail.example.com", 587, "starttls", "bot", 2.5)
    assert s.password is not None and "s3cret" not in repr(s)


# -- the distribution: invitations, failures, the retry, the reminder --------------------------

T0 = dt.datetime(2026, 3, 2, 10, 0)
DAY = dt.timedelta(days=1)
SETTINGS = DistributionSettings(base_url="https://cx.example/", reminder_days=3, retry_minutes=60)


@pytest.fixture
def shop(store: Store) -> Store:
    return fill(store)


@pytest.fixture
def duck_shop(duck_store: Store) -> Store:
    return fill(duck_store)


def fill(store: Store) -> Store:
    with store.engine.begin() as conn:
        conn.execute(
            schema.customers.insert(),
            [
                {
                    "customer_id": cid,
                    "name": name,
                    "email": mail,
                    "segment": "vip",
                    "source": "t",
                    "row_hash": "h",
                }
                for cid, name, mail in (
                    ("C1", "Ana <b>Lima</b>", "ana@example.com"),
                    ("C2", "Bo", "refused@example.com"),
                    ("C3", "Cy", None),
                    ("C4", "Di", "di@example.com"),
                )
            ],
        )
    definition = parse_definition(
        {"id": "nps-q1", "name": "Quarterly NPS", "main": {"kind": "nps"}, "brand": {"name": "Acme"}}
    )
    versions.create_survey(store, definition, now=T0 - DAY)
    versions.set_state(store, "nps-q1", "live", now=T0 - DAY)
    return store


def deliveries(store: Store) -> dict[str, tuple[str, str, int, str | None]]:
    with store.engine.connect() as conn:
        found = conn.execute(
            sa.text(
                "SELECT customer_id, purpose, status, attempts, reason FROM survey_deliveries ORDER BY created_at"
            )
        ).all()
    return {f"{r.customer_id}:{r.purpose}": (r.status, r.attempts, r.reason) for r in found}  # type: ignore[misc]


def invitations(store: Store) -> list[tuple[str, str, dt.datetime]]:
    with store.engine.connect() as conn:
        query = sa.select(schema.survey_invitations.c["customer_id", "channel", "sent_at"]).order_by(
            "customer_id"
        )
        return [tuple(r) for r in conn.execute(query)]  # type: ignore[misc]


def token_in(raw: bytes) -> str:
    text, _ = parts(parse(raw))
    found = re.search(r"https://cx\.example/s/([A-Za-z0-9_-]+)", text)
    assert found is not None
    return found.group(1)


def test_a_segment_is_invited_each_with_their_own_working_link(shop: Store, smtp_server: Any) -> None:
    _, _, inbox = smtp_server
    with SmtpSender(smtp(smtp_server)) as mailer:
        report = send_survey(shop, "nps-q1", mailer=mailer, now=T0, settings=SETTINGS, segment="vip")

    assert report.sent == ["C1", "C4"]
    assert report.failed == {"C2": "recipient refused: 550 5.1.1 mailbox unavailable"}
    assert report.skipped == {"C3": "no email address"}
    assert [to for _, [to], _ in inbox.mails] == ["ana@example.com", "di@example.com"]
    text, markup = parts(parse(inbox.mails[0][2]))
    assert "Hello Ana <b>Lima</b>," in text and "Ana &lt;b&gt;Lima&lt;/b&gt;" in markup
    assert "https://cx.example/s/opt-out/" in text
    tokens = [token_in(raw) for _, _, raw in inbox.mails]
    assert len(set(tokens)) == 2
    visit = answers.open_link(shop, versions.DefinitionCache(shop), tokens[0], now=T0)
    assert (visit.survey_id, visit.customer_id) == ("nps-q1", "C1")
    # Only what was sent counts as invited: the response rate's denominator.
    assert invitations(shop) == [("C1", "email", T0), ("C4", "email", T0)]
    assert deliveries(shop) == {
        "C1:invitation": ("sent", 1, None),
        "C2:invitation": ("failed", 1, "recipient refused: 550 5.1.1 mailbox unavailable"),
        "C4:invitation": ("sent", 1, None),
    }


def test_a_dry_run_says_who_would_be_mailed_and_writes_nothing(shop: Store) -> None:
    report = send_survey(shop, "nps-q1", mailer=None, now=T0, settings=SETTINGS, dry_run=True)

    assert report.sent == ["C1", "C2", "C4"] and report.rows()[0] == {
        "customer_id": "C1",
        "outcome": "would send",
        "reason": "",
    }
    assert deliveries(shop) == {} and invitations(shop) == []


def test_a_survey_that_is_not_live_cannot_be_sent(shop: Store) -> None:
    versions.set_state(shop, "nps-q1", "closed", now=T0)

    with pytest.raises(
        versions.SurveyError, match="survey 'nps-q1' is closed: only a live survey can be sent"
    ):
        send_survey(shop, "nps-q1", mailer=None, now=T0, settings=SETTINGS, dry_run=True)


def test_a_failed_invitation_is_retried_once_later(shop: Store, smtp_server: Any) -> None:
    _, _, inbox = smtp_server
    with shop.engine.begin() as conn:
        conn.execute(
            schema.customers.update()
            .where(schema.customers.c.customer_id == "C2")
            .values(email="refused2@x.com")
        )
    with SmtpSender(smtp(smtp_server)) as mailer:
        send_survey(shop, "nps-q1", mailer=mailer, now=T0, settings=SETTINGS, customer_ids=["C2"])
        too_soon = retry_failed(shop, mailer=mailer, now=T0 + dt.timedelta(minutes=30), settings=SETTINGS)
        with shop.engine.begin() as conn:  # the customer's address was fixed meanwhile
            conn.execute(
                schema.customers.update()
                .where(schema.customers.c.customer_id == "C2")
                .values(email="bo@x.com")
            )
        retried = retry_failed(shop, mailer=mailer, now=T0 + DAY, settings=SETTINGS)
        after = retry_failed(shop, mailer=mailer, now=T0 + 2 * DAY, settings=SETTINGS)

    assert (too_soon.sent, retried.sent, after.sent) == ([], ["C2"], [])
    assert [to for _, [to], _ in inbox.mails] == ["bo@x.com"]
    assert deliveries(shop) == {"C2:invitation": ("sent", 2, None)}
    assert invitations(shop) == [("C2", "email", T0 + DAY)]


def test_mails_sent_move_the_response_rate_figures_the_metrics_cache_serves(
    shop: Store, smtp_server: Any
) -> None:
    from cxloop.metrics.cache import MetricsCache, store_fingerprint
    from cxloop.surveys.links import create_links, segment_customers

    cache = MetricsCache(lambda: store_fingerprint(shop))

    def invited() -> list[float]:  # the response rate's denominator per day, through the cache
        kpi = cache.compute(shop, "response_rate", grain="day", start=T0 - DAY, as_of=T0 + 3 * DAY)
        return kpi["n"].tolist()

    def sent() -> int:
        with shop.engine.connect() as conn:
            return int(
                conn.execute(sa.select(sa.func.count()).select_from(schema.survey_invitations)).scalar_one()
            )

    stamps = [store_fingerprint(shop)]
    assert invited() == []
    with SmtpSender(smtp(smtp_server)) as mailer:
        send_survey(shop, "nps-q1", mailer=mailer, now=T0, settings=SETTINGS, customer_ids=["C1", "C2"])
        stamps.append(store_fingerprint(shop))
        assert sent() == 1 and invited() == [1]  # C1 invited (C2's address refused)
        with shop.engine.begin() as conn:
            conn.execute(
                schema.customers.update()
                .where(schema.customers.c.customer_id == "C2")
                .values(email="bo@x.com")
            )
        retry_failed(shop, mailer=mailer, now=T0 + DAY, settings=SETTINGS)  # updates C2's delivery
        stamps.append(store_fingerprint(shop))
        assert sent() == 2 and invited() == [1, 1]
    # Links made for a mail merge record invitations too (`cxloop surveys links`).
    create_links(shop, "nps-q1", segment_customers(shop, None), now=T0 + DAY, channel="email")
    stamps.append(store_fingerprint(shop))
    assert sent() == 6 and invited() == [1, 5]
    assert len(set(stamps)) == len(stamps)
    assert cache.stats.computed == 4


def test_a_failure_is_retried_only_once(shop: Store, smtp_server: Any) -> None:
    with SmtpSender(smtp(smtp_server)) as mailer:
        send_survey(shop, "nps-q1", mailer=mailer, now=T0, settings=SETTINGS, customer_ids=["C2"])
        first = retry_failed(shop, mailer=mailer, now=T0 + DAY, settings=SETTINGS)
        second = retry_failed(shop, mailer=mailer, now=T0 + 2 * DAY, settings=SETTINGS)

    assert list(first.failed) == ["C2"] and second.failed == {} and second.sent == []
    assert deliveries(shop)["C2:invitation"][:2] == ("failed", 2)


def test_one_reminder_after_n_days_to_those_who_have_not_answered(shop: Store, smtp_server: Any) -> None:
    _, _, inbox = smtp_server
    defs = versions.DefinitionCache(shop)
    with SmtpSender(smtp(smtp_server)) as mailer:
        send_survey(shop, "nps-q1", mailer=mailer, now=T0, settings=SETTINGS, customer_ids=["C1", "C4"])
        ana = token_in(inbox.mails[0][2])
        visit = answers.open_link(shop, defs, ana, now=T0 + DAY)
        answers.save_score(shop, defs, ana, form_token=visit.form_token, score="9", now=T0 + DAY)
        early = send_reminders(shop, mailer=mailer, now=T0 + 2 * DAY, settings=SETTINGS)
        due = send_reminders(shop, mailer=mailer, now=T0 + 3 * DAY, settings=SETTINGS)
        again = send_reminders(shop, mailer=mailer, now=T0 + 9 * DAY, settings=SETTINGS)

    assert (early.sent, due.sent, again.sent) == ([], ["C4"], [])
    reminder = parse(inbox.mails[-1][2])
    assert reminder["To"] == "di@example.com" and reminder["Subject"].startswith("Reminder:")
    di = token_in(inbox.mails[-1][2])
    assert answers.open_link(shop, defs, di, now=T0 + 3 * DAY).customer_id == "C4"
    assert len(invitations(shop)) == 2  # a reminder is not a new invitation


def test_send_due_sends_each_triggered_survey_once(shop: Store, smtp_server: Any) -> None:
    _, _, inbox = smtp_server
    trigger = add_trigger(shop, "nps-q1", event="ticket_resolved", delay_hours=48, now=T0)
    with shop.engine.begin() as conn:
        conn.execute(
            schema.tickets.insert(),
            [
                {
                    "source": "desk",
                    "ticket_id": tid,
                    "customer_id": cid,
                    "opened_at": T0,
                    "resolved_at": at,
                    "row_hash": "h",
                }
                for tid, cid, at in (("T1", "C1", T0 + DAY), ("T2", "C4", T0 + 3 * DAY), ("T3", "C1", None))
            ],
        )
    with SmtpSender(smtp(smtp_server)) as mailer:
        dry = send_due(shop, mailer=None, now=T0 + 3 * DAY, settings=SETTINGS, dry_run=True)
        first = send_due(shop, mailer=mailer, now=T0 + 3 * DAY, settings=SETTINGS)
        rerun = send_due(shop, mailer=mailer, now=T0 + 3 * DAY, settings=SETTINGS)
        later = send_due(shop, mailer=mailer, now=T0 + 6 * DAY, settings=SETTINGS)

    assert dry["invitations"].sent == ["C1"]
    assert first["invitations"].sent == ["C1"] and rerun["invitations"].sent == []
    assert later["invitations"].sent == ["C4"]
    assert later["reminders"].sent == ["C1"]  # three days after C1's invitation, no answer
    assert [to for _, [to], _ in inbox.mails] == ["ana@example.com", "di@example.com", "ana@example.com"]
    assert trigger.delay_hours == 48


def test_a_resurvey_after_a_case_skips_fatigue_but_not_an_opt_out(shop: Store, smtp_server: Any) -> None:
    from cxloop.surveys.fatigue import opt_out

    _, _, inbox = smtp_server
    with SmtpSender(smtp(smtp_server)) as mailer:
        send_survey(shop, "nps-q1", mailer=mailer, now=T0, settings=SETTINGS, customer_ids=["C1", "C4"])
        delivery = send_resurvey(shop, "nps-q1", "C1", mailer=mailer, now=T0 + DAY, settings=SETTINGS)
        opt_out(shop, "C4", now=T0, via="link")
        refused = send_resurvey(shop, "nps-q1", "C4", mailer=mailer, now=T0 + DAY, settings=SETTINGS)

    assert delivery is not None and refused is None
    assert parse(inbox.mails[-1][2])["Subject"] == "Acme: did we put it right?"
    assert len(inbox.mails) == 3


def test_the_embed_snippet_is_markup_only_and_escaped() -> None:
    link = embed_snippet('https://cx.example/s/abc"><script>', title="Tell <us>")
    frame = embed_snippet("https://cx.example/s/abc", kind="iframe")

    assert (
        link
        == '<a href="https://cx.example/s/abc&quot;&gt;&lt;script&gt;" target="_blank" rel="noopener">Tell &lt;us&gt;</a>\n'
    )
    assert frame.startswith('<iframe src="https://cx.example/s/abc" title="Tell us what you think"')
    assert "<script" not in link + frame


def test_the_send_command_mails_a_segment_and_the_due_run_is_idempotent(
    duck_shop: Store, smtp_server: Any, tmp_path: Any
) -> None:
    import json

    from typer.testing import CliRunner

    from cxloop.cli.app import app as cli_app

    host, port, inbox = smtp_server
    env = {
        "CXLOOP_DATABASE_URL": None,
        "CXLOOP_SMTP_HOST": host,
        "CXLOOP_SMTP_PORT": str(port),
        "CXLOOP_SMTP_SENDER": "s@cx.example",
        "CXLOOP_SURVEY_BASE_URL": "https://cx.example",
    }

    def cxloop(*args: str) -> Any:
        return CliRunner(env=env).invoke(cli_app, ["--db", duck_shop.url, "surveys", *args])

    dry = cxloop("send", "nps-q1", "--segment", "vip", "--dry-run", "--json")
    assert dry.exit_code == 0, dry.output
    assert {r["customer_id"]: r["outcome"] for r in json.loads(dry.stdout)} == {
        "C1": "would send", "C2": "would send", "C4": "would send", "C3": "skipped",
    }  # fmt: skip
    assert inbox.mails == []
    sent = cxloop("send", "nps-q1", "--segment", "vip")
    assert sent.exit_code == 0, sent.output
    assert "invitations: 2 sent, 1 failed, 1 skipped" in sent.stdout and "recipient refused" in sent.stdout
    assert cxloop("send", "--due").stdout.startswith("invitations: 0 sent")
    assert len(inbox.mails) == 2
    assert cxloop("opt-out", "C4").stdout == "C4 opted out.\n"
    template = tmp_path / "mail.toml"
    template.write_text('subject = "Hi"\nbody = "no link"\n')
    bad = cxloop("send", "nps-q1", "--template", str(template))
    assert bad.exit_code == 1 and "body: must contain $link" in bad.stderr
    assert cxloop("send").exit_code == 2  # neither a survey nor --due
