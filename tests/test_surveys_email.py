"""Survey mail against a real SMTP server (aiosmtpd, started by the tests): what a customer
receives, what a refused recipient leaves behind, the pace, reminders and the one retry."""

from __future__ import annotations

import email
import email.policy
from email.message import EmailMessage
from typing import Any

import pytest

from cxloop.surveys.email import (
    DEFAULT_TEMPLATE,
    DeliveryError,
    EmailTemplate,
    SmtpSender,
    SmtpSettings,
    Throttle,
    build_message,
)


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
