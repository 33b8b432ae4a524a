"""What the customer value pages show, built from :mod:`cxloop.value` as charts and tables.

Aggregates only (fitted parameters, CLV by segment, the CLV distribution, the holdout check);
the at-risk list is customer-level and built by its own page.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import numpy as np
import pandas as pd

from cxloop.metrics.frames import plain
from cxloop.value.clv import clv_by_segment
from cxloop.web.charts import Chart, Table, bar_chart, line_chart

#: The holdout the calibration plot holds back: the last 26 weeks before the calibration end.
HOLDOUT_DAYS = 182
BINS = 20


def clv_histogram(values: pd.DataFrame, *, currency: str, csv_href: str | None = None) -> Chart:
    """How many customers have each CLV, in 20 bins (the long tail clipped at the 99th percentile,
    the last bin holding everyone above)."""
    clv = values["clv"].to_numpy(float)
    clv = clv[np.isfinite(clv)]
    if len(clv) == 0:
        return bar_chart(
            "clv", "Customers by CLV", labels=[], values=[], table=Table(["from", "to", "customers"])
        )
    top = float(np.quantile(clv, 0.99)) or float(clv.max()) or 1.0
    edges = np.linspace(0.0, top, BINS + 1)
    counts, _ = np.histogram(np.clip(clv, 0.0, top), bins=edges)
    rows = [
        [round(float(lo), 2), round(float(hi), 2), int(n)]
        for lo, hi, n in zip(edges[:-1], edges[1:], counts, strict=True)
    ]
    rows[-1][1] = round(float(clv.max()), 2)
    labels = [f"{lo:,.0f}–{hi:,.0f}" for lo, hi, _ in rows]
    chart = bar_chart(
        "clv",
        f"Customers by 12-month CLV ({currency})",
        labels=labels,
        values=[float(r[2]) for r in rows],
        table=Table(["from", "to", "customers"], rows),
        x_title="customers",
        csv_href=csv_href,
    )
    return chart


def segment_table(values: pd.DataFrame) -> Table:
    return Table.from_frame(clv_by_segment(values))


def holdout_chart(table: pd.DataFrame, *, csv_href: str | None = None) -> Chart:
    """Predicted against actual repeat purchases in the holdout, by calibration frequency."""
    body = table[table["frequency"].astype(str) != "all"]
    x = [str(b) for b in body["frequency"]]
    return line_chart(
        "holdout",
        "Holdout check: repeat purchases per customer, by purchases before",
        [("actual", x, list(body["actual"])), ("predicted", x, list(body["predicted"]))],
        table=Table.from_frame(table),
        y_title="mean repeat purchases in the holdout",
        csv_href=csv_href,
    )


def holdout_dates(calibration_end: dt.date) -> tuple[dt.date, dt.date]:
    """(calibration end, holdout end) for the calibration plot ending at ``calibration_end``."""
    return calibration_end - dt.timedelta(days=HOLDOUT_DAYS), calibration_end


def fit_table(rows: list[dict[str, Any]]) -> Table:
    columns = ["model", "parameter", "value", "se", "log_likelihood", "customers", "converged", "unit"]
    return Table(columns, [[plain(r.get(c)) for c in columns] for r in rows])
