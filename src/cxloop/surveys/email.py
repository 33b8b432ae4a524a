"""Survey mail: the invitation built from a template, and an SMTP sender that keeps a pace.

* :class:`EmailTemplate` — subject and body with ``$name``, ``$survey``, ``$brand``, ``$link`` and
  ``$opt_out_link`` (``string.Template``: nothing else is evaluated). :func:`build_message` makes a
  plain-text and an HTML part; in the HTML every value (and the template's own text) is escaped
  and the links are ``<a href>``. Line breaks in values never reach a header. Every mail carries
  its opt-out link, also as ``List-Unsubscribe`` (RFC 8058 one-click).
* :class:`SmtpSender` — ``smtplib`` with the ``CXLOOP_SMTP_*`` settings (:class:`SmtpSettings`):
  one connection for a batch, STARTTLS or SSL, login when a user is set, and a :class:`Throttle`
  of ``rate`` mails per second. A refused recipient or a dropped connection raises
  :class:`DeliveryError` with the server's reason, for the caller to record.
"""

from __future__ import annotations

import contextlib
import html
import re
import smtplib
import ssl
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import formataddr, make_msgid
from string import Template
from types import TracebackType
from typing import Literal, Protocol

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

__all__ = [
    "DEFAULT_TEMPLATE",
    "DeliveryError",
    "EmailTemplate",
    "Mailer",
    "SmtpSender",
    "SmtpSettings",
    "Throttle",
    "build_message",
]


class SmtpSettings(BaseSettings):
    """Where survey mail goes: ``CXLOOP_SMTP_HOST``, ``_PORT``, ``_USER``, ``_PASSWORD``, ``_TLS``
    (none | starttls | ssl), ``_SENDER`` (the From address), ``_RATE`` (mails per second)."""

    model_config = SettingsConfigDict(env_prefix="CXLOOP_SMTP_", extra="ignore")

    host: str = Field(default="localhost", description="SMTP server")
    port: int = Field(default=25, ge=1, le=65535, description="SMTP port (587 for STARTTLS, 465 for SSL)")
    user: str | None = Field(default=None, description="Login, when the server wants one")
    password: SecretStr | None = Field(default=None, description="Password of the login")
    tls: Literal["none", "starttls", "ssl"] = Field(default="none", description="Transport security")
    sender: str = Field(default="surveys@localhost", description="The From address")
    sender_name: str = Field(default="", description="The From name (default: the survey's brand)")
    rate: float = Field(default=10.0, gt=0, le=10_000, description="Mails per second at most")
    timeout: float = Field(default=30.0, gt=0, description="Seconds to wait for the server")


class DeliveryError(Exception):
    """A mail the server did not take; ``reason`` says why (recorded on the delivery)."""

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(reason)


class Mailer(Protocol):
    """What the distribution needs of a sender: its From (address, name), and to take one message
    or raise :class:`DeliveryError`."""

    @property
    def sender(self) -> tuple[str, str]: ...

    def send(self, message: EmailMessage) -> None: ...


@dataclass(frozen=True)
class EmailTemplate:
    """An invitation's subject and body (``$name``, ``$survey``, ``$brand``, ``$link``, ``$opt_out_link``)."""

    subject: str
    body: str

    def check(self) -> None:
        """Refuse a template that would mail no link or no way to opt out (``ValueError``)."""
        found: dict[str, set[str]] = {}
        for field, text in (("subject", self.subject), ("body", self.body)):
            names = set()
            for m in Template.pattern.finditer(text):
                if m.group("invalid") is not None:
                    raise ValueError(f"{field}: a lone $ (write $$ for a dollar sign)")
                if m.group("named") or m.group("braced"):
                    names.add(m.group("named") or m.group("braced"))
            unknown = names - PLACEHOLDERS
            if unknown:
                raise ValueError(f"{field}: unknown placeholder(s) ${', $'.join(sorted(unknown))}")
            found[field] = names
        for needed, why in (
            ("link", "the customer's own survey link"),
            ("opt_out_link", "the way to opt out"),
        ):
            if needed not in found["body"]:
                raise ValueError(f"body: must contain ${needed} ({why})")


PLACEHOLDERS = frozenset({"name", "survey", "brand", "link", "opt_out_link"})

DEFAULT_TEMPLATE = EmailTemplate(
    subject="$brand would like your opinion",
    body=(
        "Hello $name,\n\n"
        "$brand would like to know how we are doing. It takes a few seconds:\n\n"
        "$link\n\n"
        "Thank you!\n\n"
        "You received this because you are a customer of $brand. "
        "To receive no more surveys: $opt_out_link"
    ),
)
REMINDER_TEMPLATE = EmailTemplate(
    subject="Reminder: $brand would like your opinion",
    body=(
        "Hello $name,\n\n"
        "A few days ago $brand asked how we are doing. If you have a moment, it takes a few seconds:\n\n"
        "$link\n\n"
        "Thank you!\n\n"
        "To receive no more surveys: $opt_out_link"
    ),
)
RESURVEY_TEMPLATE = EmailTemplate(
    subject="$brand: did we put it right?",
    body=(
        "Hello $name,\n\n"
        "You told us recently that something went wrong, and we followed up. "
        "Would you tell us how you feel about $brand now?\n\n"
        "$link\n\n"
        "To receive no more surveys: $opt_out_link"
    ),
)

_LINE_BREAKS = re.compile(r"[\r\n\x0b\x0c\x85\u2028\u2029]+")


def _one_line(text: str) -> str:
    return _LINE_BREAKS.sub(" ", text).strip()


def build_message(
    template: EmailTemplate,
    *,
    to: str,
    name: str | None,
    survey: str,
    brand: str,
    link: str,
    opt_out_link: str,
    sender: str,
    sender_name: str = "",
) -> EmailMessage:
    """The mail to one customer: plain text and HTML (escaped), with the opt-out headers."""
    values = {
        "name": _one_line(name or "") or "there",
        "survey": _one_line(survey),
        "brand": _one_line(brand),
        "link": link,
        "opt_out_link": opt_out_link,
    }
    message = EmailMessage()
    message["Subject"] = _one_line(Template(template.subject).safe_substitute(values))
    message["From"] = formataddr((_one_line(sender_name or brand), sender))
    message["To"] = _one_line(to)
    message["Message-ID"] = make_msgid(domain=sender.rpartition("@")[2] or None)
    message["List-Unsubscribe"] = f"<{opt_out_link}>"
    message["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
    message.set_content(Template(template.body).safe_substitute(values))
    message.add_alternative(_html(template.body, values), subtype="html")
    return message


def _html(body: str, values: Mapping[str, str]) -> str:
    def anchor(url: str, label: str | None = None) -> str:
        return f'<a href="{html.escape(url, quote=True)}">{html.escape(label or url)}</a>'

    escaped = {k: html.escape(v) for k, v in values.items()}
    escaped["link"] = anchor(values["link"])
    escaped["opt_out_link"] = anchor(values["opt_out_link"], "opt out")
    text = Template(html.escape(body, quote=False)).safe_substitute(escaped)
    paragraphs = [p.replace("\n", "<br>\n") for p in re.split(r"\n\s*\n", text) if p.strip()]
    inner = "\n".join(f"<p>{p}</p>" for p in paragraphs)
    style = "font-family:sans-serif;line-height:1.5"
    return f'<!doctype html>\n<html><body style="{style}">\n{inner}\n</body></html>\n'


class Throttle:
    """At most ``rate`` calls of :meth:`wait` per second: each waits until 1/rate after the last."""

    def __init__(
        self,
        rate: float,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if rate <= 0:
            raise ValueError("rate: must be more than 0 mails per second")
        self.interval = 1.0 / rate
        self._clock = clock
        self._sleep = sleep
        self._next: float | None = None

    def wait(self) -> None:
        now = self._clock()
        if self._next is not None and now < self._next:
            self._sleep(self._next - now)
            now = self._clock()
        self._next = max(now, self._next or now) + self.interval


class SmtpSender:
    """One SMTP connection for a batch of mails (a context manager), paced by a :class:`Throttle`.

    A connection that cannot be made fails every mail of the batch with the reason; a connection the
    server drops is made again once for the next mail.
    """

    def __init__(self, settings: SmtpSettings, *, throttle: Throttle | None = None) -> None:
        self.settings = settings
        self.throttle = throttle or Throttle(settings.rate)
        self._smtp: smtplib.SMTP | None = None
        self._broken: str | None = None

    @property
    def sender(self) -> tuple[str, str]:
        return self.settings.sender, self.settings.sender_name

    def __enter__(self) -> SmtpSender:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def _connect(self) -> smtplib.SMTP:
        s = self.settings
        try:
            smtp: smtplib.SMTP
            if s.tls == "ssl":
                smtp = smtplib.SMTP_SSL(
                    s.host, s.port, timeout=s.timeout, context=ssl.create_default_context()
                )
            else:
                smtp = smtplib.SMTP(s.host, s.port, timeout=s.timeout)
                if s.tls == "starttls":
                    smtp.starttls(context=ssl.create_default_context())
            if s.user:
                smtp.login(s.user, s.password.get_secret_value() if s.password else "")
        except (OSError, smtplib.SMTPException) as exc:
            raise DeliveryError(f"cannot reach the SMTP server {s.host}:{s.port}: {exc}") from None
        return smtp

    def send(self, message: EmailMessage) -> None:
        if self._broken is not None:
            raise DeliveryError(self._broken)
        self.throttle.wait()
        for attempt in (1, 2):
            if self._smtp is None:
                try:
                    self._smtp = self._connect()
                except DeliveryError as exc:
                    self._broken = exc.reason
                    raise
            try:
                self._smtp.send_message(message)
                return
            except smtplib.SMTPServerDisconnected as exc:
                self._smtp = None
                if attempt == 2:
                    raise DeliveryError(f"the SMTP server closed the connection: {exc}") from None
            except smtplib.SMTPRecipientsRefused as exc:
                code, text = next(iter(exc.recipients.values()))
                raise DeliveryError(f"recipient refused: {code} {_decode(text)}") from None
            except smtplib.SMTPResponseException as exc:
                raise DeliveryError(f"refused: {exc.smtp_code} {_decode(exc.smtp_error)}") from None
            except (OSError, smtplib.SMTPException) as exc:
                self._smtp = None
                raise DeliveryError(f"sending failed: {exc}") from None

    def close(self) -> None:
        if self._smtp is not None:
            with contextlib.suppress(OSError, smtplib.SMTPException):
                self._smtp.quit()
            self._smtp = None


def _decode(text: bytes | str) -> str:
    return text.decode("utf-8", "replace") if isinstance(text, bytes) else str(text)
