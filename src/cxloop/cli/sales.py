"""``cxloop sales``: top sellers, rising and falling items, and products bought together."""

from __future__ import annotations

import datetime as dt
from typing import Any

import typer

from cxloop.cli.app import reporting_errors
from cxloop.cli.metrics import DATE_FORMATS, as_of_option, opened, records
from cxloop.cli.output import csv_option, json_option, print_rows, stdout

app = typer.Typer(
    help="Sales preferences: top sellers, rising and falling items, products bought together.",
    no_args_is_help=True,
)


def level_option(default: str, flag: str = "--by") -> Any:
    return typer.Option(default, flag, help="Items: category or product.")


def segment_option() -> Any:
    return typer.Option([], "--segment", help="Only customers of this segment (repeatable).", metavar="NAME")


def region_option() -> Any:
    return typer.Option([], "--region", help="Only customers of this region (repeatable).", metavar="NAME")


def per_option() -> Any:
    return typer.Option(None, "--per", help="One ranking per segment, region, country or channel.")


def period_grain_option() -> Any:
    return typer.Option("month", "--grain", help="week, month, quarter or year.")


def period_option() -> Any:
    return typer.Option(
        None, "--period", formats=DATE_FORMATS, help="A day in the period (default: the last complete one)."
    )


def where_of(segment: list[str], region: list[str]) -> dict[str, list[str]]:
    where = {"segment": segment, "region": region}
    return {k: v for k, v in where.items() if v}


PLURAL = {"category": "categories", "product": "products"}


def _plural(level: str) -> str:
    return PLURAL.get(level, level)


def _rounded(rows: list[dict[str, Any]], places: int = 2) -> list[dict[str, Any]]:
    return [{k: round(v, places) if isinstance(v, float) else v for k, v in r.items()} for r in rows]


@app.command("top")
def top(
    ctx: typer.Context,
    level: str = level_option("category"),
    measure: str = typer.Option(
        "revenue", "--measure", help="Rank by revenue, net_revenue, units, orders or customers."
    ),
    segment: list[str] = segment_option(),
    region: list[str] = region_option(),
    per: str | None = per_option(),
    grain: str = period_grain_option(),
    period: dt.datetime | None = period_option(),
    as_of: dt.datetime | None = as_of_option(),
    limit: int = typer.Option(10, "--limit", min=1, help="Items per ranking."),
    as_json: bool = json_option(),
    as_csv: bool = csv_option(),
) -> None:
    """The best-selling categories or products of a period, overall or per segment."""
    from cxloop.voice.sales import top_items

    with reporting_errors(), opened(ctx) as source:
        frame = top_items(
            source, level=level, measure=measure, per=per, where=where_of(segment, region),
            grain=grain, period=period, as_of=as_of, limit=limit,
        )  # fmt: skip
    rows = records(frame)
    title = f"Top {_plural(level)} by {measure}" + (f", {rows[0]['period']} ({grain})" if rows else "")
    if as_json or as_csv:
        print_rows(rows, title=title, as_json=as_json, as_csv=as_csv)
    elif not rows:
        stdout().print(f"{title}: no sales in this period.")
    else:
        keys = [*([per] if per else []), "rank", level, *(["product_name"] if level == "product" else [])]
        columns = [*keys, "revenue", "units", "orders", "customers", "share"]
        print_rows(_rounded([{k: r[k] for k in columns} for r in rows]), title=title)


TERMINAL_TREND_COLUMNS = (
    "orders",
    "previous_orders",
    "change",
    "relative_change",
    "share",
    "previous_share",
    "revenue_change",
    "q_value",
)


@app.command("trends")
def trends(
    ctx: typer.Context,
    level: str = level_option("category"),
    segment: list[str] = segment_option(),
    region: list[str] = region_option(),
    per: str | None = per_option(),
    grain: str = period_grain_option(),
    period: dt.datetime | None = period_option(),
    as_of: dt.datetime | None = as_of_option(),
    min_orders: int = typer.Option(
        20, "--min-orders", min=0, help="Leave out items with fewer orders in the two periods together."
    ),
    absolute: bool = typer.Option(
        False, "--absolute", help="Test the change in orders itself, not in the share of all orders."
    ),
    limit: int = typer.Option(10, "--limit", min=1, help="Rising and falling items shown (terminal only)."),
    as_json: bool = json_option(),
    as_csv: bool = csv_option(),
) -> None:
    """Rising and falling categories or products: a period against the one before, tested."""
    from cxloop.voice.sales import item_trends

    with reporting_errors(), opened(ctx) as source:
        frame = item_trends(
            source, level=level, per=per, where=where_of(segment, region), grain=grain,
            period=period, as_of=as_of, min_orders=min_orders, relative=not absolute,
        )  # fmt: skip
    rows = records(frame)
    if as_json or as_csv:
        print_rows(rows, title="Sales trends", as_json=as_json, as_csv=as_csv)
        return
    if not rows:
        stdout().print(f"Sales trends: no {level} with {min_orders} or more orders in the two periods.")
        return
    when = f"{rows[0]['period']} against {rows[0]['previous_period']} ({grain})"
    keys = [*([per] if per else []), level, *(["product_name"] if level == "product" else [])]
    for trend in ("rising", "falling"):
        picked = [r for r in rows if r["trend"] == trend][:limit]
        shown = [{k: r[k] for k in (*keys, *TERMINAL_TREND_COLUMNS)} for r in picked]
        if shown:
            print_rows(_rounded(shown, 3), title=f"{trend.capitalize()} {_plural(level)}: {when}")
        else:
            stdout().print(f"No {level} is significantly {trend}: {when}.")
    steady = sum(r["trend"] == "steady" for r in rows)
    basis = "orders" if absolute else "share of orders"
    stdout().print(
        f"{steady} of {len(rows)} {_plural(level)} steady (change in {basis}; Benjamini-Hochberg q < 0.05)."
    )


@app.command("baskets")
def baskets(
    ctx: typer.Context,
    level: str = level_option("product", "--level"),
    min_support: float = typer.Option(
        0.001, "--min-support", min=0.0, max=1.0, help="Least share of orders holding both items."
    ),
    min_count: int = typer.Option(
        10, "--min-count", min=1, help="Least number of orders holding both items."
    ),
    segment: list[str] = segment_option(),
    region: list[str] = region_option(),
    start: dt.datetime | None = typer.Option(
        None, "--from", formats=DATE_FORMATS, help="First day (inclusive)."
    ),
    end: dt.datetime | None = typer.Option(None, "--to", formats=DATE_FORMATS, help="End (exclusive)."),
    as_of: dt.datetime | None = as_of_option(),
    limit: int = typer.Option(20, "--limit", min=1, help="Pairs shown, by lift."),
    as_json: bool = json_option(),
    as_csv: bool = csv_option(),
) -> None:
    """Products (or categories) bought together: support, confidence both ways and lift."""
    from cxloop.voice.baskets import basket_pairs

    with reporting_errors(), opened(ctx) as source:
        frame = basket_pairs(
            source, level=level, where=where_of(segment, region), start=start, end=end, as_of=as_of,
            min_support=min_support, min_count=min_count, limit=limit,
        )  # fmt: skip
    rows = records(frame)
    if as_json or as_csv:
        print_rows(rows, title="Bought together", as_json=as_json, as_csv=as_csv)
        return
    baskets_n = int(frame.attrs.get("baskets", 0))
    if not rows:
        stdout().print(
            f"Bought together: no pair of {_plural(level)} reaches {min_count} orders and "
            f"{min_support:.4%} of {baskets_n:,} orders."
        )
        return
    name = "name" if level == "product" else "item"
    shown = [
        {
            level: r[f"{name}_a"],
            "with": r[f"{name}_b"],
            "orders": r["orders_ab"],
            "support": f"{r['support']:.3%}",
            "confidence a→b": f"{r['confidence_a_b']:.1%}",
            "confidence b→a": f"{r['confidence_b_a']:.1%}",
            "lift": round(r["lift"], 2),
            "p": f"{r['p_value']:.3g}",
        }
        for r in rows
    ]
    print_rows(shown, title=f"Bought together ({level} pairs in {baskets_n:,} orders), by lift")
