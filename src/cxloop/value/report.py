"""The value reports the shells show, from a store source: one place that turns "as of", a unit
and a model into the summary, the fits, customer values and the at-risk list.

The models look at complete days: the calibration period ends on the day before ``as_of``
(the day of ``as_of`` is not over yet). :class:`FitCache` keeps fitted results per parameters
and data fingerprint, so that a server fits once per import rather than once per request.
"""

from __future__ import annotations

import datetime as dt
import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from typing import Any

import pandas as pd
import sqlalchemy as sa

from cxloop.metrics.source import Source
from cxloop.value.at_risk import AtRiskOptions, at_risk
from cxloop.value.clv import ClvOptions, customer_values, most_valuable
from cxloop.value.fitting import Fit
from cxloop.value.models import MODELS, ValueModels, fit_models, purchase_model
from cxloop.value.summary import Summary, rfm_summary


def last_complete_day(as_of: dt.datetime) -> dt.date:
    """The calibration end for a report as of ``as_of``: the last day that is over."""
    return as_of.date() - dt.timedelta(days=1)


@dataclass(frozen=True)
class ValueQuery:
    """What a value report is computed for."""

    calibration_end: dt.date
    unit: str = "weeks"
    model: str = "bgnbd"


@dataclass(frozen=True)
class Fitted:
    """A summary (with segments) and the models fitted on it."""

    summary: Summary
    models: ValueModels


def fitted(source: Source, query: ValueQuery) -> Fitted:
    summary = rfm_summary(source, calibration_end=query.calibration_end, unit=query.unit, with_segment=True)
    return Fitted(summary, fit_models(summary, query.model))


def fit_rows(source: Source, query: ValueQuery, *, all_models: bool = False) -> list[dict[str, Any]]:
    """One row per model and parameter: value, SE, log-likelihood, customers, iterations,
    convergence (the purchase model asked for and Gamma-Gamma, or every model)."""
    result = fitted(source, query)
    fits: list[Fit] = list(result.models.fits)
    if all_models:
        for name in MODELS:
            if name != query.model:
                extra = purchase_model(name, result.summary.rows).fit
                if extra is not None:
                    fits.insert(len(fits) - 1, extra)  # purchase models first, Gamma-Gamma last
    return [{**row, "unit": query.unit} for fit in fits for row in fit.rows()]


def value_frame(result: Fitted, options: ClvOptions | None = None) -> pd.DataFrame:
    """Customer values, most valuable first."""
    return most_valuable(customer_values(result.summary, result.models, options))


def at_risk_frame(
    result: Fitted, clv: ClvOptions | None = None, options: AtRiskOptions | None = None
) -> pd.DataFrame:
    values = customer_values(result.summary, result.models, clv)
    return at_risk(values, days_per_unit=result.summary.days_per_unit, options=options)


def store_fingerprint(engine: sa.Engine) -> tuple[Any, ...]:
    """A cheap mark that changes when the data do: the number of imports and when the last one
    finished (every write to the data tables goes through an import)."""
    with engine.connect() as conn:
        row = conn.execute(sa.text("SELECT count(*), max(finished_at) FROM imports")).one()
    return (int(row[0]), row[1])


class FitCache:
    """The last ``size`` results by key (parameters + data fingerprint), thread-safe; a key is
    computed once even when requests for it arrive together."""

    def __init__(self, size: int = 8) -> None:
        self.size = size
        self._items: OrderedDict[Hashable, Any] = OrderedDict()
        self._lock = threading.Lock()
        self._pending: dict[Hashable, threading.Lock] = {}

    def get(self, key: Hashable, compute: Callable[[], Any]) -> Any:
        with self._lock:
            if key in self._items:
                self._items.move_to_end(key)
                return self._items[key]
            gate = self._pending.setdefault(key, threading.Lock())
        with gate:
            with self._lock:
                if key in self._items:
                    return self._items[key]
            value = compute()
            with self._lock:
                self._items[key] = value
                self._pending.pop(key, None)
                while len(self._items) > self.size:
                    self._items.popitem(last=False)
            return value

    def __len__(self) -> int:
        return len(self._items)
