"""The value reports the shells show, from a store source: one place that turns "as of", a unit
and a model into the summary, the fits, customer values and the at-risk list.

The models look at complete days: the calibration period ends on the day before ``as_of``
(the day of ``as_of`` is not over yet). A server keeps fitted results in its metrics cache
(:class:`cxloop.metrics.cache.MetricsCache`), so it fits once per import rather than per request.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

import pandas as pd

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

    @property
    def rows_held(self) -> int:
        """Its size for a cache's bound: one row per customer of the summary."""
        return len(self.summary.frame)


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
