"""Every KPI by id: the built-in catalogue, plus the user's own KPIs when a file is given."""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from pathlib import Path

from cxloop.errors import ConfigError
from cxloop.metrics.kpi import Kpi


def builtin_kpis() -> list[Kpi]:
    from cxloop.metrics.catalogue import customers, revenue, reviews, service, subscriptions, surveys

    return [
        *surveys.KPIS,
        *revenue.KPIS,
        *customers.KPIS,
        *subscriptions.KPIS,
        *service.KPIS,
        *reviews.KPIS,
    ]


class Registry:
    """KPIs by id, in catalogue order."""

    def __init__(self, kpis: Iterable[Kpi]) -> None:
        self._kpis: dict[str, Kpi] = {}
        for kpi in kpis:
            if kpi.id in self._kpis:
                raise ConfigError(f"KPI id {kpi.id!r} is defined twice")
            self._kpis[kpi.id] = kpi

    @classmethod
    def load(cls, custom_file: str | Path | None = None) -> Registry:
        kpis = builtin_kpis()
        if custom_file is not None:
            from cxloop.metrics.custom import load_custom_kpis

            kpis += load_custom_kpis(custom_file)
        return cls(kpis)

    def __iter__(self):  # type: ignore[no-untyped-def]
        return iter(self._kpis.values())

    def __len__(self) -> int:
        return len(self._kpis)

    def get(self, kpi_id: str) -> Kpi:
        try:
            return self._kpis[kpi_id]
        except KeyError:
            close = difflib.get_close_matches(kpi_id.lower(), self._kpis, n=3, cutoff=0.6)
            close += [k for k in self._kpis if kpi_id.lower() in k and k not in close]
            hint = f"; did you mean {', '.join(close)}?" if close else "; `cxloop kpi list` shows them all"
            raise ConfigError(f"unknown KPI {kpi_id!r}{hint}") from None
