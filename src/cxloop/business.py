"""The business's own settings: the time zone and the currency its people read the pages in.

Kept in the store (``business_settings``), so every server worker and the CLI see the same; set
on the settings page by those whose role holds ``settings.manage``. Times are stored in UTC and
shown in the time zone; KPI periods are computed in UTC (docs/web.md says why).
"""

from __future__ import annotations

import datetime as dt
import re
import time
import zoneinfo
from collections.abc import Callable
from dataclasses import dataclass

import sqlalchemy as sa

from cxloop.errors import ConfigError
from cxloop.recent import Recent
from cxloop.store import schema
from cxloop.store.store import Store

T = schema.business_settings
CURRENCY = re.compile(r"^[A-Z]{3}$")
#: Offered first on the settings page; any IANA zone is accepted.
COMMON_ZONES = (
    "UTC", "Europe/London", "Europe/Paris", "Europe/Berlin", "America/New_York", "America/Chicago",
    "America/Denver", "America/Los_Angeles", "America/Sao_Paulo", "Asia/Kolkata", "Asia/Singapore",
    "Asia/Tokyo", "Australia/Sydney",
)  # fmt: skip
COMMON_CURRENCIES = ("USD", "EUR", "GBP", "BRL", "JPY", "INR", "CAD", "AUD", "CHF", "CNY", "MXN")


@dataclass(frozen=True)
class BusinessSettings:
    time_zone: str = "UTC"
    currency: str = "USD"

    @property
    def zone(self) -> zoneinfo.ZoneInfo:
        return zoneinfo.ZoneInfo(self.time_zone)

    def local(self, moment: dt.datetime) -> dt.datetime:
        """A stored (naive UTC) moment in the business's time zone."""
        aware = moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)
        return aware.astimezone(self.zone)


def checked(time_zone: str, currency: str) -> BusinessSettings:
    """Settings from people's input, or a :class:`ConfigError` naming the field and the reason."""
    time_zone, currency = time_zone.strip(), currency.strip().upper()
    try:
        zoneinfo.ZoneInfo(time_zone)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise ConfigError(f"time_zone: {time_zone!r} is not an IANA time zone (like Europe/Paris)") from None
    if not CURRENCY.match(currency):
        raise ConfigError(f"currency: {currency!r} is not a three-letter ISO 4217 code (like EUR)")
    return BusinessSettings(time_zone=time_zone, currency=currency)


def load_business_settings(store: Store) -> BusinessSettings:
    with store.engine.connect() as conn:
        values = {key: value for key, value in conn.execute(sa.select(T.c.key, T.c.value))}
    defaults = BusinessSettings()
    return BusinessSettings(
        time_zone=values.get("time_zone", defaults.time_zone),
        currency=values.get("currency", defaults.currency),
    )


def save_business_settings(
    store: Store, settings: BusinessSettings, *, user_id: str | None, now: dt.datetime
) -> None:
    """Replace the settings in one transaction."""
    with store.engine.begin() as conn:
        conn.execute(T.delete().where(T.c.key.in_(["time_zone", "currency"])))
        conn.execute(
            T.insert(),
            [
                {"key": key, "value": value, "updated_at": now, "updated_by": user_id}
                for key, value in (("time_zone", settings.time_zone), ("currency", settings.currency))
            ],
        )


class RecentSettings(Recent[BusinessSettings]):
    """The settings as read at most ``seconds`` ago: pages read them on every request, and a change
    made in another worker process may take that long to show (this process's own saves show at
    once, through :meth:`forget`)."""

    def __init__(
        self, store: Store, *, seconds: float = 5.0, timer: Callable[[], float] = time.monotonic
    ) -> None:
        self.store = store
        super().__init__(lambda: load_business_settings(store), seconds=seconds, timer=timer)
