"""``cxloop voice trends`` and ``cxloop voice drivers``: theme trends with emerging issues and
what changed, and the key drivers of scores with the list of issues to fix first."""

from __future__ import annotations

import datetime as dt
from typing import Any

import typer

from cxloop.cli.app import reporting_errors, state
from cxloop.cli.metrics import DATE_FORMATS, as_of_option, records
from cxloop.cli.output import print_json, print_rows, stdout

_BARS = "▁▂▃▄▅▆▇█"


def _now(as_of: dt.datetime | None) -> dt.datetime:
    return as_of or dt.datetime.now(dt.UTC).replace(tzinfo=None)


def trends(
    ctx: typer.Context,
    kind: list[str] | None = typer.Option(
        None, "--kind", help="Text kind: ticket, review, post or survey (repeat for several; default all)."
    ),
    grain: str = typer.Option("week", "--grain", help="week (Monday to Sunday, UTC) or month."),
    periods: int | None = typer.Option(
        None, "--periods", min=1, help="Show the last N periods (default 26 weeks or 12 months)."
    ),
    start: dt.datetime | None = typer.Option(
        None, "--from", formats=DATE_FORMATS, help="Only texts written from this day (UTC)."
    ),
    partial: bool = typer.Option(False, "--partial", help="Include the period --as-of falls in."),
    as_of: dt.datetime | None = as_of_option(),
    as_json: bool = typer.Option(
        False, "--json", help="Print one JSON object: grain, as_of, trends, emerging, changes, notes."
    ),
) -> None:
    """Theme volume, share and sentiment per week or month, the emerging issues (spikes and new
    themes against their own past) and what changed in the last period (our brand's texts)."""
    from cxloop.voice.corpus import KINDS
    from cxloop.voice.trends import store_trend_report

    with reporting_errors():
        moment = _now(as_of)
        shown = periods or (26 if grain == "week" else 12)
        with state(ctx).open_store() as store:
            report = store_trend_report(
                store, as_of=moment, kinds=kind or KINDS, grain=grain, start=start,
                include_partial=partial, periods=shown,
            )  # fmt: skip
        if as_json:
            print_json(
                {
                    "grain": report.grain,
                    "as_of": moment,
                    "trends": records(report.trends),
                    "emerging": records(report.emerging),
                    "changes": records(report.changes),
                    "notes": list(report.notes),
                }
            )
            return
        _print_trends(report)


def _print_trends(report: Any) -> None:
    trends, grain = report.trends, report.grain
    periods = sorted(trends["period"].unique())
    first, last = periods[0], periods[-1]
    rows = []
    for (theme_id, label), group in trends.groupby(["theme_id", "label"], sort=False):
        group = group.sort_values("period")
        latest = group.iloc[-1]
        rows.append(
            {
                "id": theme_id,
                "theme": label,
                "texts": int(group["texts"].sum()),
                f"last {grain}": int(latest["texts"]),
                "share": f"{latest['share']:.1f}%",
                "sentiment": _signed(latest.get("sentiment")),
                "trend": _sparkline(group["texts"].tolist()),
            }
        )
    rows.sort(key=lambda r: -r["texts"])
    span = f"{first:%Y-%m-%d} to {last:%Y-%m-%d}"
    print_rows(rows, title=f"Themes per {grain}, {len(periods)} {grain}s from {span}")
    emerging = [
        {
            grain: f"{r['period']:%Y-%m-%d}",
            "theme": r["label"],
            "status": r["status"],
            "texts": r["texts"],
            "share": f"{r['share']:.1f}%",
            "baseline share": f"{r['baseline_share']:.1f}%",
            "lift": "new" if r["lift"] is None else f"{r['lift']:.1f}x",
            "q": f"{r['q_value']:.2g}",
        }
        for r in records(report.emerging.sort_values(["period", "q_value"], ascending=[False, True]))
    ]
    if emerging:
        print_rows(emerging, title="Emerging issues (significant rise against the periods before)")
    else:
        stdout().print(f"No emerging issue in these {grain}s.")
    if len(report.changes):
        now, before = report.changes["period"].iloc[0], report.changes["previous"].iloc[0]
        changes = [
            {
                "rank": r["rank"],
                "theme": r["label"],
                "direction": r["direction"],
                "texts": f"{r['previous_texts']} → {r['texts']}",
                "share": f"{r['previous_share']:.1f}% → {r['share']:.1f}%",
                "change": f"{r['change']:+.1f} pts",
                "q": f"{r['q_value']:.2g}",
                "significant": "yes" if r["significant"] else "no",
            }
            for r in records(report.changes)
        ]
        title = f"What changed: {grain} of {now:%Y-%m-%d} against {before:%Y-%m-%d}"
        print_rows(changes, title=title)
    for note in report.notes:
        stdout().print(f"note: {note}", markup=False)


def _sparkline(values: list[int]) -> str:
    top = max(values) if values else 0
    if top == 0:
        return _BARS[0] * len(values)
    return "".join(_BARS[min(len(_BARS) - 1, round(v / top * (len(_BARS) - 1)))] for v in values)


def _signed(value: Any) -> str:
    return "" if value is None or value != value else f"{value:+.2f}"


def drivers(
    ctx: typer.Context,
    segment: str | None = typer.Option(None, "--segment", help="Only the answers of this customer segment."),
    by_segment: bool = typer.Option(False, "--by-segment", help="Overall, then each customer segment."),
    start: dt.datetime | None = typer.Option(
        None, "--from", formats=DATE_FORMATS, help="Only texts written from this day (UTC)."
    ),
    min_answers: int = typer.Option(
        10, "--min-answers", min=2, help="Answers needed with and without a theme to compare them."
    ),
    as_of: dt.datetime | None = as_of_option(),
    as_json: bool = typer.Option(
        False, "--json", help="Print one JSON object: as_of, fix_first, drivers, notes."
    ),
) -> None:
    """Key drivers: NPS, CSAT and star rating with and without each theme (gap, 95% interval),
    the share of detractors each theme accounts for, and the issues to fix first."""
    from cxloop.voice.drivers import store_key_drivers

    with reporting_errors():
        if segment is not None and by_segment:
            raise typer.BadParameter("use --segment NAME or --by-segment, not both", param_hint="--segment")
        moment = _now(as_of)
        with state(ctx).open_store() as store:
            report = store_key_drivers(
                store, as_of=moment, start=start, segment=segment, by_segment=by_segment, min_n=min_answers
            )
        if as_json:
            print_json(
                {
                    "as_of": moment,
                    "fix_first": records(report.fix_first),
                    "drivers": records(report.drivers),
                    "notes": list(report.notes),
                }
            )
            return
        _print_drivers(report, moment)


def _print_drivers(report: Any, moment: dt.datetime) -> None:
    fix = [
        {
            "": r["order"],
            "segment": r["segment"],
            "theme": r["label"],
            "metric": r["metric"],
            "gap": _gap(r),
            "detractors": f"{r['detractor_share']:.0f}% ({r['detractors_with']} of {r['detractors']})",
            "priority": f"{r['priority']:.1f}",
        }
        for r in records(report.fix_first)
    ]
    if fix:
        print_rows(fix, title=f"Fix these first (as of {moment:%Y-%m-%d})")
    by_segment = report.drivers["segment"].nunique() > 1 or report.drivers["segment"].iloc[0] != "all"
    rows = [
        {
            **({"segment": r["segment"]} if by_segment else {}),
            "metric": r["metric"],
            "rank": r["rank"],
            "theme": r["label"],
            "n": f"{r['n_with']} / {r['n_without']}",
            "score with / without": f"{_number(r['with_value'])} / {_number(r['without_value'])}",
            "gap [95% CI]": _gap(r) or r["note"],
            "detractors": f"{r['detractor_share']:.0f}%",
            "priority": f"{r['priority']:.1f}",
        }
        for r in records(report.drivers)
    ]
    print_rows(rows, title="Key drivers: each theme's score with and without it")
    for note in report.notes:
        stdout().print(f"note: {note}", markup=False)


def _number(value: Any) -> str:
    return "" if value is None else f"{value:.1f}" if abs(value) >= 10 else f"{value:.2f}"


def _gap(row: dict[str, Any]) -> str:
    if row["gap"] is None:
        return ""
    return f"{_number(row['gap'])} [{_number(row['ci_low'])}, {_number(row['ci_high'])}]"
