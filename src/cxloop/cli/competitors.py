"""``cxloop competitors``: share of voice and rating of every brand, ours beside the competitors'."""

from __future__ import annotations

import datetime as dt
from typing import Any

import typer

from cxloop.cli.app import reporting_errors, state
from cxloop.cli.metrics import DATE_FORMATS, as_of_option, grain_option, records
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
    sentiment: bool = typer.Option(
        True,
        "--sentiment/--no-sentiment",
        help="Add each brand's sentiment (texts scored once, then cached).",
    ),
    workers: int | None = typer.Option(None, "--workers", min=1, help="Processes scoring new texts."),
    themes: bool = typer.Option(
        False,
        "--themes",
        help="Instead: each brand's share of texts per theme, side by side (the curated themes).",
    ),
    as_json: bool = json_option(),
    as_csv: bool = csv_option(),
) -> None:
    """Share of voice, rating and sentiment per brand and period, our brand beside its competitors;
    with --themes, what each brand's customers talk about."""
    from cxloop.metrics.source import store_source
    from cxloop.voice.competitors import REVIEW_KINDS, brand_themes, compare_brands, overview, share_of_voice

    kinds = kind or REVIEW_KINDS
    with reporting_errors(), state(ctx).open_store() as store, store_source(store) as source:
        if themes:
            by_theme = brand_themes(
                store, source, start=start, end=end, as_of=as_of, kinds=kinds, workers=workers
            )
            _show_themes(records(by_theme), as_json=as_json, as_csv=as_csv)
            return
        if sentiment:
            frame = compare_brands(
                store, source, grain=grain, start=start, end=end, as_of=as_of, kinds=kinds, workers=workers
            )
        else:
            frame = share_of_voice(source, grain=grain, start=start, end=end, as_of=as_of, kinds=kinds)
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
    stdout().print("change: in share points since the period before; *: fewer than 30 ratings.")


def _show_themes(rows: list[dict[str, Any]], *, as_json: bool, as_csv: bool) -> None:
    """One row per theme, one column per brand: its share of the brand's texts, and for a
    competitor the gap to ours in points."""
    from rich.markup import escape

    if as_json or as_csv:
        print_rows(rows, title="Themes per brand", as_json=as_json, as_csv=as_csv)
        return
    if not rows:
        stdout().print("Themes per brand: no tagged review or post in this range.")
        return
    table: dict[Any, dict[str, Any]] = {}
    for r in rows:
        line = table.setdefault(r["theme_id"], {"theme": r["label"]})
        gap = "" if not r["is_competitor"] else f" ({_fixed(r['share_vs_ours'], 1, signed=True)})"
        line[escape(r["brand"])] = _fixed(r["share"], 1) + gap
    print_rows(list(table.values()), title="Themes per brand: % of each brand's texts (competitor − ours)")


def _share_table(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per period, one column per brand (ours first). Brand names become column
    headers, which the table does not escape: they are escaped here (untrusted text)."""
    from rich.markup import escape

    names = list(dict.fromkeys(r["brand"] for r in rows))
    periods = sorted({r["period"] for r in rows})[-SHOWN_PERIODS:]
    cells = {(r["period"], r["brand"]): r["share"] for r in rows}
    return [{"period": p, **{escape(b): _fixed(cells.get((p, b)), 1) for b in names}} for p in periods]


def _latest_rows(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per brand, compact (JSON and CSV keep the intervals and warnings)."""
    return [
        {
            "brand": r["brand"],
            "ours": "" if r["is_competitor"] else "yes",
            "mentions": r["mentions"],
            "share %": _fixed(r["share"], 1),
            "change": _fixed(r["share_change"], 1, signed=True),
            "rating": _fixed(r["rating"], 2) + (" *" if r["rating_warning"] else ""),
            **(
                {"sentiment": _fixed(r["sentiment"], 2), "negative %": _fixed(r["negative_share"], 1)}
                if "sentiment" in r
                else {}
            ),
        }
        for r in rows
    ]


def _fixed(value: float | None, places: int, *, signed: bool = False) -> str:
    if value is None:
        return ""
    return f"{value:+.{places}f}" if signed else f"{value:.{places}f}"
