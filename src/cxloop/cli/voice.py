"""``cxloop voice``: what customers write and how they feel (sentiment; themes, trends and
drivers join here as they land)."""

from __future__ import annotations

import datetime as dt
from typing import Any

import typer

from cxloop.cli import voice_insights, voice_themes
from cxloop.cli.app import reporting_errors, state
from cxloop.cli.metrics import DATE_FORMATS, records
from cxloop.cli.output import csv_option, json_option, print_rows

app = typer.Typer(help="Voice of the customer: sentiment of tickets, reviews, posts and survey comments.")
app.add_typer(voice_themes.app, name="themes")
app.command("trends")(voice_insights.trends)
app.command("drivers")(voice_insights.drivers)

_BRANDS = {"all": None, "own": False, "competitors": True}


def kind_option() -> Any:
    return typer.Option(
        None, "--kind", help="Text kind: ticket, review, post or survey (repeat for several; default all)."
    )


def start_option() -> Any:
    return typer.Option(None, "--from", "--start", formats=DATE_FORMATS, help="Texts written from (UTC).")


def end_option() -> Any:
    return typer.Option(None, "--to", "--end", formats=DATE_FORMATS, help="Texts written before (UTC).")


def brands_option() -> Any:
    return typer.Option("all", "--brands", help="all, own (our brand only) or competitors.")


@app.command("sentiment")
def sentiment(
    ctx: typer.Context,
    kind: list[str] | None = kind_option(),
    start: dt.datetime | None = start_option(),
    end: dt.datetime | None = end_option(),
    brands: str = brands_option(),
    texts: bool = typer.Option(False, "--texts", help="One row per text instead of the summary."),
    model: str = typer.Option(
        "store", "--model", help="store (the store's fitted model, else VADER) or vader (plain VADER)."
    ),
    refit: bool = typer.Option(
        False, "--refit", help="Fit the model again on the store's rated reviews first."
    ),
    workers: int | None = typer.Option(None, "--workers", min=1, help="Processes (default: all cores)."),
    as_json: bool = json_option(),
    as_csv: bool = csv_option(),
) -> None:
    """Sentiment per source (n, shares positive/neutral/negative, mean score, unsupported), or
    per text with --texts. Only texts never scored by the model are scored."""
    from cxloop.voice.corpus import KINDS
    from cxloop.voice.sentiment import SentimentModel, corpus_sentiment, fit_model, summary

    with reporting_errors():
        if brands not in _BRANDS:
            raise typer.BadParameter("all, own or competitors", param_hint="--brands")
        if model not in ("store", "vader"):
            raise typer.BadParameter("store or vader", param_hint="--model")
        with state(ctx).open_store() as store:
            chosen = SentimentModel() if model == "vader" else fit_model(store) if refit else None
            frame = corpus_sentiment(
                store, kinds=kind or KINDS, start=start, end=end, competitors=_BRANDS[brands],
                model=chosen, workers=workers,
            )  # fmt: skip
        title = f"Sentiment ({frame.attrs['model']}; {frame.attrs['scored']:,} texts scored now)"
        if texts:
            columns = ["text_id", "kind", "at", "brand", "language", "supported", "sentiment_score",
                       "sentiment_label", "text"]  # fmt: skip
            rows = records(frame[columns])
            if not (as_json or as_csv):
                rows = [_short(row) for row in rows]
            print_rows(rows, title=title, as_json=as_json, as_csv=as_csv)
            return
        rows = records(summary(frame))
        if not (as_json or as_csv):
            rows = [{k: round(v, 3) if isinstance(v, float) else v for k, v in row.items()} for row in rows]
        print_rows(rows, title=title, as_json=as_json, as_csv=as_csv)


def _short(row: dict[str, Any]) -> dict[str, Any]:
    """A text's row for a terminal: the date, the main columns, the text cut to one line."""
    text = " ".join(str(row["text"]).split())
    score = row["sentiment_score"]
    return {
        "at": row["at"].date() if row["at"] is not None else None,
        "kind": row["kind"],
        "brand": row["brand"],
        "language": row["language"],
        "label": row["sentiment_label"] if row["supported"] else "unsupported",
        "score": None if score is None else round(score, 3),
        "text": text if len(text) <= 80 else text[:79] + "…",
    }
