"""Does the model predict? Expected against actual repeat purchases in a holdout period.

Fit on the calibration period, predict each customer's purchases in the holdout period (the
conditional expectation E[Y(t*) | x, t_x, T], t* the holdout's length), and compare with what
they did, in aggregate and by calibration frequency x = 0, 1, …, 6, 7+ — the test of Fader,
Hardie and Lee (2005, figure 4) on CDNOW. See docs/value.md for the CDNOW result.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np
import pandas as pd

from cxloop.errors import ConfigError
from cxloop.metrics.source import Source
from cxloop.value.models import ValueModels, fit_models, per_row
from cxloop.value.summary import Summary, rfm_summary

COLUMNS = ["frequency", "customers", "actual", "predicted", "actual_total", "predicted_total"]


@dataclass(frozen=True)
class Validation:
    """The models fitted on the calibration period and the holdout comparison."""

    models: ValueModels
    table: pd.DataFrame
    summary: Summary


def holdout_table(summary: Summary, models: ValueModels, *, top: int = 7) -> pd.DataFrame:
    """One row per calibration frequency 0..top−1, one for ``top``+ (label "7+"), and "all":
    customers, mean actual and predicted holdout repeat purchases, and their totals."""
    if summary.holdout_end is None:
        raise ConfigError("validation needs a holdout period: give a holdout end after the calibration end")
    frame = summary.frame
    length = (summary.holdout_end - summary.calibration_end).days / summary.days_per_unit
    _, predicted = per_row(models.purchases, summary, length)
    x = frame["frequency"].to_numpy(np.int64)
    data = pd.DataFrame(
        {
            "bin": np.minimum(x, top),
            "actual": frame["holdout_frequency"].to_numpy(float),
            "predicted": predicted,
        }
    )
    grouped = data.groupby("bin").agg(
        customers=("actual", "size"), actual_total=("actual", "sum"), predicted_total=("predicted", "sum")
    )
    grouped = grouped.reindex(range(top + 1), fill_value=0)
    labels = [str(b) if b < top else f"{top}+" for b in grouped.index]
    table = pd.DataFrame(
        {
            "frequency": labels,
            "customers": grouped["customers"].to_numpy(np.int64),
            "actual_total": grouped["actual_total"].to_numpy(float),
            "predicted_total": grouped["predicted_total"].to_numpy(float),
        }
    )
    total = pd.DataFrame(
        {
            "frequency": ["all"],
            "customers": [int(table["customers"].sum())],
            "actual_total": [float(table["actual_total"].sum())],
            "predicted_total": [float(table["predicted_total"].sum())],
        }
    )
    table = pd.concat([table, total], ignore_index=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        table["actual"] = table["actual_total"] / table["customers"]
        table["predicted"] = table["predicted_total"] / table["customers"]
    table[["actual", "predicted"]] = table[["actual", "predicted"]].where(table["customers"] > 0, 0.0)
    return table[COLUMNS]


def validate(
    source: Source,
    *,
    calibration_end: dt.date,
    holdout_end: dt.date,
    unit: str = "weeks",
    model: str = "bgnbd",
) -> Validation:
    """Summarise the store with a holdout, fit on the calibration period, compare."""
    summary = rfm_summary(source, calibration_end=calibration_end, holdout_end=holdout_end, unit=unit)
    models = fit_models(summary, model)
    return Validation(models, holdout_table(summary, models), summary)
