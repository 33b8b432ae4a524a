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


# -- themes: trends, emerging issues, what changed, key drivers (the pages follow the themes module)


def theme_trend_chart(
    trends: pd.DataFrame,
    *,
    measure: str = "share",
    chart_id: str = "theme-trends",
    title: str = "",
    csv_href: str | None = None,
) -> Chart:
    """One line per theme of ``measure`` (``share`` %, ``texts`` or ``sentiment``) per period,
    from :func:`cxloop.voice.trends.theme_trends` rows; the table holds every column."""
    y_titles = {"share": "% of texts", "texts": "texts", "sentiment": "mean sentiment (-1 to 1)"}
    series = [
        (str(label), [period_label(p) for p in group["period"]], [plain(v) for v in group[measure]])
        for (_, label), group in trends.groupby(["theme_id", "label"], sort=False)
    ]
    return line_chart(
        chart_id,
        title or f"Themes: {measure} per period",
        series,
        table=Table.from_frame(trends),
        y_title=y_titles.get(measure, measure),
        csv_href=csv_href,
    )


def theme_sparklines(trends: pd.DataFrame, measure: str = "texts") -> dict[str, str]:
    """Each theme's ``measure`` over the periods as an SVG polyline's points, by theme id."""
    return {
        str(theme): sparkline([plain(v) for v in group.sort_values("period")[measure]])
        for theme, group in trends.groupby("theme_id", sort=False)
    }


EMERGING_COLUMNS = ["period", "theme_id", "label", "status", "texts", "share", "baseline_share", "lift",
                    "p_value", "q_value"]  # fmt: skip
CHANGE_COLUMNS = ["rank", "theme_id", "label", "direction", "previous_texts", "texts", "previous_share",
                  "share", "change", "q_value", "significant"]  # fmt: skip
DRIVER_COLUMNS = ["segment", "metric", "rank", "theme_id", "label", "n_with", "n_without", "with_value",
                  "without_value", "gap", "ci_low", "ci_high", "significant", "detractors_with", "detractors",
                  "detractor_share", "priority", "note"]  # fmt: skip
FIX_FIRST_COLUMNS = ["order", "segment", "theme_id", "label", "metric", "gap", "ci_low", "ci_high",
                     "detractors_with", "detractors", "detractor_share", "priority"]  # fmt: skip


def emerging_table(emerging: pd.DataFrame) -> Table:
    """The emerging issues, newest period first, most significant first within it."""
    if len(emerging):
        emerging = emerging.sort_values(["period", "q_value"], ascending=[False, True])
    return Table.from_frame(emerging, [c for c in EMERGING_COLUMNS if c in emerging.columns])


def changes_table(changes: pd.DataFrame) -> Table:
    """What changed in the last period against the one before, by rank."""
    return Table.from_frame(changes, [c for c in CHANGE_COLUMNS if c in changes.columns])


def drivers_chart(
    drivers: pd.DataFrame, *, metric: str, segment: str = "all", csv_href: str | None = None
) -> Chart:
    """Each theme's score gap (with − without) for ``metric`` with its interval as error bars,
    by rank; themes without a gap (too few answers) are in the table only."""
    rows = drivers[(drivers["metric"] == metric) & (drivers["segment"] == segment)]
    shown = rows[rows["gap"].notna()]
    gap = [float(v) for v in shown["gap"]]
    high = [float(h) - g for h, g in zip(shown["ci_high"], gap, strict=True)]
    low = [g - float(lo) for lo, g in zip(shown["ci_low"], gap, strict=True)]
    labels = [str(v) for v in shown["label"]]
    title = f"{metric}: gap with each theme (with − without), 95% interval"
    figure = {
        "data": [
            {
                "type": "bar",
                "orientation": "h",
                "y": labels,
                "x": gap,
                "error_x": {"type": "data", "symmetric": False, "array": high, "arrayminus": low},
                "marker": {"color": ["#D55E00" if g < 0 else "#009E73" for g in gap]},
            }
        ],
        "layout": {
            **layout(title, x_title=f"{metric} gap", height=max(280, 28 * len(labels) + 100)),
            "hovermode": "closest",
            "yaxis": {"autorange": "reversed", "automargin": True},
        },
    }
    table = Table.from_frame(rows, [c for c in DRIVER_COLUMNS if c in rows.columns])
    return Chart(f"drivers-{metric}", title, figure, table, csv_href, empty=not labels)


def fix_first_table(fix_first: pd.DataFrame) -> Table:
    return Table.from_frame(fix_first, [c for c in FIX_FIRST_COLUMNS if c in fix_first.columns])


THEME_COLUMNS = ["theme_id", "label", "texts", "share", "sentiment", "terms", "curated"]


def themes_chart(themes: pd.DataFrame, *, csv_href: str | None = None) -> Chart:
    """Each theme's share of the texts, largest first; the table has terms and sentiment (the
    quotes stay on the page: they are texts, not numbers)."""
    ranked = themes.sort_values("texts", ascending=False) if len(themes) else themes
    table = Table(
        THEME_COLUMNS,
        [
            [
                ", ".join(map(str, v)) if c == "terms" else plain(v)
                for c, v in zip(THEME_COLUMNS, row, strict=True)
            ]
            for row in ranked.reindex(columns=THEME_COLUMNS).itertuples(index=False)
        ],
    )
    return bar_chart(
        "themes",
        "Share of texts per theme",
        labels=[str(v) for v in ranked["label"]] if len(ranked) else [],
        values=[plain(v) for v in ranked["share"]] if len(ranked) else [],
        table=table,
        x_title="% of texts",
        csv_href=csv_href,
    )


def theme_cards(themes: pd.DataFrame) -> list[dict[str, Any]]:
    """One dict per theme for the explorer, largest first, with its trend as sparkline points."""
    ranked = themes.sort_values("texts", ascending=False) if len(themes) else themes
    cards = []
    for row in ranked.to_dict(orient="records"):
        trend = [float(p["texts"]) for p in (row.get("trend") or [])]
        cards.append({**{k: plain(v) if not isinstance(v, list) else v for k, v in row.items()},
                      "sparkline": sparkline(trend), "trend_text": ", ".join(
                          f"{p['period']}: {p['texts']}" for p in (row.get("trend") or []))})  # fmt: skip
    return cards


def _ids(values: Any) -> str:
    return ", ".join(str(v) for v in values or ())


def _quoted(values: Any) -> str:
    return ", ".join(f"“{v}”" for v in values or ())


def version_change(action: str, details: dict[str, Any]) -> str:
    """What a taxonomy version changed, in words (user text inside is escaped by the template)."""
    theme = details.get("theme_id")
    label = details.get("label")
    if action == "discover":
        text = f"themes discovered: {details.get('k', '?')} topics in {int(details.get('texts', 0)):,} texts"
        if details.get("previous_model"):
            text += (
                f"; {len(details.get('matches') or {})} topics kept their theme, "
                f"{len(details.get('new_topics') or [])} new"
            )
        return text
    if action == "rename":
        return f"theme {theme} renamed “{label}”"
    if action == "merge":
        return f"themes {_ids(details.get('theme_ids'))} merged" + (f" as “{label}”" if label else "")
    if action == "split":
        return f"theme {theme} split" + (f" in {details['parts']} parts" if details.get("parts") else "")
    if action == "delete":
        return f"theme {theme} deleted"
    if action == "rule":
        target = f"new theme {theme} “{label}”" if label else f"theme {theme}"
        return f"keyword rule {_quoted(details.get('keywords'))} for {target}"
    if action == "remove-rule":
        return f"keyword rule {_quoted(details.get('keywords'))} removed from theme {theme}"
    if action == "restore":
        return f"restored version {details.get('version', '?')}"
    return f"{action}: " + ", ".join(f"{k}={v}" for k, v in details.items())


def version_rows(history: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """The taxonomy's versions for the page, newest first: version, when, who, what."""
    return [
        {
            "version": int(h["version"]),
            "created_at": h["created_at"],
            "created_by": str(h["created_by"]),
            "action": str(h["action"]),
            "what": version_change(str(h["action"]), dict(h.get("details") or {})),
        }
        for h in history
    ]
