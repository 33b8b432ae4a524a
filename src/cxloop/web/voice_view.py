"""What the voice-of-the-customer pages show, built from :mod:`cxloop.voice` frames as charts and
tables: sentiment per source and per brand, share of voice, rating and sentiment per brand,
top sellers, rising and falling items, products bought together.

Every chart has its table (the numbers) and a CSV link; customer text is never put here
unescaped — the templates autoescape, and a Plotly figure is JSON in a non-executed block.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pandas as pd

from cxloop.metrics.frames import plain
from cxloop.web.charts import Chart, Table, bar_chart, layout, line_chart

SENTIMENT_COLUMNS = ["n", "unsupported", "positive_share", "neutral_share", "negative_share", "mean_score"]
#: (label, column, colour): negative in vermillion, neutral grey, positive bluish green (Okabe–Ito).
SHARES = (("negative", "negative_share", "#D55E00"), ("neutral", "neutral_share", "#999999"),
          ("positive", "positive_share", "#009E73"))  # fmt: skip
LATEST_COLUMNS = ["brand", "is_competitor", "mentions", "share", "share_change", "rating", "ratings",
                  "rating_ci_low", "rating_ci_high", "rating_warning", "rating_change", "texts", "sentiment",
                  "negative_share", "positive_share"]  # fmt: skip


def rows_of(table: Table) -> list[dict[str, Any]]:
    """A table's rows as dicts, for a template."""
    return [dict(zip(table.columns, row, strict=True)) for row in table.rows]


def _group_label(row: pd.Series, keys: Sequence[str]) -> str:
    return " · ".join("(none)" if pd.isna(row[k]) else str(row[k]) for k in keys)


def sentiment_chart(
    summary: pd.DataFrame, keys: Sequence[str], *, chart_id: str, title: str, csv_href: str | None = None
) -> Chart:
    """Stacked horizontal bars: each group's shares of negative, neutral and positive texts
    (of the texts in a language the model reads), with the whole summary as the table."""
    labels = [_group_label(row, keys) for _, row in summary.iterrows()]
    data = [
        {
            "type": "bar",
            "orientation": "h",
            "name": name,
            "y": labels,
            "x": [None if pd.isna(v) else round(float(v) * 100, 1) for v in summary[column]],
            "marker": {"color": colour},
        }
        for name, column, colour in SHARES
    ]
    figure = {
        "data": data,
        "layout": {
            **layout(title, x_title="% of texts", height=max(280, 32 * len(labels) + 120)),
            "barmode": "stack",
            "hovermode": "closest",
            "yaxis": {"autorange": "reversed", "automargin": True},
        },
    }
    table = Table.from_frame(summary, [*keys, *SENTIMENT_COLUMNS])
    return Chart(chart_id, title, figure, table, csv_href, empty=not labels)


def period_label(value: Any) -> str:
    value = plain(value)
    return value.date().isoformat() if hasattr(value, "date") else str(value)


def per_brand_lines(
    frame: pd.DataFrame, column: str, *, chart_id: str, title: str, y_title: str, csv_href: str | None = None
) -> Chart:
    """One line per brand (ours first, as the frame orders them) of ``column`` over the periods."""
    series = []
    for brand, group in frame.groupby("brand", sort=False):
        series.append(
            (str(brand), [period_label(p) for p in group["period"]], [plain(v) for v in group[column]])
        )
    columns = ["period", "brand", "is_competitor", column]
    if column == "rating":
        columns += ["ratings", "rating_ci_low", "rating_ci_high", "rating_warning"]
    if column == "share":
        columns += ["mentions"]
    table = Table.from_frame(frame, [c for c in columns if c in frame.columns])
    return line_chart(chart_id, title, series, table=table, y_title=y_title, csv_href=csv_href)


def latest_table(latest: pd.DataFrame) -> Table:
    """The last period per brand, rating and sentiment side by side."""
    return Table.from_frame(latest, [c for c in LATEST_COLUMNS if c in latest.columns])


def top_chart(top: pd.DataFrame, *, level: str, measure: str, csv_href: str | None = None) -> Chart:
    """The top items of the period, as bars of ``measure``."""
    name = "product_name" if level == "product" else level
    labels = [
        str(v) if not pd.isna(v) else str(k)
        for v, k in zip(top.get(name, top[level]), top[level], strict=True)
    ]
    period = period_label(top["period"].iloc[0]) if len(top) else ""
    return bar_chart(
        "top",
        f"Top {'products' if level == 'product' else 'categories'} by {measure}"
        + (f", {period}" if period else ""),
        labels=labels,
        values=[plain(v) for v in top[measure]],
        table=Table.from_frame(top),
        x_title=measure,
        csv_href=csv_href,
    )


def sparkline(values: Sequence[float | None]) -> str:
    """An SVG polyline's points for a small trend (drawn server-side)."""
    from cxloop.web.charts import sparkline_points

    return sparkline_points(list(values))
