"""Customer lifetime value: what each customer is expected to bring over the coming months.

For a customer with history (x, t_x, T, m), over the next ``months`` months with monthly
discount rate d and gross ``margin``:

    CLV = margin · E[M | x, m] · Σ_{k=1..months} (E[Y(k·L)] − E[Y((k−1)·L)]) / (1 + d)^k,

where E[Y(t)] is the purchase model's expected number of purchases in the next t (conditional on
the history), L is one month in the summary's unit (365.25/12 days) and E[M | x, m] the
Gamma-Gamma expected spend per purchase: expected purchases month by month, each month's
discounted at the end of the month. The default margin 1 gives revenue, not profit; the default
d = 1% a month is about 12.7% a year.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from cxloop.errors import ConfigError
from cxloop.value.fitting import FitError
from cxloop.value.models import ValueModels
from cxloop.value.summary import Summary

DAYS_PER_MONTH = 365.25 / 12
COLUMNS = [
    "customer_id",
    "frequency",
    "recency",
    "T",
    "monetary_value",
    "total_spend",
    "last_purchase",
    "p_alive",
    "expected_purchases",
    "expected_spend",
    "clv",
]


@dataclass(frozen=True)
class ClvOptions:
    """The CLV horizon and economics (defaults documented in docs/value.md)."""

    months: int = 12
    discount_rate: float = 0.01  # per month
    margin: float = 1.0  # share of spend that is profit; 1 = revenue

    def check(self) -> None:
        if self.months < 1:
            raise ConfigError(f"the CLV horizon must be at least 1 month, not {self.months}")
        if not 0 <= self.discount_rate < 1:
            raise ConfigError(f"the monthly discount rate must be in [0, 1), not {self.discount_rate}")
        if not 0 < self.margin <= 1:
            raise ConfigError(f"the margin must be in (0, 1], not {self.margin}")


def customer_values(summary: Summary, models: ValueModels, options: ClvOptions | None = None) -> pd.DataFrame:
    """One row per customer of the summary, in its order (by customer id): its history,
    P(alive), expected purchases over the horizon, expected spend per purchase and CLV (and
    segment when the summary has it). :func:`most_valuable` sorts them."""
    options = options or ClvOptions()
    options.check()
    frame = summary.frame
    month = DAYS_PER_MONTH / summary.days_per_unit
    rows = summary.rows
    model = models.purchases
    times = np.arange(options.months + 1) * month
    alive = model.p_alive(rows.x, rows.t_x, rows.T)
    cumulative = model.expected_purchases_at(times, rows.x, rows.t_x, rows.T, alive)
    discount = (1 + options.discount_rate) ** -np.arange(1, options.months + 1)
    discounted = (discount[:, None] * np.diff(cumulative, axis=0)).sum(axis=0)
    spend = models.spend.expected_spend(frame["frequency"], frame["monetary_value"])
    predictions = {
        "p_alive": alive[rows.inverse],
        "expected_purchases": cumulative[-1][rows.inverse],
        "expected_spend": spend,
        "clv": options.margin * spend * discounted[rows.inverse],
    }
    if not all(np.all(np.isfinite(v)) for v in predictions.values()):
        raise FitError("the fitted models give non-finite predictions for some customers; refit on more data")
    out = frame[[c for c in COLUMNS if c in frame]].assign(**predictions)
    if "segment" in frame:
        out["segment"] = frame["segment"]
    return out


def most_valuable(values: pd.DataFrame, top: int | None = None) -> pd.DataFrame:
    """Customer values sorted by CLV, largest first (the ``top`` first when given); ties keep
    the summary's order (by customer id). A stable sort on one float column: sorting a million
    customer ids as text as well would take seconds."""
    clv = values["clv"].to_numpy(float)
    if top is not None and top < len(values):
        # Only the top: partition first, then sort those few (and their ties) stably.
        cut = np.partition(-clv, top - 1)[top - 1]
        candidates = np.flatnonzero(-clv <= cut)
        order = candidates[np.argsort(-clv[candidates], kind="stable")][:top]
    else:
        order = np.argsort(-clv, kind="stable")
    return values.iloc[order].reset_index(drop=True)


def clv_by_segment(values: pd.DataFrame) -> pd.DataFrame:
    """Per segment (customers without one under "(none)"): customers, total and mean CLV, mean
    P(alive) and expected purchases, sorted by total CLV."""
    if "segment" not in values:
        raise ConfigError("these customer values have no segment (summarise with with_segment=True)")
    frame = values.assign(segment=values["segment"].fillna("(none)"))
    out = (
        frame.groupby("segment", sort=False)
        .agg(
            customers=("customer_id", "size"),
            clv_total=("clv", "sum"),
            clv_mean=("clv", "mean"),
            p_alive_mean=("p_alive", "mean"),
            expected_purchases_mean=("expected_purchases", "mean"),
        )
        .reset_index()
    )
    return out.sort_values(["clv_total", "segment"], ascending=[False, True], kind="stable").reset_index(
        drop=True
    )
