"""``cxloop competitors``: share of voice and rating of every brand, ours beside the competitors'."""

from __future__ import annotations

import datetime as dt
from typing import Any

import typer

from cxloop.cli.app import reporting_errors
from cxloop.cli.metrics import DATE_FORMATS, as_of_option, grain_option, opened, records
from cxloop.cli.output import csv_option, json_option, print_rows, stdout

SHOWN_PERIODS = 12


def competitors(
    ctx: typer.Context,
    grain: str = grain_option(),
    start: dt.datetime | None = typer.Option(
        None, "--from", formats=DATE_FORMATS, help="First day (inclusive)."
    ),
    end: dt.datetime | None = typer.Option(None, "--to", formats=DATE_FORMATS, help="End (exclusive)."),
    as_of: dt.datetime | None = as_of_option(),
    kind: list[str] = typer.Option([], "--kind", help="Only reviews or only posts (default: both)."),
    as_json: bool = json_option(),
    as_csv: bool = csv_option(),
) -> None:
    """Share of voice and average rating per brand and period, our brand beside its competitors."""
    from cxloop.voice.competitors import REVIEW_KINDS, overview, share_of_voice

    with reporting_errors(), opened(ctx) as source:
        frame = share_of_voice(
            source, grain=grain, start=start, end=end, as_of=as_of, kinds=kind or REVIEW_KINDS
        )
    rows = records(frame)
    if as_json or as_csv:
        print_rows(rows, title="Competitors", as_json=as_json, as_csv=as_csv)
        return
    if not rows:
        stdout().print("Competitors: no reviews or posts in this range.")
        return
    print_rows(_share_table(rows), title=f"Share of voice (%) by {grain}, the last {SHOWN_PERIODS} at most")
    latest = records(overview(frame))
    print_rows(_latest_rows(latest), title=f"Latest {grain}: {latest[0]['period']}")


def _share_table(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per period, one column per brand (ours first). Brand names become column
    headers, which the table does not escape: they are escaped here (untrusted text)."""
    from rich.markup import escape

    names = list(dict.fromkeys(r["brand"] for r in rows))
    periods = sorted({r["period"] for r in rows})[-SHOWN_PERIODS:]
    cells = {(r["period"], r["brand"]): r["share"] for r in rows}
    return [{"period": p, **{escape(b): _fixed(cells.get((p, b)), 1) for b in names}} for p in periods]


def _latest_rows(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [
        {
            "brand": r["brand"],
            "competitor": "yes" if r["is_competitor"] else "no",
            "mentions": r["mentions"],
            "share %": _fixed(r["share"], 1),
            "change (points)": _fixed(r["share_change"], 1, signed=True),
            "rating": _fixed(r["rating"], 2),
            "95% CI": ""
            if r["rating_ci_low"] is None
            else f"{r['rating_ci_low']:.2f} to {r['rating_ci_high']:.2f}",
            "ratings": r["ratings"],
            "note": "few ratings" if r["rating_warning"] else "",
        }
        for r in rows
    ]


def _fixed(value: float | None, places: int, *, signed: bool = False) -> str:
    if value is None:
        return ""
    return f"{value:+.{places}f}" if signed else f"{value:.{places}f}"
